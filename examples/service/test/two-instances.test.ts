import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { postgresSchema } from './helpers/db.js';
import { eventually } from './helpers/net.js';
import { redisCli, RedisServer } from './helpers/redis.js';

interface ProductBody {
  data: { id: number; name: string; stock: number };
  meta: { source: string };
}

/** Two instances of the service behind one load balancer: one Postgres schema, one Redis, one prefix. */
describe('two instances on one Redis and one database', () => {
  let redis: RedisServer;
  let a: TestApp;
  let b: TestApp;
  const { schema, drop } = postgresSchema();

  beforeAll(async () => {
    redis = await RedisServer.start();
    const env = { REDIS_URL: redis.url, CACHE_PREFIX: `svc-two-${process.pid}:` };
    a = await startApp({ database: { kind: 'postgres', schema }, env });
    b = await startApp({ database: { kind: 'postgres', schema }, env });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await drop();
    await redis.stop();
  });

  it('shares cached pages: what one instance loaded, the other reads from Redis', async () => {
    expect((await get<ProductBody>(a.app, '/products/30')).body.meta.source).toBe('origin');
    const fromB = await get<ProductBody>(b.app, '/products/30');
    expect(fromB.body.meta.source).toBe('redis');
    expect(fromB.queries).toBe(0);
  });

  it('a PUT on one instance deletes the shared copy in Redis', async () => {
    await get(a.app, '/products/31');
    const put = await a.app.inject({ method: 'PUT', url: '/products/31', payload: { stock: 3 } });
    expect(put.statusCode).toBe(200);
    expect(await redisCli(redis.port, 'EXISTS', `${a.config.cachePrefix}product:31`)).toBe('0');
  });

  // Needs the bus of issue 5: B holds the page in its memory tier, and only a message from A can make it drop it.
  // The bus is asynchronous, so B gets 100 ms (issue 5 targets a p99 of 5 ms); with no bus B keeps the old page for
  // the page's whole TTL (10 minutes), so the bound tells the two apart.
  it('a PUT on one instance is seen by a GET on the other at once', async () => {
    await get(a.app, '/products/32');
    // A's write to Redis reaches B as an invalidation a moment later and may drop the copy B just took; B holds the
    // page in memory once that has settled.
    await eventually(
      'instance B to hold the page in memory',
      async () => {
        return (await get<ProductBody>(b.app, '/products/32')).body.meta.source === 'memory';
      },
      2000,
    );

    const put = await a.app.inject({ method: 'PUT', url: '/products/32', payload: { name: 'Insulated Jacket II' } });
    expect(put.statusCode).toBe(200);

    let name = '';
    await eventually(
      'instance B to serve the new name',
      async () => {
        name = (await get<ProductBody>(b.app, '/products/32')).body.data.name;
        return name === 'Insulated Jacket II';
      },
      100,
    ).catch(() => undefined);
    expect(name).toBe('Insulated Jacket II');
  });
});
