import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNewsWorker } from '../src/news/worker.js';
import { get, startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { RedisServer } from './helpers/redis.js';

interface ProductBody {
  data: { id: number; stock: number };
  meta: { source: string; views: number };
}

const FLUSH_EVERY = 16;

let redis: RedisServer;
let t: TestApp;
beforeAll(async () => {
  redis = await RedisServer.start();
  t = await startApp({
    database: { kind: 'postgres' },
    env: { REDIS_URL: redis.url, VIEW_FLUSH_EVERY: String(FLUSH_EVERY) },
  });
});
afterAll(async () => {
  await t?.close();
  await redis?.stop();
});

async function viewCount(id: number): Promise<number> {
  const [row] = await t.app.db.query<{ view_count: string }>('SELECT view_count FROM products WHERE id = $1', [id]);
  return Number(row?.view_count);
}

describe('write strategies in the service (PostgreSQL, real Redis)', () => {
  it('100 views of one product: the page counts 100, the database saw at most 100/N + 1 UPDATEs and ends at 100', async () => {
    const before = await viewCount(3);
    const flushesBefore = t.app.viewFlushes();
    let last = 0;
    for (let i = 0; i < 100; i++) last = (await get<ProductBody>(t.app, '/products/3')).body.meta.views;
    expect(last).toBe(before + 100);
    await t.app.views.flush();
    const updates = t.app.viewFlushes() - flushesBefore;
    expect(updates).toBeLessThanOrEqual(Math.floor(100 / FLUSH_EVERY) + 1);
    expect(updates).toBeGreaterThanOrEqual(1);
    expect(await viewCount(3)).toBe(before + 100);
    console.log(`figures: 100 views, flushEvery ${FLUSH_EVERY} -> ${updates} UPDATEs`);
    const ops = await get<{ counters: Record<string, { unflushed: number }> }>(t.app, '/ops/strategies');
    expect(ops.body.counters['product-views']?.unflushed).toBe(0);
  });

  it('a stock change is written through: the database first, then the cached stock and the page', async () => {
    const put = await t.app.inject({ method: 'PUT', url: '/products/5/stock', payload: { stock: 42 } });
    expect(put.statusCode).toBe(200);
    const [row] = await t.app.db.query<{ stock: number }>('SELECT stock FROM products WHERE id = 5');
    expect(row?.stock).toBe(42);
    const stock = await get<{ data: { stock: number }; meta: { source: string } }>(t.app, '/products/5/stock');
    expect(stock.body).toMatchObject({ data: { stock: 42 }, meta: { source: 'memory' } });
    expect((await get<ProductBody>(t.app, '/products/5')).body.data.stock).toBe(42);
    const missing = await t.app.inject({ method: 'PUT', url: '/products/999999/stock', payload: { stock: 1 } });
    expect(missing.statusCode).toBe(404);
  });

  it('orders go through the write-behind queue into the order log', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/products/2/orders', payload: { quantity: 1 + (i % 3) } });
      expect(res.statusCode).toBe(202);
      keys.push((res.json() as { data: { orderKey: string } }).data.orderKey);
    }
    await t.app.orders.flush('10s');
    const rows = await t.app.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM orders WHERE order_key = ANY($1::text[])',
      [keys.map((key) => `order:${key}`)],
    );
    expect(rows[0]?.n).toBe(20);
    const ops = await get<{ queues: { orders: { depth: number; deadLetters: number } } }>(t.app, '/ops/strategies');
    expect(ops.body.queues.orders).toMatchObject({ depth: 0, deadLetters: 0 });
  });

  it('1000 orders posted 50 at a time all reach the order log, with the queue lag bounded', async () => {
    let maxLag = 0;
    let maxDepth = 0;
    const sampler = setInterval(() => {
      void t.app.orders.stats().then((s) => {
        maxLag = Math.max(maxLag, s.lagMs);
        maxDepth = Math.max(maxDepth, s.depth);
      });
    }, 10);
    const started = performance.now();
    const keys: string[] = [];
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () =>
          t.app.inject({ method: 'POST', url: '/products/4/orders', payload: { quantity: 1 } }),
        ),
      );
      for (const res of batch) keys.push(`order:${(res.json() as { data: { orderKey: string } }).data.orderKey}`);
    }
    const posted = performance.now() - started;
    await t.app.orders.flush('20s');
    const drained = performance.now() - started;
    clearInterval(sampler);
    const rows = await t.app.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM orders WHERE order_key = ANY($1::text[])',
      [keys],
    );
    expect(rows[0]?.n).toBe(1000);
    console.log(
      `figures: 1000 orders posted in ${posted.toFixed(0)} ms, all in the table after ${drained.toFixed(0)} ms; ` +
        `max queue depth ${maxDepth}, max lag ${maxLag} ms`,
    );
    expect(maxLag).toBeLessThan(5_000);
  });

  it('the news worker warms its lists with warm()', async () => {
    const result = await runNewsWorker(t.app.db, t.app.cache);
    expect(result.warmed).toBeGreaterThan(5);
    expect(result.warmFailed).toBe(0);
    expect(await t.app.cache.get('news:list:all')).toBeDefined();
  });
});
