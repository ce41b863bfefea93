import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/meta.js';
import { runTrendsBatch, trendsEvictor } from '../src/trends/batch.js';
import { get, INTERNAL_KEY, startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { RedisServer } from './helpers/redis.js';

interface TrendsBody {
  data: { computedAt: string | null; items: { rank: number; productId: number; views: number }[] };
  meta: { source: string };
}

function captureLog(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  return {
    lines,
    info: (message) => lines.push({ level: 'info', message }),
    warn: (message) => lines.push({ level: 'warn', message }),
    error: (message) => lines.push({ level: 'error', message }),
  };
}

describe('the trends batch and GET /trends', () => {
  let redis: RedisServer;
  let t: TestApp;
  let evictUrl: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    t = await startApp({ database: { kind: 'pglite' }, env: { REDIS_URL: redis.url }, listen: true });
    evictUrl = `${t.url}/internal/cache`;
    await runTrendsBatch(t.app.db, undefined, captureLog());
  });
  afterAll(async () => {
    await t?.close();
    await redis.stop();
  });

  /** A product that was not trending gets a burst of views, as the analytics export would deliver them. */
  async function burstOfViews(productId: number, views: number): Promise<void> {
    await t.app.db.query(
      `INSERT INTO product_views (product_id, viewed_at) SELECT $1, now() - (i * interval '1 second') FROM generate_series(1, $2) AS i`,
      [productId, views],
    );
  }

  it('changes /trends at once: the batch evicts the cached copy through the internal endpoint', async () => {
    const before = await get<TrendsBody>(t.app, '/trends');
    expect(before.body.data.items).toHaveLength(10);
    expect(before.body.data.items.map((i) => i.productId)).not.toContain(47);
    expect((await get<TrendsBody>(t.app, '/trends')).body.meta.source).toBe('memory');

    await burstOfViews(47, 2000);
    const log = captureLog();
    const result = await runTrendsBatch(t.app.db, trendsEvictor({ url: evictUrl, key: INTERNAL_KEY }, log), log);
    expect(result).toEqual({ ranked: 10, eviction: { ok: true, status: 200 } });

    const after = await get<TrendsBody>(t.app, '/trends');
    expect(after.body.meta.source).toBe('origin');
    expect(after.body.data.items[0]).toMatchObject({ rank: 1, productId: 47 });
    expect(after.body.data.items[0]?.views).toBeGreaterThanOrEqual(2000);
    expect(log.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('answers 401 to a wrong internal key, and the batch logs a warning but succeeds', async () => {
    const refused = await t.app.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': 'wrong-key-wrong-key' },
      payload: { keys: ['trends:top'] },
    });
    expect(refused.statusCode).toBe(401);

    const cached = await get<TrendsBody>(t.app, '/trends');
    await burstOfViews(48, 5000);
    const log = captureLog();
    const result = await runTrendsBatch(
      t.app.db,
      trendsEvictor({ url: evictUrl, key: 'wrong-key-wrong-key' }, log),
      log,
    );
    expect(result.ranked).toBe(10);
    expect(result.eviction).toMatchObject({ ok: false, status: 401 });
    const warnings = log.lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toContain('401');
    expect(warnings[0]?.message).not.toContain('wrong-key');

    // The ranking is committed; the API keeps serving its cached copy until an eviction gets through (or the TTL).
    const [top] = await t.app.db.query<{ product_id: number }>(
      'SELECT product_id FROM trending_products WHERE rank = 1',
    );
    expect(top?.product_id).toBe(48);
    const stillCached = await get<TrendsBody>(t.app, '/trends');
    expect(['memory', 'redis']).toContain(stillCached.body.meta.source);
    expect(stillCached.body.data).toEqual(cached.body.data);
  });

  it('skips the eviction with one log line when the URL or the key is unset', async () => {
    const log = captureLog();
    const evictor = trendsEvictor({ url: undefined, key: INTERNAL_KEY }, log);
    expect(evictor).toBeUndefined();
    const result = await runTrendsBatch(t.app.db, evictor, log);
    expect(result).toEqual({ ranked: 10, eviction: 'skipped' });
    expect(log.lines.filter((l) => l.message.includes('TRENDS_EVICT_URL unset'))).toHaveLength(1);
    expect(trendsEvictor({ url: evictUrl, key: undefined }, log)).toBeUndefined();
    expect(log.lines.at(-1)?.message).toContain('INTERNAL_KEY unset');
  });
});
