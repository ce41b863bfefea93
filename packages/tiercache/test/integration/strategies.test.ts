/**
 * Write strategies against a real redis-server (started here) and the machine's PostgreSQL (tables with a suffix of
 * this file's own; "Postgres unreachable" is a TCP proxy between the writer and Postgres, never a stopped server).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useRedis } from './helpers/fixture.js';
import { PG_PORT, createTables, dropTables, flushCounter, pgPool, upsert } from './helpers/pg.js';
import { callDeltas, commandCalls, sleep, uniquePrefix, waitFor } from './helpers/support.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

const fx = useRedis();
const suffix = `s${randomBytes(4).toString('hex')}`;
let db: pg.Pool;
let proxy: TcpProxy;
let viaProxy: pg.Pool;

beforeAll(async () => {
  db = pgPool();
  await createTables(db, suffix);
  proxy = await startTcpProxy(PG_PORT);
  viaProxy = pgPool(proxy.port);
});

afterAll(async () => {
  await dropTables(db, suffix);
  await Promise.all([db.end(), viaProxy.end().catch(() => undefined)]);
  await proxy.close();
});

describe('writeThrough', () => {
  it('rejects with the origin error and leaves both tiers untouched when Postgres refuses the write', async () => {
    const cache = await fx.open(uniquePrefix('wt1'));
    await cache.set('stock:1', 5);
    await expect(
      cache.writeThrough('stock:1', -1, (value) =>
        db.query(`INSERT INTO kv_${suffix} (key, value) VALUES ('stock:1', $1 / 0)`, [value]),
      ),
    ).rejects.toThrow('division by zero');
    expect(await cache.get('stock:1')).toBe(5);
    const raw = await fx.raw.get(`${cache.prefix}stock:1`);
    expect(raw).toMatch(/^\[2,0,\d+,\d+,\d+,\[\],5\]$/);
  });

  it('writes Postgres, then Redis, and another instance stops serving its old copy', async () => {
    const prefix = uniquePrefix('wt2');
    const a = await fx.open(prefix);
    const b = await fx.open(prefix);
    await a.set('stock:2', 1);
    expect(await b.get('stock:2')).toBe(1);
    const rows = await a.writeThrough('stock:2', 7, async (value) => {
      const result = await db.query(
        `INSERT INTO kv_${suffix} (key, value) VALUES ('stock:2', $1) ON CONFLICT (key) DO UPDATE SET value = $1`,
        [value],
      );
      return result.rowCount;
    });
    expect(rows).toBe(1);
    await waitFor('b to drop its copy', async () => (await b.get('stock:2')) === 7);
    expect((await db.query(`SELECT value FROM kv_${suffix} WHERE key = 'stock:2'`)).rows[0]).toEqual({ value: '7' });
  });

  it('resolves when Redis fails after the origin write: memory updated, invalidation replayed once Redis is back', async () => {
    const prefix = uniquePrefix('wt3');
    const redisProxy = await startTcpProxy(fx.redis.port);
    try {
      const a = fx.track(await fx.open(prefix, { redis: redisProxy.url, breaker: false }));
      const b = await fx.open(prefix);
      await a.set('stock:3', 1);
      expect(await b.get('stock:3')).toBe(1);
      const result = await a.writeThrough('stock:3', 2, async () => {
        await db.query(
          `INSERT INTO kv_${suffix} (key, value) VALUES ('stock:3', 2) ON CONFLICT (key) DO UPDATE SET value = 2`,
        );
        redisProxy.blackhole();
        return 'stored';
      });
      expect(result).toBe('stored');
      expect(await a.get('stock:3')).toBe(2);
      expect(a.stats().bus?.replayPending).toBe(1);
      redisProxy.pass();
      await waitFor('the replay', () => a.stats().bus?.replayPending === 0, { timeoutMs: 10_000 });
      // Replayed as a delete of the key everywhere: b loads the origin's value next.
      await waitFor('b to drop its copy', async () => (await b.get('stock:3')) === undefined, { timeoutMs: 10_000 });
    } finally {
      await redisProxy.close();
    }
  });
});

describe('write-behind into Postgres', () => {
  it('10 000 writes to 500 keys end with the latest value of every key in the table', async () => {
    const cache = await fx.open(uniquePrefix('wb1'));
    const queue = cache.writeBehindQueue<number>('kv', {
      batchSize: 200,
      write: (batch) =>
        upsert(
          db,
          suffix,
          batch.map((item) => ({ ...item, key: `wb1:${item.key}` })),
        ),
    });
    for (let i = 0; i < 10_000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => cache.writeBehind(`k${(i + j) % 500}`, i + j, { queue: 'kv' })),
      );
    }
    await queue.flush('20s');
    const { rows } = await db.query<{ key: string; value: string }>(
      `SELECT key, value FROM kv_${suffix} WHERE key LIKE 'wb1:%'`,
    );
    expect(rows).toHaveLength(500);
    for (const row of rows) expect(Number(row.value)).toBe(9_500 + Number(row.key.slice('wb1:k'.length)));
    expect(await queue.stats()).toMatchObject({ depth: 0, deadLetters: 0, durable: true });
  });

  it('lands everything after Postgres was unreachable for 5 s', async () => {
    const cache = await fx.open(uniquePrefix('wb2'));
    const queue = cache.writeBehindQueue<number>('kv', {
      backoff: '100ms',
      maxAttempts: 20,
      write: (batch) =>
        upsert(
          viaProxy,
          suffix,
          batch.map((item) => ({ ...item, key: `wb2:${item.key}` })),
        ),
    });
    proxy.reset();
    const started = Date.now();
    for (let i = 0; i < 300; i++) await cache.writeBehind(`k${i % 100}`, i, { queue: 'kv' });
    await sleep(Math.max(0, 5_000 - (Date.now() - started)));
    const during = await queue.stats();
    expect(during.depth).toBeGreaterThan(0);
    expect(during.failures).toBeGreaterThan(0);
    proxy.pass();
    await queue.flush('20s');
    const { rows } = await db.query(
      `SELECT count(*)::int AS n, sum(value)::int AS s FROM kv_${suffix} WHERE key LIKE 'wb2:%'`,
    );
    expect(rows[0]).toEqual({ n: 100, s: Array.from({ length: 100 }, (_, k) => 200 + k).reduce((a, b) => a + b) });
    expect((await queue.stats()).deadLetters).toBe(0);
  }, 40_000);

  it('moves a poison record to the dead-letter stream after maxAttempts and replays it once the origin accepts it', async () => {
    const cache = await fx.open(uniquePrefix('wb3'));
    const table = `kv_${suffix}`;
    await db.query(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_nonneg CHECK (value >= 0)`);
    const queue = cache.writeBehindQueue<number>('kv', {
      backoff: '10ms',
      maxAttempts: 3,
      write: (batch) =>
        upsert(
          db,
          suffix,
          batch.map((item) => ({ ...item, key: `wb3:${item.key}` })),
        ),
    });
    await cache.writeBehind('good', 1, { queue: 'kv' });
    await cache.writeBehind('poison', -1, { queue: 'kv' });
    await cache.writeBehind('also-good', 2, { queue: 'kv' });
    await queue.flush('10s');
    const dead = await queue.deadLetters();
    expect(dead.map((d) => [d.key, d.value])).toEqual([['poison', -1]]);
    expect(dead[0]?.reason).toContain('violates check constraint');
    const stream = await fx.raw.xlen(`${cache.prefix.slice(0, -1)}!wb:{kv}:dead`);
    expect(stream).toBe(1);
    const { rows } = await db.query(`SELECT key FROM ${table} WHERE key LIKE 'wb3:%' ORDER BY key`);
    expect(rows.map((r: { key: string }) => r.key)).toEqual(['wb3:also-good', 'wb3:good']);
    await db.query(`ALTER TABLE ${table} DROP CONSTRAINT ${table}_nonneg`);
    expect(await queue.replay()).toBe(1);
    await queue.flush('10s');
    const replayed = await db.query(`SELECT value FROM ${table} WHERE key = 'wb3:poison'`);
    expect(replayed.rows[0]).toEqual({ value: '-1' });
    expect((await queue.stats()).deadLetters).toBe(0);
  });
});

describe('counter into Postgres', () => {
  it('100 increments with flushEvery 16 flush at most 8 times and the table holds 100', async () => {
    const cache = await fx.open(uniquePrefix('c1'));
    let flushes = 0;
    const counter = cache.counter('views', {
      flushEvery: 16,
      flushInterval: '1h',
      flush: async (deltas, batchId) => {
        flushes++;
        await flushCounter(db, suffix, new Map([...deltas].map(([id, d]) => [`c1:${id}`, d])), batchId);
      },
    });
    for (let i = 0; i < 100; i++) await counter.incr('p1');
    expect(await counter.get('p1')).toBe(100);
    await cache.close();
    const { rows } = await db.query(`SELECT total FROM counters_${suffix} WHERE id = 'c1:p1'`);
    expect(rows[0]).toEqual({ total: '100' });
    expect(flushes).toBeLessThanOrEqual(8);
  });

  it('a flush retried under the same batch id is counted once', async () => {
    const cache = await fx.open(uniquePrefix('c2'));
    const ids: string[] = [];
    let failAfterCommit = true;
    const counter = cache.counter('views', {
      flushInterval: '1h',
      flush: async (deltas, batchId) => {
        ids.push(batchId);
        await flushCounter(db, suffix, new Map([...deltas].map(([id, d]) => [`c2:${id}`, d])), batchId);
        // Committed in Postgres, then "lost" before Redis heard of it: the retry must not count it again.
        if (failAfterCommit) {
          failAfterCommit = false;
          throw new Error('connection lost after COMMIT');
        }
      },
    });
    await counter.incr('p', 5);
    await expect(counter.flush()).rejects.toThrow('connection lost after COMMIT');
    await counter.flush();
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(ids[1]);
    const { rows } = await db.query(`SELECT total FROM counters_${suffix} WHERE id = 'c2:p'`);
    expect(rows[0]).toEqual({ total: '5' });
  });
});

describe('warm', () => {
  it('writes 10 000 entries in batches of 500, each one turn of script calls of batching.maxKeys', async () => {
    // Without tracking, a turn's sets go out as script calls of at most batching.maxKeys (32) keys, sent back to back
    // (the SETs inside the scripts are counted under `set` too, so only the script calls are checked).
    const cache = await fx.open(uniquePrefix('warm'), { bus: { tracking: false } });
    const before = await commandCalls(fx.raw);
    const entries = Array.from({ length: 10_000 }, (_, i) => ({ key: `n:${i}`, value: { id: i, title: `t${i}` } }));
    const result = await cache.warm(entries, { ttl: '10m', batchSize: 500 });
    expect(result).toEqual({ written: 10_000, failed: 0 });
    expect(await fx.raw.exists(`${cache.prefix}n:9999`)).toBe(1);
    const calls = callDeltas(before, await commandCalls(fx.raw));
    expect((calls['evalsha'] ?? 0) + (calls['eval'] ?? 0)).toBeLessThanOrEqual(20 * Math.ceil(500 / 32) + 1);
    // One bus message per batch, not per key.
    expect(calls['publish'] ?? 0).toBeLessThanOrEqual(20);
  });
});

describe('clear', () => {
  it('leaves queued origin writes and unflushed counter deltas in place (they live beside the prefix)', async () => {
    const cache = await fx.open(uniquePrefix('clr'));
    const written: string[] = [];
    let open = false;
    const queue = cache.writeBehindQueue('kv', {
      backoff: '10ms',
      maxAttempts: 1000,
      write: (batch) => {
        if (!open) throw new Error('origin closed');
        written.push(...batch.map((item) => item.key));
      },
    });
    const counter = cache.counter('views', { flushInterval: '1h', flush: () => undefined });
    await cache.writeBehind('k', 1, { queue: 'kv' });
    await counter.incr('p', 3);
    await cache.clear();
    expect(await cache.get('k')).toBeUndefined();
    expect(await counter.get('p')).toBe(3);
    expect(await counter.unflushed()).toBe(3);
    open = true;
    await queue.flush('5s');
    expect(written).toEqual(['k']);
  });
});
