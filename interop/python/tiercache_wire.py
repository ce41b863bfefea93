"""tiercache's wire format (writes version 2, reads 2 and 1) for Python workers, and its evict endpoint's client.

Reads and writes cache entries exactly as docs/wire-format.md describes them, so a Python worker (a Celery task, a
cron batch, a Django command) can warm or read a cache that TypeScript services using tiercache share:

    import redis
    from tiercache_wire import TiercacheWire, EvictionClient

    wire = TiercacheWire(redis.Redis(), prefix="shop")
    wire.set("user:42", {"id": 42, "since": datetime.now(timezone.utc)}, ttl="5m", grace="1h", tags=["users"])
    wire.get("user:42")          # the value while fresh, else None

    EvictionClient("http://api:3000/internal/cache", key=os.environ["INTERNAL_KEY"]).evict(keys=["user:42"])

Only dependency: redis-py (Debian: python3-redis). Standalone Redis only (no Cluster). The module never evaluates
stored text: it parses JSON and revives the fixed table of tagged types, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import logging
import math
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional, Sequence, Union

__all__ = [
    "FORMAT_VERSION",
    "UNDEFINED",
    "INVALID_DATE",
    "BigInt",
    "JSMap",
    "Entry",
    "EncodeError",
    "DecodeError",
    "TiercacheWire",
    "EvictOutcome",
    "EvictionClient",
    "encode_entry",
    "decode_entry",
    "parse_duration",
]

#: The version written: 2, a JSON array. Version 1 (a JSON object) is still read.
FORMAT_VERSION = 2

#: Largest integer a JavaScript number holds exactly; Python ints beyond it are written as BigInt.
MAX_SAFE_INTEGER = 2**53 - 1
#: tiercache's defaults (docs/wire-format.md): entry size, key length, tag count and length.
MAX_VALUE_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 1024
MAX_TAGS = 64
MAX_TAG_LENGTH = 256

_TAG = "$t"
_TAG_LIKE = re.compile(r"^\$+t$")
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_BIGINT = re.compile(r"^-?[0-9]+$")

log = logging.getLogger("tiercache_wire")


# --- values JSON cannot hold ------------------------------------------------------------------------------------------


class _Undefined:
    """JavaScript's `undefined` (`{"$t":"undefined"}`): kept distinct from None, which is `null`."""

    _instance: Optional["_Undefined"] = None

    def __new__(cls) -> "_Undefined":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


class _InvalidDate:
    """A JavaScript Date whose time is NaN (`{"$t":"Date","v":null}`): Python's datetime has no such value."""

    _instance: Optional["_InvalidDate"] = None

    def __new__(cls) -> "_InvalidDate":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "INVALID_DATE"


UNDEFINED = _Undefined()
INVALID_DATE = _InvalidDate()


class BigInt(int):
    """An int that is written as a JavaScript BigInt whatever its size, and what a tagged BigInt reads back as.

    Plain ints are written as JSON numbers while they fit in a double exactly (|n| <= 2**53 - 1), as BigInt beyond.
    """

    def __repr__(self) -> str:
        return f"BigInt({int(self)})"

    def __str__(self) -> str:
        return int.__repr__(self)


class JSMap(dict):
    """A JavaScript Map: keys of any hashable type, insertion order kept. Written as `{"$t":"Map",...}`.

    A plain dict is a JavaScript object and must have string keys; use JSMap for anything else. Tagged Maps read back
    as JSMap. Array keys (and Set elements) read back as tuples, since Python lists cannot be dict keys; an object as
    a Map key or Set element has no Python equivalent, and such an entry is a DecodeError (a miss).
    """

    def __repr__(self) -> str:
        return f"JSMap({dict.__repr__(self)})"


class EncodeError(ValueError):
    """A value (or an option) that cannot be written in the wire format."""


class DecodeError(ValueError):
    """A stored string that is not a well-formed entry of version 2 or 1; readers treat it as a miss."""


# --- tagged JSON (section 3) ------------------------------------------------------------------------------------------


def _date_iso(value: datetime) -> str:
    if value.tzinfo is None:
        # Naive datetimes are taken as UTC, the way Django with USE_TZ=False and most batch code store them.
        value = value.replace(tzinfo=timezone.utc)
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _needs_tagging(value: Any, ancestors: list) -> bool:
    if value is None or isinstance(value, (bool, str)):
        return False
    if isinstance(value, BigInt):
        return True
    if isinstance(value, int):
        return abs(value) > MAX_SAFE_INTEGER
    if isinstance(value, float):
        return not math.isfinite(value) or (value == 0.0 and math.copysign(1.0, value) < 0)
    if value is UNDEFINED or value is INVALID_DATE:
        return True
    if isinstance(value, (datetime, bytes, bytearray, memoryview, JSMap, set, frozenset)):
        if isinstance(value, (JSMap, set, frozenset)):
            _check_cycle(value, ancestors)
            ancestors.append(value)
            items = [x for pair in value.items() for x in pair] if isinstance(value, JSMap) else list(value)
            for item in items:
                _needs_tagging(item, ancestors)
            ancestors.pop()
        return True
    if isinstance(value, (list, tuple)):
        _check_cycle(value, ancestors)
        ancestors.append(value)
        tagged = False
        for item in value:
            tagged = _needs_tagging(item, ancestors) or tagged
        ancestors.pop()
        return tagged
    if isinstance(value, dict):
        _check_cycle(value, ancestors)
        ancestors.append(value)
        tagged = False
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodeError(f"an object key must be a string, got {type(key).__name__}; use JSMap for a Map")
            if _TAG_LIKE.match(key):
                tagged = True
            tagged = _needs_tagging(item, ancestors) or tagged
        ancestors.pop()
        return tagged
    raise EncodeError(f"a value of type {type(value).__name__} cannot be cached")


def _check_cycle(value: Any, ancestors: list) -> None:
    if any(value is a for a in ancestors):
        raise EncodeError("a circular value cannot be cached")


def _tag(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, BigInt) or (isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER):
        return {_TAG: "BigInt", "v": str(int(value))}
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return {_TAG: "Number", "v": "NaN"}
        if math.isinf(value):
            return {_TAG: "Number", "v": "Infinity" if value > 0 else "-Infinity"}
        if value == 0.0 and math.copysign(1.0, value) < 0:
            return {_TAG: "Number", "v": "-0"}
        return value
    if value is UNDEFINED:
        return {_TAG: "undefined"}
    if value is INVALID_DATE:
        return {_TAG: "Date", "v": None}
    if isinstance(value, datetime):
        return {_TAG: "Date", "v": _date_iso(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_TAG: "Uint8Array", "v": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, JSMap):
        return {_TAG: "Map", "v": [[_tag(k), _tag(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {_TAG: "Set", "v": [_tag(v) for v in value]}
    if isinstance(value, (list, tuple)):
        return [_tag(v) for v in value]
    # A dict with string keys (checked by _needs_tagging): a JavaScript object, tag-like keys escaped (3.3).
    return {("$" + k if _TAG_LIKE.match(k) else k): _tag(v) for k, v in value.items()}


def encode_value(value: Any) -> tuple:
    """Returns `(json_text, tagged)`: the value as JSON, and whether it holds tagged objects (`k: 1`)."""
    tagged = _needs_tagging(value, [])
    try:
        text = json.dumps(_tag(value) if tagged else value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise EncodeError(str(error)) from error
    return text, tagged


def _hashable(value: Any, what: str) -> Any:
    """A Map key or Set element as Python can hold it: arrays become tuples; objects cannot be keys."""
    if isinstance(value, list):
        value = tuple(_hashable(item, what) for item in value)
    try:
        hash(value)
    except TypeError:
        raise DecodeError(f"a {what} of type {type(value).__name__} has no Python equivalent") from None
    return value


def _revive(node: Any) -> Any:
    if isinstance(node, list):
        return [_revive(item) for item in node]
    if not isinstance(node, dict):
        return node
    if _TAG in node:
        return _revive_tagged(node)
    return {(k[1:] if _TAG_LIKE.match(k) else k): _revive(v) for k, v in node.items()}


def _revive_tagged(node: dict) -> Any:
    kind = node[_TAG]
    v = node.get("v")
    if kind == "undefined":
        return UNDEFINED
    if kind == "Date":
        if v is None and "v" in node:
            return INVALID_DATE
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(timezone.utc)
            except ValueError:
                # Years outside 1–9999 (`+275760-…`) are valid JavaScript dates that Python cannot hold.
                raise DecodeError(f"a Date Python cannot represent: {v[:40]!r}") from None
    elif kind == "BigInt":
        if isinstance(v, str) and _BIGINT.match(v):
            return BigInt(int(v))
    elif kind == "Number":
        named = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}
        if isinstance(v, str) and v in named:
            return named[v]
    elif kind == "Uint8Array":
        if isinstance(v, str) and _BASE64.match(v):
            try:
                return base64.b64decode(v, validate=True)
            except binascii.Error:
                pass
    elif kind == "Map":
        if isinstance(v, list):
            out = JSMap()
            for pair in v:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise DecodeError("a Map entry is not a [key, value] pair")
                out[_hashable(_revive(pair[0]), "Map key")] = _revive(pair[1])
            return out
    elif kind == "Set":
        if isinstance(v, list):
            return {_hashable(_revive(item), "Set element") for item in v}
    raise DecodeError(f"unknown or malformed tagged value {json.dumps(kind)[:64]}")


# --- the envelope (section 2) -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One stored entry. Times are ms since the Unix epoch."""

    value: Any
    created_at: int
    expires_at: int
    grace_until: int
    tags: tuple

    def fresh(self, now_ms: float) -> bool:
        return now_ms < self.expires_at

    def stale(self, now_ms: float) -> bool:
        """Past its TTL but within grace: what tiercache may serve when the origin fails."""
        return self.expires_at <= now_ms < self.grace_until

    def expires_in_ms(self, now_ms: float) -> int:
        return max(0, int(self.expires_at - now_ms))


def encode_entry(entry: Entry) -> str:
    """The stored text: `[2,k,c,e,g,t,d]` with no whitespace (tiercache's scripts read the header by its order)."""
    for name in ("created_at", "expires_at", "grace_until"):
        if not isinstance(getattr(entry, name), int) or isinstance(getattr(entry, name), bool):
            raise EncodeError(f"{name} must be an integer number of ms")
    if not entry.created_at <= entry.expires_at <= entry.grace_until:
        raise EncodeError("expected created_at <= expires_at <= grace_until")
    data, tagged = encode_value(entry.value)
    tags = json.dumps(list(entry.tags), separators=(",", ":"), ensure_ascii=False)
    return (
        f"[{FORMAT_VERSION},{1 if tagged else 0},{entry.created_at},{entry.expires_at},{entry.grace_until},"
        f"{tags},{data}]"
    )


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _no_constants(name: str) -> Any:
    # JSON has no NaN or Infinity literals; Python's parser accepts them unless told not to.
    raise DecodeError(f"{name} is not JSON")


def _fields(record: Any) -> tuple:
    """(k, c, e, g, t, d) of a version 2 array or a version 1 object."""
    if isinstance(record, list):
        version = record[0] if record else None
        if isinstance(version, bool) or version != 2:
            raise DecodeError(f"unknown entry format version {version!r}")
        if len(record) < 7:
            raise DecodeError("the stored entry has fewer than 7 elements")
        # Elements after d are a later minor addition: ignored.
        return tuple(record[1:7])
    if not isinstance(record, dict):
        raise DecodeError("the stored entry is not an array")
    version = record.get("v")
    if not _is_time(version) or version != 1:
        raise DecodeError(f"unknown entry format version {version!r}")
    if "d" not in record:
        raise DecodeError("the stored entry has no data")
    return tuple(record.get(name) for name in ("k", "c", "e", "g", "t", "d"))


def decode_entry(raw: Union[str, bytes], max_value_bytes: int = MAX_VALUE_BYTES) -> Entry:
    """Decodes stored text of version 2 or 1. Raises DecodeError for anything that is not a well-formed entry."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8"))
    if size > max_value_bytes:
        raise DecodeError(f"the stored entry is larger than {max_value_bytes} bytes")
    try:
        record = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise DecodeError("the stored entry is not JSON") from error
    k, c, e, g, t, d = _fields(record)
    if not (_is_time(c) and _is_time(e) and _is_time(g)) or not isinstance(t, list):
        raise DecodeError("the stored entry lacks c, e, g or t")
    if not all(isinstance(tag, str) for tag in t):
        raise DecodeError("the stored entry's tags are not strings")
    if isinstance(k, bool) or k not in (0, 1):
        raise DecodeError(f"the stored entry has an invalid k {k!r}")
    try:
        value = _revive(d) if k == 1 else d
    except RecursionError as error:
        raise DecodeError("the stored entry is nested too deeply") from error
    return Entry(value=value, created_at=c, expires_at=e, grace_until=g, tags=tuple(t))


# --- durations --------------------------------------------------------------------------------------------------------

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")

Duration = Union[int, float, str, timedelta]


def parse_duration(value: Duration, name: str = "duration", allow_zero: bool = False) -> int:
    """Milliseconds from a number (ms, like tiercache), a timedelta, or a string like '250ms', '30s', '5m', '1h'."""
    ms: Optional[float] = None
    if isinstance(value, timedelta):
        ms = value.total_seconds() * 1000
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        ms = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            ms = float(match.group(1)) * _UNITS[match.group(2) or "ms"]
    if ms is None or not math.isfinite(ms) or round(ms) < 0 or (round(ms) == 0 and not allow_zero):
        what = "a non-negative" if allow_zero else "a positive"
        raise EncodeError(f"expected `{name}` to be {what} duration (ms, timedelta or '5m'), got {value!r}")
    return int(round(ms))


# --- Redis (sections 1, 4, 4.1) ---------------------------------------------------------------------------------------

#: The tag index update tiercache runs per tag on every write (packages/tiercache/src/tiers/redis.ts, TAG_ADD):
#: add the member scored by its Redis expiry, prune expired members, expire the set with its last member.
TAG_ADD = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1"""


def lock_key_for(prefix: str, full_key: str) -> str:
    """The stampede lock of a key (packages/tiercache/src/resilience/lock.ts): same Cluster slot as the key."""
    start = full_key.find("{")
    if start != -1:
        end = full_key.find("}", start + 1)
        if end > start + 1:
            return f"{prefix}__lock:{full_key}"
    return f"{prefix}__lock:{{{full_key}}}"


class TiercacheWire:
    """Reads and writes tiercache entries under one prefix through a redis-py client (standalone Redis).

    `get` answers fresh values only (a stale or unreadable entry is a miss, like tiercache's `get`); `get_entry` gives
    the envelope, stale copies included with `allow_stale=True`. A write here reaches the memory tier of every running
    tiercache instance through Redis' CLIENT TRACKING (their default on standalone Redis): they drop their copies.
    """

    def __init__(
        self,
        client: Any,
        prefix: str = "tiercache:",
        *,
        max_value_bytes: int = MAX_VALUE_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(prefix, str) or prefix == "":
            raise EncodeError("expected `prefix` to be a non-empty string")
        self.client = client
        self.prefix = prefix if prefix.endswith(":") else prefix + ":"
        self.max_value_bytes = max_value_bytes
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def full_key(self, key: str) -> str:
        if not isinstance(key, str) or key == "" or len(key) > MAX_KEY_LENGTH:
            raise EncodeError(f"expected a key of 1 to {MAX_KEY_LENGTH} characters, got {key!r}"[:200])
        if key.startswith("__"):
            raise EncodeError("keys starting with __ are reserved for tiercache's own bookkeeping")
        return self.prefix + key

    def tag_key(self, tag: str) -> str:
        return f"{self.prefix}__tag:{tag}"

    # reads

    def get_entry(self, key: str, *, allow_stale: bool = False) -> Optional[Entry]:
        """The entry at `key`, or None when absent, expired (stale too unless `allow_stale`) or unreadable."""
        raw = self.client.get(self.full_key(key))
        if raw is None:
            return None
        try:
            entry = decode_entry(raw, self.max_value_bytes)
        except DecodeError as error:
            # A miss, never an error; the key is left alone: it may belong to a newer writer (section 5).
            log.debug("tiercache_wire: unreadable entry at %s: %s", key, error)
            return None
        now = self.now_ms()
        if entry.fresh(now) or (allow_stale and entry.stale(now)):
            return entry
        return None

    def get(self, key: str, default: Any = None) -> Any:
        entry = self.get_entry(key)
        return default if entry is None else entry.value

    # writes

    def _prepare(self, key: str, value: Any, ttl: Duration, grace: Duration, tags: Iterable[str], now: int):
        full = self.full_key(key)
        ttl_ms = parse_duration(ttl, "ttl")
        grace_ms = parse_duration(grace, "grace", allow_zero=True)
        tag_list = list(dict.fromkeys(tags))
        if len(tag_list) > MAX_TAGS:
            raise EncodeError(f"expected at most {MAX_TAGS} tags, got {len(tag_list)}")
        for tag in tag_list:
            if not isinstance(tag, str) or not 1 <= len(tag) <= MAX_TAG_LENGTH:
                raise EncodeError(f"expected tags of 1 to {MAX_TAG_LENGTH} characters, got {tag!r}"[:200])
        entry = Entry(value, now, now + ttl_ms, now + ttl_ms + grace_ms, tuple(tag_list))
        text = encode_entry(entry)
        if len(text.encode("utf-8")) > self.max_value_bytes:
            raise EncodeError(f"the entry for {key!r} is larger than {self.max_value_bytes} bytes")
        return full, text, ttl_ms + grace_ms, tag_list

    def set(self, key: str, value: Any, *, ttl: Duration, grace: Duration = 0, tags: Sequence[str] = ()) -> None:
        """Writes one entry: `SET key entry PX ttl+grace`, and its tag index entries, in one round trip."""
        self.set_many([(key, value)], ttl=ttl, grace=grace, tags=tags)

    def set_many(
        self,
        items: Iterable[tuple],
        *,
        ttl: Duration,
        grace: Duration = 0,
        tags: Sequence[str] = (),
    ) -> int:
        """Writes `(key, value)` pairs with the same options in one pipeline (the warming worker's `mset`)."""
        now = self.now_ms()
        prepared = [self._prepare(key, value, ttl, grace, tags, now) for key, value in items]
        pipe = self.client.pipeline(transaction=False)
        for full, text, px, tag_list in prepared:
            pipe.set(full, text, px=px)
            for tag in tag_list:
                pipe.eval(TAG_ADD, 1, self.tag_key(tag), full, now + px, now)
        pipe.execute()
        return len(prepared)

    def delete(self, *keys: str) -> int:
        """Unlinks keys and their stampede locks in one round trip; returns how many keys existed."""
        if not keys:
            return 0
        full = [self.full_key(key) for key in keys]
        pipe = self.client.pipeline(transaction=False)
        pipe.unlink(*full)
        pipe.unlink(*[lock_key_for(self.prefix, k) for k in full])
        existed, _locks = pipe.execute()
        return int(existed)


# --- the evict endpoint's client --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvictOutcome:
    """What one eviction did. Truthy when it succeeded. `status` is set whenever a response arrived."""

    ok: bool
    status: Optional[int] = None
    error: Optional[str] = None

    def __bool__(self) -> bool:
        return self.ok


#: No proxies from the environment: the endpoint is an internal address, and the key must go nowhere else (tiercache's
#: client, on Node's fetch, does not use them either).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EvictionClient:
    """Calls tiercache's evict endpoint (`DELETE /internal/cache`) with the shared key. Best-effort by design.

    `evict()` never raises: the batch's own work is done when it calls this, and a cache that misses the eviction still
    expires by its TTL. A failure is returned (`EvictOutcome(ok=False, ...)`) and logged once per failure streak; a
    network error or 5xx is retried within one overall timeout, a 4xx is final. No URL: disabled, one log line.
    """

    def __init__(
        self,
        url: Optional[str],
        key: Optional[str] = None,
        *,
        header: str = "x-internal-key",
        timeout: float = 2.0,
        retries: int = 1,
        logger: Optional[logging.Logger] = None,
    ) -> None:
        self.url = url or None
        if self.url is not None:
            if not re.match(r"^https?://", self.url):
                raise ValueError("expected `url` to be an http:// or https:// URL")
            if not key:
                raise ValueError("expected `key` to be a non-empty string when `url` is set")
        if not 0 <= retries <= 5:
            raise ValueError("expected `retries` to be from 0 to 5")
        self._key = key or ""
        self._header = header
        self._timeout = float(timeout)
        self._retries = retries
        self._log = logger or log
        self._failures = 0
        self._told_disabled = False

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def evict(self, keys: Sequence[str] = (), tags: Sequence[str] = (), all: bool = False) -> EvictOutcome:
        try:
            return self._evict(keys, tags, all)
        except Exception as error:  # noqa: BLE001 — never raise, whatever happens
            return EvictOutcome(False, None, f"unexpected: {type(error).__name__}")

    def _evict(self, keys: Sequence[str], tags: Sequence[str], all: bool) -> EvictOutcome:
        if self.url is None:
            if not self._told_disabled:
                self._told_disabled = True
                self._safe_log("warning", "tiercache: cache invalidation is disabled (no URL); evictions are skipped")
            return EvictOutcome(False, None, "disabled")
        body: dict = {}
        if keys:
            body["keys"] = list(keys)
        if tags:
            body["tags"] = list(tags)
        if all:
            body["all"] = True
        payload = json.dumps(body).encode("utf-8")
        deadline = time.monotonic() + self._timeout
        outcome = EvictOutcome(False, None, "timeout")
        for attempt in range(self._retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            outcome = self._attempt(payload, remaining)
            if outcome.ok or (outcome.status is not None and outcome.status < 500):
                break
            pause = 0.1 * 2**attempt
            if attempt == self._retries or deadline - time.monotonic() <= pause:
                break
            time.sleep(pause)
        self._report(outcome)
        return outcome

    def _attempt(self, payload: bytes, timeout: float) -> EvictOutcome:
        request = urllib.request.Request(
            self.url or "",
            data=payload,
            method="DELETE",
            headers={"content-type": "application/json", self._header: self._key},
        )
        try:
            with _OPENER.open(request, timeout=max(timeout, 0.001)) as response:
                response.read(4096)
                return EvictOutcome(True, response.status)
        except urllib.error.HTTPError as error:
            return EvictOutcome(False, error.code, _detail(error))
        except urllib.error.URLError as error:
            return EvictOutcome(False, None, _describe_failure(error.reason))
        except OSError as error:  # a timeout or reset while reading the answer
            return EvictOutcome(False, None, _describe_failure(error))

    def _report(self, outcome: EvictOutcome) -> None:
        where = self.url.split("?")[0] if self.url else ""
        if outcome.ok:
            if self._failures > 0:
                self._safe_log("info", f"tiercache: cache invalidation at {where} works again after {self._failures} failed calls")
            self._failures = 0
            return
        self._failures += 1
        if self._failures == 1:
            reason = f"HTTP {outcome.status}" if outcome.status is not None else outcome.error
            self._safe_log(
                "warning",
                f"tiercache: cache invalidation at {where} failed ({reason}); further failures are not logged until a call succeeds",
            )

    def _safe_log(self, level: str, message: str) -> None:
        try:
            getattr(self._log, level)(message)
        except Exception:  # noqa: BLE001 — a broken logger must not make a best-effort call raise
            pass


def _describe_failure(reason: Any) -> str:
    """`timeout`, or the network error's name (`ECONNREFUSED`, like tiercache's client), or its message."""
    text = str(reason)
    if isinstance(reason, TimeoutError) or "timed out" in text:
        return "timeout"
    if isinstance(reason, OSError) and reason.errno is not None:
        return errno.errorcode.get(reason.errno, text)
    return text[:200]


def _detail(error: urllib.error.HTTPError) -> str:
    """The message of an error body: `{"error": "..."}` or `{"error": {"message": "..."}}`, else the start of it."""
    try:
        text = error.read(4096).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001
        return ""
    try:
        parsed = json.loads(text)
        failure = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(failure, str):
            return failure[:200]
        if isinstance(failure, dict) and isinstance(failure.get("message"), str):
            return failure["message"][:200]
    except ValueError:
        pass
    return text[:200]
