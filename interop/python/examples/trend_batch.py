#!/usr/bin/env python3
"""The seed's trend batch, in Python: rank products by recency-weighted views, upsert the ranking, then evict the
API's cached copy through tiercache's evict endpoint — best-effort: the batch never fails because of the eviction.

    TRENDS_EVICT_URL=http://127.0.0.1:3000/internal/cache INTERNAL_KEY=dev-internal-key-change-me \\
        python3 trend_batch.py --views views.json --out trends.json

`--views` is a JSON array of `{"product_id": 7, "viewed_at": "2026-11-30T12:00:00Z"}` (what an analytics export
delivers); `--out` is the ranking, upserted by rank (the file is replaced atomically: readers see the old ranking or
the new one, never half of one). Without TRENDS_EVICT_URL the eviction is skipped with one line. The exit status is 0
whenever the ranking was written, whatever the eviction did; `--json` prints the result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tiercache_wire import EvictionClient  # noqa: E402

TREND_SIZE = 10
#: The key the reference service caches GET /trends under (examples/service/src/keys.ts).
TRENDS_KEY = "trends:top"


def rank(views: list, now: datetime) -> list:
    """Top products of the last 7 days; a view a day old counts 1/e (the service's own batch uses the same score)."""
    scores: dict = {}
    counts: dict = {}
    for row in views:
        at = datetime.fromisoformat(str(row["viewed_at"]).replace("Z", "+00:00"))
        if at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        age = now - at
        if age > timedelta(days=7) or age < timedelta(0):
            continue
        product = int(row["product_id"])
        scores[product] = scores.get(product, 0.0) + math.exp(-age.total_seconds() / 86400.0)
        counts[product] = counts.get(product, 0) + 1
    ordered = sorted(scores, key=lambda p: (-scores[p], p))[:TREND_SIZE]
    return [
        {"rank": i + 1, "productId": p, "views": counts[p], "score": round(scores[p], 2)} for i, p in enumerate(ordered)
    ]


def upsert(path: Path, ranking: list, now: datetime) -> None:
    """Writes the ranking next to the old one and renames it over: an atomic replace by rank."""
    document = {"computedAt": now.isoformat().replace("+00:00", "Z"), "items": ranking}
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out)
    os.replace(tmp, path)


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    log = logging.getLogger("trend_batch")

    now = datetime.now(timezone.utc)
    ranking = rank(json.loads(args.views.read_text(encoding="utf-8")), now)
    upsert(args.out, ranking, now)

    # Best-effort from here on: the ranking is written; a missed eviction only means /trends changes at its TTL.
    try:
        client = EvictionClient(
            os.environ.get("TRENDS_EVICT_URL") or None,
            os.environ.get("INTERNAL_KEY") or None,
            timeout=2.0,
            retries=1,
            logger=log,
        )
    except ValueError as error:  # a URL without a key, or not an http(s) URL: skip, do not fail the batch
        log.warning("trends: eviction misconfigured (%s)", error)
        client = EvictionClient(None, logger=log)
    outcome = client.evict(keys=[TRENDS_KEY])
    if outcome:
        log.info("trends: %d products ranked; cached copy evicted", len(ranking))
    elif client.enabled:
        log.warning("trends: %d products ranked; eviction failed, /trends changes when its copy expires", len(ranking))
    else:
        log.info("trends: %d products ranked; eviction skipped (TRENDS_EVICT_URL unset)", len(ranking))
    if args.json:
        eviction = {"ok": outcome.ok, "status": outcome.status, "error": outcome.error}
        print(json.dumps({"ranked": len(ranking), "eviction": eviction}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
