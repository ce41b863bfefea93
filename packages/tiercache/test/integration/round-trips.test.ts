/**
 * mget, mset and deleteMany are one round trip each. Two independent proofs per operation:
 * - MONITOR shows which commands reached Redis, with their arguments (one MGET/UNLINK with every key);
 * - the proxy holds Redis' replies: everything the operation needs reaches Redis before the client has seen a single
 *   reply, so the client never waited between commands (a pipeline of N SETs is N commands but one round trip).
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache, CacheOptions } from 'tiercache';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import {
  callDeltas,
  closeRawClients,
  commandCalls,
  rawClient,
  sleep,
  uniquePrefix,
  waitFor,
} from './helpers/support.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

let redis: RedisProcess;
let raw: Redis;
let proxy: TcpProxy;
const caches: Cache[] = [];

beforeAll(async () => {
  redis = await startRedis();
  raw = await rawClient(redis.port);
  proxy = await startTcpProxy(redis.port);
});

afterEach(async () => {
  proxy.pass();
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

afterAll(async () => {
  await proxy.close();
  await closeRawClients();
  await stopAllRedis();
});

/** A cache talking to Redis through the proxy, with a timeout long enough to outlast a held reply. */
async function open(prefix: string, options: CacheOptions = {}): Promise<Cache> {
  const cache = createCache({ prefix, redis: proxy.url, timeouts: { redisMs: 5000 }, ...options });
  caches.push(cache);
  await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
  // Connection set-up (subscribe, CLIENT TRACKING) must be over before a test starts watching the commands sent.
  if (options.bus !== false) await waitFor('tracking to be on', () => cache.stats().bus?.tracking === true);
  return cache;
}

/** Commands the cache sends while monitored, lowercased name first: the test's own probes (from `raw`) are left out. */
async function monitorCommands(): Promise<{ readonly commands: string[][]; stop(): void }> {
  const probeAddress = /(?:^| )addr=(\S+)/.exec(String(await raw.client('INFO')))?.[1];
  if (probeAddress === undefined) throw new Error('CLIENT INFO did not name the address');
  const monitor = await raw.monitor();
  const commands: string[][] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === probeAddress) return;
    const [name, ...rest] = args;
    commands.push([(name ?? '').toLowerCase(), ...rest]);
  });
  return { commands, stop: () => monitor.disconnect() };
}

type Watch = Awaited<ReturnType<typeof monitorCommands>>;

/**
 * Runs `operation` with Redis' replies held until `landed` says its commands reached Redis, then releases them. The
 * operation must still be waiting then, and must send nothing more once it sees replies: that is one round trip.
 */
async function inOneRoundTrip<T>(
  watch: Watch,
  operation: () => Promise<T>,
  landed: () => boolean | Promise<boolean>,
): Promise<{ readonly value: T; readonly commands: string[][] }> {
  proxy.hold();
  let settled = false;
  const running = operation().finally(() => (settled = true));
  await waitFor('the commands to reach Redis', landed);
  await sleep(50);
  expect(settled, 'the operation finished without a reply from Redis').toBe(false);
  const sentBeforeAnyReply = watch.commands.length;

  proxy.pass();
  const value = await running;
  await sleep(50);
  expect(watch.commands.length, 'commands were sent after the first reply').toBe(sentBeforeAnyReply);
  return { value, commands: watch.commands.slice() };
}

const KEYS = Array.from({ length: 100 }, (_, i) => `k${i}`);

async function seed(prefix: string): Promise<void> {
  const writer = createCache({ prefix, redis: redis.url, memory: false });
  await waitFor('the writer to connect', () => writer.stats().redis.state === 'ready');
  await writer.mset(KEYS.map((key, i) => ({ key, value: { i } })));
  await writer.close();
}

describe('batch operations are one round trip', () => {
  it('mget of 100 keys sends one MGET with every key, before any reply comes back', async () => {
    const prefix = uniquePrefix('mget');
    await seed(prefix);
    const cache = await open(prefix, { memory: false });
    const watch = await monitorCommands();
    const before = await commandCalls(raw);

    const { value, commands } = await inOneRoundTrip(
      watch,
      () => cache.mget(KEYS),
      () => watch.commands.length > 0,
    );

    expect(value).toEqual(KEYS.map((_, i) => ({ i })));
    expect(commands).toEqual([['mget', ...KEYS.map((k) => `${prefix}${k}`)]]);
    const deltas = callDeltas(before, await commandCalls(raw));
    expect(deltas['mget']).toBe(1);
    expect(deltas['get']).toBeUndefined();
    watch.stop();
  });

  it('mget asks Redis only for the keys memory lacks, still in one MGET', async () => {
    const prefix = uniquePrefix('mget-l1');
    await seed(prefix);
    const cache = await open(prefix);
    const warm = KEYS.slice(0, 40);
    for (const key of warm) await cache.get(key);
    const watch = await monitorCommands();

    const { value, commands } = await inOneRoundTrip(
      watch,
      () => cache.mget(KEYS),
      () => watch.commands.length > 0,
    );

    expect(value).toEqual(KEYS.map((_, i) => ({ i })));
    expect(commands).toEqual([['mget', ...KEYS.slice(40).map((k) => `${prefix}${k}`)]]);
    expect(cache.stats().hits).toMatchObject({ memory: 40, redis: 100 });
    watch.stop();
  });

  it('mset of 100 entries lands in Redis in full before any reply comes back', async () => {
    const prefix = uniquePrefix('mset');
    const cache = await open(prefix);
    const watch = await monitorCommands();
    const fullKeys = KEYS.map((k) => `${prefix}${k}`);

    const { commands } = await inOneRoundTrip(
      watch,
      () => cache.mset(KEYS.map((key, i) => ({ key, value: i, ttl: 60_000 }))),
      async () => (await raw.exists(...fullKeys)) === KEYS.length,
    );

    const sets = commands.filter(([name]) => name === 'set');
    expect(sets.map(([, key, , px, ttl]) => [key, px?.toLowerCase(), ttl])).toEqual(
      fullKeys.map((key) => [key, 'px', '60000']),
    );
    const fresh = createCache({ prefix, redis: redis.url, memory: false });
    caches.push(fresh);
    await waitFor('the reader to connect', () => fresh.stats().redis.state === 'ready');
    expect(await fresh.mget(KEYS)).toEqual(KEYS.map((_, i) => i));
    watch.stop();
  });

  it('deleteMany of 100 keys unlinks every key before any reply comes back', async () => {
    const prefix = uniquePrefix('delete-many');
    await seed(prefix);
    const cache = await open(prefix);
    const watch = await monitorCommands();
    const fullKeys = KEYS.map((k) => `${prefix}${k}`);

    const { value, commands } = await inOneRoundTrip(
      watch,
      () => cache.deleteMany(KEYS),
      async () => (await raw.exists(...fullKeys)) === 0,
    );

    expect(value).toBe(KEYS.length);
    // One UNLINK per key (so the count is exact: a key found in either tier counts once), and the cache's own
    // bookkeeping keys (locks) in the same round trip.
    expect(commands.map(([name]) => name)).toEqual(commands.map(() => 'unlink'));
    expect(commands.slice(0, KEYS.length)).toEqual(fullKeys.map((key) => ['unlink', key]));
    watch.stop();
  });
});
