import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Cache, CacheOptions } from '../../src/index.js';
import { createEvictHandler, createInvalidationClient } from '../../src/http/index.js';
import type { EvictableCache } from '../../src/http/index.js';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { closeRawClients, rawClient, uniquePrefix, waitFor } from './helpers/support.js';

const KEY = 'evict-integration-key-1';
const NEXT_KEY = 'evict-integration-key-2';

let redis: RedisProcess;
let raw: Redis;
const caches: Cache[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = await rawClient(redis.port);
});

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

afterAll(async () => {
  await closeRawClients();
  await stopAllRedis();
});

async function open(options: CacheOptions): Promise<Cache> {
  const cache = createCache({ redis: redis.url, ...options });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  return cache;
}

/** Serves the evict endpoint for `cache` on a loopback port; returns its URL. */
async function endpoint(cache: EvictableCache): Promise<string> {
  const handler = createEvictHandler({ cache, keys: [KEY, NEXT_KEY] });
  const server = createServer((req, res) => void handler(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal/cache`;
}

/** `key: null` sends no key header. */
function evict(url: string, body: unknown, key: string | null = KEY): Promise<Response> {
  return fetch(url, {
    method: 'DELETE',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-internal-key': key }) },
    body: JSON.stringify(body),
  });
}

describe('the evict endpoint over a real Redis', () => {
  it('evicts from Redis and from the serving instance’s memory, so another instance misses too', async () => {
    const prefix = uniquePrefix('evict');
    const a = await open({ prefix });
    // B reads through Redis only: what it sees is what Redis holds (L1 coherence is the bus's job).
    const b = await open({ prefix, memory: false });
    await a.mset(['t1', 't2', 't3'].map((key) => ({ key, value: `trend ${key}` })));
    expect(await a.getWithMeta('t1')).toMatchObject({ source: 'memory' });
    expect(await b.get('t1')).toBe('trend t1');

    const url = await endpoint(a);
    const reply = await evict(url, { keys: ['t1', 't2', 'missing'] });
    expect(reply.status).toBe(200);
    expect(await reply.json()).toEqual({ evicted: { keys: 2, tags: 0, all: false } });

    expect(await raw.exists(`${prefix}t1`, `${prefix}t2`, `${prefix}t3`)).toBe(1);
    expect(await a.get('t1')).toBeUndefined();
    expect(await b.get('t2')).toBeUndefined();
    expect(await b.get('t3')).toBe('trend t3');
  });

  it('with a missing, wrong, short or long key answers 401 and leaves Redis and memory untouched', async () => {
    const prefix = uniquePrefix('refused');
    const a = await open({ prefix });
    await a.set('t1', 'v');
    const url = await endpoint(a);
    for (const key of [null, 'evict-integration-key-3', KEY.slice(0, 4), `${NEXT_KEY}-and-more`]) {
      const reply = await evict(url, { keys: ['t1'], all: true }, key);
      expect(reply.status, String(key)).toBe(401);
    }
    expect(await raw.exists(`${prefix}t1`)).toBe(1);
    expect(await a.getWithMeta('t1')).toMatchObject({ source: 'memory', value: 'v' });
    expect(a.stats().deletes).toBe(0);
  });

  it('answers 413 to an oversize body and evicts nothing', async () => {
    const prefix = uniquePrefix('oversize');
    const a = await open({ prefix });
    await a.set('t1', 'v');
    const url = await endpoint(a);
    // About 100 KiB, over the default 64 KiB limit.
    const padding = Array.from({ length: 1000 }, (_, i) => `padding-key-${i}-${'x'.repeat(80)}`);
    const reply = await evict(url, { keys: ['t1', ...padding] });
    expect(reply.status).toBe(413);
    expect(await raw.exists(`${prefix}t1`)).toBe(1);
  });

  it('clears the prefix `app:user` without touching `app:users:*`', async () => {
    const a = await open({ prefix: 'app:user' });
    await a.set('1', 'one');
    await a.set('2', 'two');
    for (const key of ['app:users:1', 'app:users:2', 'app:userx']) await raw.set(key, 'untouched');
    const url = await endpoint(a);
    const reply = await evict(url, { all: true }, NEXT_KEY);
    expect(reply.status).toBe(200);
    expect(await raw.exists('app:user:1', 'app:user:2')).toBe(0);
    for (const key of ['app:users:1', 'app:users:2', 'app:userx']) expect(await raw.get(key)).toBe('untouched');
    await raw.del('app:users:1', 'app:users:2', 'app:userx');
  });

  it('answers 503 when Redis stalls and the cache is set to throw on write errors; the client retries later', async () => {
    const prefix = uniquePrefix('stall');
    const a = await open({ prefix, writeErrors: 'throw', timeouts: { redisMs: 100 } });
    await a.set('t1', 'v');
    const url = await endpoint(a);
    await redis.pause(600);
    const reply = await evict(url, { keys: ['t1'] });
    expect(reply.status).toBe(503);
    expect(await reply.json()).toEqual({ error: 'The eviction could not be completed; it is safe to retry' });
    // The same body again once Redis answers: the eviction is idempotent.
    await waitFor('Redis to answer again', async () => (await raw.ping()) === 'PONG');
    const client = createInvalidationClient({ url, key: KEY, logger: { warn: () => {} } });
    expect(await client.evict({ keys: ['t1'] })).toEqual({ ok: true, status: 200 });
    expect(await raw.exists(`${prefix}t1`)).toBe(0);
  });

  it('a batch job’s client evicts what the job rewrote, so the API stops serving the old copy', async () => {
    const prefix = uniquePrefix('batch');
    const api = await open({ prefix });
    await api.getOrSet('trends:today', () => ['old']);
    expect(await api.getOrSet('trends:today', () => ['never'])).toEqual(['old']);

    // The job: upserts the rows (here, nothing to do), then tells the API.
    const client = createInvalidationClient({ url: await endpoint(api), key: KEY, timeout: '2s' });
    expect(await client.evict({ keys: ['trends:today'] })).toEqual({ ok: true, status: 200 });

    expect(await api.getOrSet('trends:today', () => ['new'])).toEqual(['new']);
  });
});
