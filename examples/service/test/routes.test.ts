import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNewsWorker } from '../src/news/worker.js';
import { get, INTERNAL_KEY, startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { redisCli, RedisServer } from './helpers/redis.js';

interface Meta {
  source: string;
  cacheExpiresIn: number | null;
  totalCached?: number;
}
interface Article {
  id: number;
  title: string;
  category: string;
  publishedAt: string;
  imageUrl: string | null;
}
interface NewsPage {
  data: Article[];
  page: { limit: number; nextCursor: string | null };
  meta: Meta;
}
interface ProductBody {
  data: { id: number; name: string; priceCents: number; related: { id: number; name: string }[] };
  meta: Meta;
}

/** Either tier: which one depends on whether this instance's memory copy is still there, not on the route. */
const CACHED = ['memory', 'redis'];

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis.stop();
});

describe.each([{ kind: 'pglite' as const }, { kind: 'postgres' as const }])('routes on $kind', (database) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ database, env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await t.close();
  });

  it('serves a product list with getOrSetMany: the cards missing from both tiers cost one query together', async () => {
    interface ListBody {
      data: ({ id: number; name: string; priceCents: number } | null)[];
      meta: { sources: Record<string, number>; missing: number };
    }
    const first = await get<ListBody>(t.app, '/products?ids=40,41,42,999999');
    expect(first.status).toBe(200);
    expect(first.queries).toBe(1);
    expect(first.body.data.map((card) => card?.id ?? null)).toEqual([40, 41, 42, null]);
    expect(first.body.meta).toEqual({ sources: { origin: 4 }, missing: 1 });
    // Three of five warm, the missing id remembered: the two new cards in one query.
    const second = await get<ListBody>(t.app, '/products?ids=40,41,42,43,44,999999');
    expect(second.queries).toBe(1);
    expect(second.body.meta).toEqual({ sources: { memory: 4, origin: 2 }, missing: 1 });
    const third = await get<ListBody>(t.app, '/products?ids=44,43,999999');
    expect(third.queries).toBe(0);
    expect(third.body.data.map((card) => card?.id ?? null)).toEqual([44, 43, null]);
    expect((await get(t.app, '/products?ids=')).status).toBe(400);
  });

  it('remembers a missing product for a while: the second request for it costs no query', async () => {
    const first = await get(t.app, '/products/888888');
    expect(first.status).toBe(404);
    expect(first.queries).toBe(1);
    const second = await get(t.app, '/products/888888');
    expect(second.status).toBe(404);
    expect(second.queries).toBe(0);
  });

  it('answers a product from the database first, then from memory with zero queries', async () => {
    const first = await get<ProductBody>(t.app, '/products/7');
    expect(first.status).toBe(200);
    expect(first.body.data.name).toBe('Soundbar 3.1');
    expect(first.body.meta.source).toBe('origin');
    // The page's four, and one that seeds the live view counter from products.view_count (once per product).
    expect(first.queries).toBe(5);

    const second = await get<ProductBody>(t.app, '/products/7');
    expect(second.body.meta.source).toBe('memory');
    expect(second.queries).toBe(0);
    expect(second.body.meta.cacheExpiresIn).toBeGreaterThan(590);
    expect(second.body.data).toEqual(first.body.data);

    const stored = await redisCli(redis.port, 'GET', `${t.config.cachePrefix}product:7`);
    // The stored envelope, version 2: [v, k, c, e, g, t, d] (docs/wire-format.md).
    const [v, , , , , , d] = JSON.parse(stored) as unknown[];
    expect({ v, d }).toMatchObject({ v: 2, d: { id: 7, name: 'Soundbar 3.1' } });
  });

  it('answers 404 for a product that does not exist and remembers it only for the short negative TTL', async () => {
    const res = await get<{ error: { code: string } }>(t.app, '/products/999');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    const pttl = Number(await redisCli(redis.port, 'PTTL', `${t.config.cachePrefix}product:999`));
    expect(pttl).toBeGreaterThan(25_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
    expect((await get(t.app, '/products/abc')).status).toBe(400);
  });

  it('updates a product, evicts its cached page and every page that lists it, and serves the change at once', async () => {
    await get(t.app, '/products/10');
    const neighbour = await get<ProductBody>(t.app, '/products/11');
    expect(neighbour.body.data.related.map((r) => r.id)).toContain(10);

    const put = await t.app.inject({
      method: 'PUT',
      url: '/products/10',
      payload: { name: '35mm f/1.4 Prime', priceCents: 52_900 },
    });
    expect(put.statusCode).toBe(200);
    expect(await redisCli(redis.port, 'EXISTS', `${t.config.cachePrefix}product:10`)).toBe('0');
    expect(await redisCli(redis.port, 'EXISTS', `${t.config.cachePrefix}product:11`)).toBe('0');

    const after = await get<ProductBody>(t.app, '/products/10');
    expect(after.body.meta.source).toBe('origin');
    expect(after.body.data).toMatchObject({ name: '35mm f/1.4 Prime', priceCents: 52_900 });
    const neighbourAfter = await get<ProductBody>(t.app, '/products/11');
    expect(neighbourAfter.body.data.related.find((r) => r.id === 10)?.name).toBe('35mm f/1.4 Prime');
  });

  it('refuses an update with no known field, an unknown field, or a negative price', async () => {
    for (const payload of [{}, { colour: 'red' }, { priceCents: -1 }]) {
      const res = await t.app.inject({ method: 'PUT', url: '/products/3', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    expect((await t.app.inject({ method: 'PUT', url: '/products/999', payload: { stock: 1 } })).statusCode).toBe(404);
  });

  it('serves news from Postgres before the worker ran and from the cached lists after', async () => {
    const before = await get<NewsPage>(t.app, '/news?limit=5');
    expect(before.status).toBe(200);
    expect(before.body.meta).toEqual({ source: 'postgres', cacheExpiresIn: null, totalCached: 0 });
    expect(before.body.data).toHaveLength(0);

    const result = await runNewsWorker(t.app.db, t.app.cache);
    expect(result).toMatchObject({ fetched: 68, unique: 60, inserted: 60, updated: 0 });
    // A second run finds the same stories and changes nothing: dedupe holds across runs too.
    expect(await runNewsWorker(t.app.db, t.app.cache)).toMatchObject({ inserted: 0, updated: 0 });

    const after = await get<NewsPage>(t.app, '/news?limit=5');
    expect(CACHED).toContain(after.body.meta.source);
    expect(after.body.meta.totalCached).toBe(60);
    expect(after.body.meta.cacheExpiresIn).toBeGreaterThan(3500);
    expect(after.queries).toBe(0);
    const keys = await redisCli(
      redis.port,
      'EXISTS',
      `${t.config.cachePrefix}news:list:all`,
      `${t.config.cachePrefix}news:list:sport`,
    );
    expect(keys).toBe('2');
  });

  it('pages through every article with the cursor, newest first, without repeats', async () => {
    const seen: Article[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const url: string = `/news?limit=7${cursor === null ? '' : `&cursor=${cursor}`}`;
      const { body } = await get<NewsPage>(t.app, url);
      seen.push(...body.data);
      cursor = body.page.nextCursor;
      if (cursor === null) break;
    }
    expect(seen).toHaveLength(60);
    expect(new Set(seen.map((a) => a.id)).size).toBe(60);
    const times = seen.map((a) => a.publishedAt);
    expect(times).toEqual([...times].sort().reverse());
    expect(seen.filter((a) => a.imageUrl !== null).length).toBe(36);
  });

  it('gives the same pages from Postgres as from the cache', async () => {
    const cached = await get<NewsPage>(t.app, '/news?category=science&limit=4');
    const second = await get<NewsPage>(t.app, `/news?category=science&limit=4&cursor=${cached.body.page.nextCursor}`);
    await t.app.cache.delete('news:list:science');
    const fromDb = await get<NewsPage>(t.app, '/news?category=science&limit=4');
    const fromDbSecond = await get<NewsPage>(
      t.app,
      `/news?category=science&limit=4&cursor=${fromDb.body.page.nextCursor}`,
    );
    expect(fromDb.body.meta.source).toBe('postgres');
    expect(fromDb.queries).toBe(1);
    expect(fromDb.body.data).toEqual(cached.body.data);
    expect(fromDbSecond.body.data).toEqual(second.body.data);
    expect(cached.body.data.every((a) => a.category === 'science')).toBe(true);
  });

  it('refuses an unknown category, a forged cursor and an out-of-range limit', async () => {
    for (const url of ['/news?category=weather', '/news?cursor=bm90LWEtY3Vyc29y', '/news?limit=0', '/news?limit=51']) {
      expect((await get(t.app, url)).status, url).toBe(400);
    }
  });

  it('lists the categories with their counts and serves single articles', async () => {
    const { body } = await get<{ data: { slug: string; count: number }[]; meta: Meta }>(t.app, '/news/categories');
    expect(body.data.map((c) => c.slug)).toEqual(['world', 'business', 'technology', 'science', 'sport']);
    expect(body.data.every((c) => c.count === 12)).toBe(true);
    expect(CACHED).toContain(body.meta.source);

    const { body: page } = await get<NewsPage>(t.app, '/news?limit=1');
    const id = page.data[0]?.id as number;
    const one = await get<{ data: Article; meta: Meta }>(t.app, `/news/${id}`);
    expect(one.body.data.id).toBe(id);
    expect(CACHED).toContain(one.body.meta.source);
    expect((await get(t.app, '/news/100000')).status).toBe(404);
  });

  it('serves trends from the cache after the first read', async () => {
    const first = await get<{ data: { items: unknown[] }; meta: Meta }>(t.app, '/trends');
    expect(first.status).toBe(200);
    expect(first.body.meta.source).toBe('origin');
    const second = await get<{ data: { items: unknown[] }; meta: Meta }>(t.app, '/trends');
    expect(second.body.meta.source).toBe('memory');
    expect(second.queries).toBe(0);
    expect(second.body.meta.cacheExpiresIn).toBeGreaterThan(6 * 3600 - 60);
  });

  it('reports health, stats and the dashboard', async () => {
    const health = await get(t.app, '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'ok',
      db: { ok: true, kind: database.kind },
      cache: { redis: 'ready' },
    });

    const stats = await get<{ hits: { memory: number }; loader: { calls: number }; service: { dbQueries: number } }>(
      t.app,
      '/stats',
    );
    expect(stats.body.hits.memory).toBeGreaterThan(0);
    expect(stats.body.loader.calls).toBeGreaterThan(0);
    expect(stats.body.service.dbQueries).toBeGreaterThan(0);

    const page = await t.app.inject({ method: 'GET', url: '/dashboard' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const script = await t.app.inject({ method: 'GET', url: '/dashboard/uplot.js' });
    expect(script.statusCode).toBe(200);
    expect(script.body).toContain('uPlot');
    expect((await t.app.inject({ method: 'GET', url: '/dashboard/..%2Fpackage.json' })).statusCode).toBe(404);
  });

  it('evicts through DELETE /internal/cache with the internal key and refuses a wrong one', async () => {
    await get(t.app, '/products/20');
    const key = `${t.config.cachePrefix}product:20`;
    expect(await redisCli(redis.port, 'EXISTS', key)).toBe('1');

    const refused = await t.app.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': 'not-the-key' },
      payload: { keys: ['product:20'] },
    });
    expect(refused.statusCode).toBe(401);
    expect(await redisCli(redis.port, 'EXISTS', key)).toBe('1');

    const done = await t.app.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': INTERNAL_KEY },
      payload: { keys: ['product:20'] },
    });
    expect(done.statusCode).toBe(200);
    expect(await redisCli(redis.port, 'EXISTS', key)).toBe('0');
    expect((await get<ProductBody>(t.app, '/products/20')).body.meta.source).toBe('origin');
  });
});
