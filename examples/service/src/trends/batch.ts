import { createInvalidationClient } from 'tiercache/http';
import type { InvalidationClient } from 'tiercache/http';
import type { Db } from '../db/index.js';
import { keys } from '../keys.js';
import type { Logger } from '../meta.js';

/** How many products the trends list holds. */
export const TREND_SIZE = 10;

export interface TrendsBatchResult {
  readonly ranked: number;
  /** What the eviction call reported; `skipped` when no URL or key is configured. */
  readonly eviction: { readonly ok: boolean; readonly status?: number; readonly error?: string } | 'skipped';
}

export interface TrendsEvictTarget {
  /** The service's `DELETE /internal/cache`. */
  readonly url: string | undefined;
  readonly key: string | undefined;
}

/**
 * The best-effort client, or undefined (with one log line saying what that means) when the URL or key is missing.
 * Built once per process, so a batch on an interval does not repeat the line.
 */
export function trendsEvictor(target: TrendsEvictTarget, log: Logger): InvalidationClient | undefined {
  if (target.url === undefined || target.key === undefined) {
    const missing = [target.url === undefined && 'TRENDS_EVICT_URL', target.key === undefined && 'INTERNAL_KEY']
      .filter(Boolean)
      .join(' and ');
    log.info(`trends: ${missing} unset, eviction skipped: GET /trends changes when its cached copy expires (6 h)`);
    return undefined;
  }
  return createInvalidationClient({
    url: target.url,
    key: target.key,
    timeout: '2s',
    retries: 1,
    // The client warns once per failure streak (and says when calls work again), so a batch on an interval does not
    // repeat the same warning every run.
    logger: { warn: (m) => log.warn(m), info: (m) => log.info(m) },
  });
}

/**
 * The trends batch: rank products by recency-weighted views of the last 7 days (a view a day old counts 1/e), upsert
 * the ranking, then ask the API to drop its cached copy so `GET /trends` changes at once instead of after 6 hours.
 * The eviction is best-effort: the ranking is committed before it, and a failed call is a warning, not a failed batch.
 */
export async function runTrendsBatch(
  db: Db,
  evictor: InvalidationClient | undefined,
  log: Logger,
): Promise<TrendsBatchResult> {
  const ranked = await db.transaction(async (tx) => {
    const rows = await tx.query<{ rank: number }>(
      `WITH scored AS (
         SELECT product_id, count(*)::int AS views,
                sum(exp(-extract(epoch FROM (now() - viewed_at)) / 86400.0))::float8 AS score
           FROM product_views
          WHERE viewed_at > now() - interval '7 days'
          GROUP BY product_id
          ORDER BY score DESC, product_id
          LIMIT $1)
       INSERT INTO trending_products (rank, product_id, views, score, computed_at)
       SELECT row_number() OVER (ORDER BY score DESC, product_id), product_id, views, score, now() FROM scored
       ON CONFLICT (rank) DO UPDATE SET product_id = EXCLUDED.product_id, views = EXCLUDED.views,
                                        score = EXCLUDED.score, computed_at = EXCLUDED.computed_at
       RETURNING rank`,
      [TREND_SIZE],
    );
    await tx.query('DELETE FROM trending_products WHERE rank > $1', [rows.length]);
    return rows.length;
  });
  if (evictor === undefined) {
    log.info(`trends: ${ranked} products ranked; eviction skipped`);
    return { ranked, eviction: 'skipped' };
  }
  const outcome = await evictor.evict({ keys: [keys.trends] });
  const eviction = {
    ok: outcome.ok,
    ...(outcome.status === undefined ? {} : { status: outcome.status }),
    ...(!outcome.ok && outcome.error !== undefined ? { error: outcome.error } : {}),
  };
  const how = outcome.ok ? 'cached copy evicted' : `eviction failed (${outcome.status ?? outcome.error ?? 'error'})`;
  log.info(`trends: ${ranked} products ranked; ${how}`);
  return { ranked, eviction };
}
