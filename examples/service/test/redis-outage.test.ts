import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNewsWorker } from '../src/news/worker.js';
import { get, startApp, WARN } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { eventually, freePort } from './helpers/net.js';
import { redisCli, RedisServer } from './helpers/redis.js';

interface Meta {
  source: string;
}

const ROUTES = [
  '/products/1',
  '/products/2',
  '/news?limit=3',
  '/news?category=world',
  '/news/categories',
  '/news/1',
  '/trends',
];

describe('Redis SIGKILLed while the service runs', () => {
  let redis: RedisServer;
  let t: TestApp;

  beforeAll(async () => {
    redis = await RedisServer.start();
    // The in-process worker every second, as in production but faster: it warms the lists, and warms them again once
    // Redis is back, with no restart of anything.
    t = await startApp({
      database: { kind: 'pglite' },
      env: { REDIS_URL: redis.url, WORKER_INTERVAL: '1s' },
      jobs: true,
    });
    await eventually('the worker to warm the news lists', async () => {
      return (await get<{ meta: Meta }>(t.app, '/news')).body.meta.source !== 'postgres';
    });
    await get(t.app, '/products/1');
  });
  afterAll(async () => {
    await t?.close();
    await redis.stop();
  });

  it('keeps answering every route with 200, news from Postgres, and reports degraded', async () => {
    await redis.kill();
    await eventually('the cache to notice', () => t.app.cacheStatus().redis !== 'ready');

    for (const url of ROUTES) {
      const started = performance.now();
      const res = await get<{ meta: Meta }>(t.app, url);
      expect(res.status, url).toBe(200);
      // Bounded by the Redis timeout (100 ms) and the database, never by a reconnect.
      expect(performance.now() - started, url).toBeLessThan(1000);
      if (url.startsWith('/news') && url !== '/news/1') expect(res.body.meta.source, url).toBe('postgres');
    }
    const put = await t.app.inject({ method: 'PUT', url: '/products/3', payload: { stock: 7 } });
    expect(put.statusCode).toBe(200);
    expect((await get<{ data: { stock: number } }>(t.app, '/products/3')).body.data.stock).toBe(7);

    const health = await get(t.app, '/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'degraded', db: { ok: true }, cache: { redis: 'unavailable' } });
    expect((await get(t.app, '/stats')).status).toBe(200);

    const warned = () => t.logs.filter((l) => l.level === WARN && l.msg.startsWith('Redis is not reachable'));
    await eventually('the one warning about Redis', () => warned().length > 0, 5000);
    // Reconnect attempts keep failing meanwhile; they are counted, not logged.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(warned()).toHaveLength(1);
    expect(warned()[0]?.msg).toContain('redis-server --daemonize yes');
  });

  it('goes back to the cache when Redis returns, without a restart', async () => {
    await redis.restart();
    await eventually('health to say ok', async () => (await get(t.app, '/health')).body['status'] === 'ok', 15_000);
    // The restarted Redis is empty (nothing on disk); the next worker run warms it again.
    await eventually('the news lists to be back in Redis', async () => {
      return (await redisCli(redis.port, 'EXISTS', `${t.config.cachePrefix}news:list:all`)) === '1';
    });
    const news = await get<{ meta: Meta }>(t.app, '/news?limit=3');
    expect(['memory', 'redis']).toContain(news.body.meta.source);
    expect(news.queries).toBe(0);

    const fresh = await get<{ meta: Meta }>(t.app, '/products/40');
    expect(fresh.body.meta.source).toBe('origin');
    expect(await redisCli(redis.port, 'EXISTS', `${t.config.cachePrefix}product:40`)).toBe('1');
    // The watcher polls once a second.
    await eventually(
      'the line saying Redis is back',
      () => t.logs.some((l) => l.msg.startsWith('Redis is back')),
      3000,
    );
  });
});

describe('Redis absent when the service starts', () => {
  it('starts anyway, logs one line on how to start Redis, and serves from memory and the database', async () => {
    const port = await freePort();
    const t = await startApp({
      database: { kind: 'pglite' },
      env: { REDIS_URL: `redis://127.0.0.1:${port}` },
      waitForRedis: false,
    });
    try {
      await runNewsWorker(t.app.db, t.app.cache);
      for (const url of ROUTES) expect((await get(t.app, url)).status, url).toBe(200);
      expect((await get<{ meta: Meta }>(t.app, '/products/5')).body.meta.source).toBe('origin');
      expect((await get<{ meta: Meta }>(t.app, '/products/5')).body.meta.source).toBe('memory');
      expect((await get(t.app, '/health')).body['status']).toBe('degraded');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const lines = t.logs.filter((l) => l.msg.includes('redis-server --daemonize yes'));
      expect(lines).toHaveLength(1);
      expect(lines[0]?.msg).toContain(`127.0.0.1:${port}`);
      expect(lines[0]?.msg).toContain('apt-get install redis-server');
    } finally {
      await t.close();
    }
  });
});
