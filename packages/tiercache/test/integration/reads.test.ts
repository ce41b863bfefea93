/**
 * The read features against a real redis-server: getOrSetMany (one loader call for the cold keys, in one process and
 * across processes), per-key fail-safe, adaptive TTL and tags seen in Redis, and conditional refresh renewing an
 * entry without writing its value.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useRedis } from './helpers/fixture.js';
import { callDeltas, commandCalls, sleep, uniquePrefix } from './helpers/support.js';

/** A stored version 2 entry's times and data (docs/wire-format.md: `[2,k,c,e,g,t,d]`). */
function fields(stored: string): { c: number; e: number; d: unknown } {
  const [, , c, e, , , d] = JSON.parse(stored) as [number, number, number, number, number, string[], unknown];
  return { c, e, d };
}

const fx = useRedis();
const WORKER = fileURLToPath(new URL('./helpers/many-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

const keysOf = (n: number): string[] => Array.from({ length: n }, (_, i) => `product:${i}`);

/** A batch loader that records the keys of each call (after a short delay, as a database would take). */
function recorder(ms = 20) {
  const calls: string[][] = [];
  const loader = async (keys: string[]): Promise<Map<string, string>> => {
    calls.push(keys);
    await sleep(ms);
    return new Map(keys.map((key) => [key, `loaded(${key})`]));
  };
  return { calls, loader };
}

describe('getOrSetMany against Redis', () => {
  it('of 50 keys with 45 warm (memory or Redis) calls the loader once with the 5 cold ones', async () => {
    const prefix = uniquePrefix('many-warm');
    const writer = await fx.open(prefix);
    const keys = keysOf(50);
    await writer.mset(keys.slice(0, 45).map((key) => ({ key, value: `warm(${key})` })));
    const cache = await fx.open(prefix);
    await cache.mget(keys.slice(0, 20)); // 20 of the warm ones in this instance's memory, 25 in Redis only
    const { calls, loader } = recorder();
    await cache.getOrSetMany(['warm-up'], loader); // the scripts are loaded on the server: EVALSHA from here on
    calls.length = 0;
    const before = await commandCalls(fx.raw);
    const values = await cache.getOrSetMany(keys, loader);
    const after = await commandCalls(fx.raw);
    expect(calls).toStrictEqual([keys.slice(45)]);
    expect(values).toStrictEqual([
      ...keys.slice(0, 45).map((key) => `warm(${key})`),
      ...keys.slice(45).map((key) => `loaded(${key})`),
    ]);
    // The 30 keys memory lacked: one "value or lock" script call (the 5 locks taken in it), then the 5 loaded values
    // (one SET_LOADED each, in one pipeline). No GET of its own, no lock command apart.
    const deltas = callDeltas(before, after);
    expect(deltas['evalsha']).toBe(1 + 5);
    expect(deltas['eval'] ?? 0).toBe(0);
    // At most the tracking echo check of the 5 scripted writes (one MGET, in the background), never a read per key.
    expect(deltas['mget'] ?? 0).toBeLessThanOrEqual(1);
    // Inside the scripts: 30 GETs and 5 lock SETs by the first, 2 GETs and a SET by each SET_LOADED.
    expect(deltas['get']).toBe(30 + 5 * 2);
    expect(await fx.raw.get(`${prefix}product:47`)).toContain('loaded(product:47)');
  });

  it('requested by 10 concurrent callers loads each cold key once', async () => {
    const prefix = uniquePrefix('many-concurrent');
    const writer = await fx.open(prefix);
    const keys = keysOf(50);
    await writer.mset(keys.slice(0, 45).map((key) => ({ key, value: `warm(${key})` })));
    const cache = await fx.open(prefix);
    const { calls, loader } = recorder(50);
    const all = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSetMany(keys, loader)));
    expect(calls).toStrictEqual([keys.slice(45)]);
    for (const values of all) expect(values[49]).toBe('loaded(product:49)');
  });

  it('requested by 3 processes at once loads each cold key once overall', async () => {
    const prefix = uniquePrefix('many-processes');
    const writer = await fx.open(prefix);
    const keys = keysOf(50);
    await writer.mset(keys.slice(0, 45).map((key) => ({ key, value: `warm(${key})` })));
    const counts = `${prefix}__test_counts`;
    const workers = Array.from({ length: 3 }, () =>
      spawn(process.execPath, ['--import', 'tsx', WORKER], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          MANY_URL: fx.redis.url,
          MANY_PREFIX: prefix,
          MANY_KEYS: keys.join(','),
          MANY_COUNTS: counts,
          MANY_LOADER_MS: '300',
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const messages = workers.map((child) => {
      const lines: Record<string, unknown>[] = [];
      const waiters: (() => void)[] = [];
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(JSON.parse(line) as Record<string, unknown>);
        for (const wake of waiters.splice(0)) wake();
      });
      const next = async (type: string): Promise<Record<string, unknown>> => {
        for (;;) {
          const found = lines.find((m) => m['type'] === type);
          if (found !== undefined) return found;
          await new Promise<void>((resolve) => waiters.push(resolve));
        }
      };
      return { child, next };
    });
    try {
      await Promise.all(messages.map((m) => m.next('ready')));
      for (const { child } of messages) child.stdin.write('go\n');
      const done = await Promise.all(messages.map((m) => m.next('done')));
      const loaded = await fx.raw.hgetall(counts);
      expect(loaded).toStrictEqual(Object.fromEntries(keys.slice(45).map((key) => [key, '1'])));
      for (const report of done) {
        expect((report['values'] as string[]).slice(45)).toStrictEqual(keys.slice(45).map((k) => `loaded(${k})`));
      }
      expect(done.reduce((n, report) => n + (report['loaderCalls'] as number), 0)).toBe(1);
    } finally {
      for (const { child } of messages) if (child.exitCode === null) child.kill();
    }
  }, 30_000);

  it('serves stale copies per key when the loader fails, rejects for keys without one, and leaves the rest', async () => {
    const prefix = uniquePrefix('many-failsafe');
    const cache = await fx.open(prefix, { ttl: '200ms', grace: '1h' });
    await cache.mset([
      { key: 'a', value: 'old-a' },
      { key: 'c', value: 'fresh-c', ttl: '1h' },
    ]);
    await sleep(250);
    const failing = async (): Promise<Map<string, string>> => {
      throw new Error('db down');
    };
    const meta = await cache.getOrSetManyWithMeta(['a', 'c'], failing);
    expect(meta.map((r) => [r.value, r.source])).toStrictEqual([
      ['old-a', 'stale'],
      ['fresh-c', 'memory'],
    ]);
    await expect(cache.getOrSetMany(['a', 'b', 'c'], failing)).rejects.toThrow('db down');
    expect(await fx.raw.exists(`${prefix}b`)).toBe(0);
    expect(await cache.get('c')).toBe('fresh-c');
  });
});

describe('adaptive caching against Redis', () => {
  it('stores the TTL and tags the loader chose: PTTL, the tag index, and invalidateTags', async () => {
    const prefix = uniquePrefix('adaptive');
    const cache = await fx.open(prefix, { ttl: '1h' });
    await cache.getOrSet('user:1', (ctx) => {
      ctx.setTtl('30s');
      ctx.setGrace('10s');
      ctx.setTags(['org:9']);
      return { name: 'Ada' };
    });
    const pttl = await fx.raw.pttl(`${prefix}user:1`);
    expect(pttl).toBeGreaterThan(39_000);
    expect(pttl).toBeLessThanOrEqual(40_000);
    expect(await fx.raw.zrange(`${prefix}__tag:org:9`, '0', '-1')).toStrictEqual([`${prefix}user:1`]);
    await cache.getOrSetMany(['p:1', 'p:2'], async (keys, ctx) => {
      ctx.setTags(['cat:shoes'], ['p:1']);
      ctx.setTtl('5m', ['p:2']);
      return keys.map((key) => `v(${key})`);
    });
    expect(await fx.raw.zrange(`${prefix}__tag:cat:shoes`, '0', '-1')).toStrictEqual([`${prefix}p:1`]);
    expect(await fx.raw.pttl(`${prefix}p:2`)).toBeGreaterThan(299_000);
    await cache.invalidateTags(['org:9', 'cat:shoes']);
    expect(await fx.raw.exists(`${prefix}user:1`, `${prefix}p:1`, `${prefix}p:2`)).toBe(1);
    expect(await cache.get('user:1')).toBeUndefined();
  });

  it('remembers a not-found for negativeTtl in Redis, with its own TTL', async () => {
    const prefix = uniquePrefix('negative');
    const cache = await fx.open(prefix, { ttl: '1h' });
    const { calls, loader } = recorder(0);
    const omitting = async (keys: string[]) => {
      const found = await loader(keys);
      found.delete('missing');
      return found;
    };
    expect(await cache.getOrSetMany(['here', 'missing'], omitting, { negativeTtl: '2s' })).toStrictEqual([
      'loaded(here)',
      undefined,
    ]);
    const pttl = await fx.raw.pttl(`${prefix}missing`);
    expect(pttl).toBeGreaterThan(1000);
    expect(pttl).toBeLessThanOrEqual(2000);
    const other = await fx.open(prefix, { ttl: '1h' });
    expect(await other.getOrSetMany(['here', 'missing'], omitting, { negativeTtl: '2s' })).toStrictEqual([
      'loaded(here)',
      undefined,
    ]);
    expect(calls).toHaveLength(1);
  });
});

describe('conditional refresh against Redis', () => {
  it('an "unchanged" answer extends the entry without writing its value (MONITOR, stored creation time)', async () => {
    const prefix = uniquePrefix('conditional');
    const cache = await fx.open(prefix, { ttl: '300ms', grace: '1h' });
    const big = { etag: 'v1', body: 'x'.repeat(10_000) };
    await cache.set('doc', big, { tags: ['docs'] });
    const before = fields((await fx.raw.get(`${prefix}doc`)) as string);
    await sleep(350);
    const monitor = await fx.raw.duplicate().monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.join(' ')));
    let stale: unknown;
    const result = await cache.getOrSetWithMeta<typeof big>('doc', (ctx) => {
      stale = ctx.stale?.value.etag;
      ctx.setTtl('10m');
      return ctx.stale?.value.etag === 'v1' ? ctx.unchanged() : { etag: 'v2', body: '' };
    });
    await sleep(50);
    monitor.disconnect();
    expect(stale).toBe('v1');
    expect(result).toMatchObject({ source: 'origin', value: big });
    const after = fields((await fx.raw.get(`${prefix}doc`)) as string);
    expect(after.c).toBe(before.c);
    expect(after.e).toBeGreaterThan(before.e + 500_000);
    expect(after.d).toStrictEqual(big);
    expect(await fx.raw.pttl(`${prefix}doc`)).toBeGreaterThan(3_600_000);
    // No command carried the value: the renewal rewrote the expiry digits in place.
    expect(seen.some((line) => line.includes('xxxxxxxxxx'))).toBe(false);
    expect(seen.some((line) => line.includes('setrange') || line.includes('SETRANGE'))).toBe(true);
    // The renewed copy stays in this instance's memory: the tracking echo of the script's own edit does not drop it.
    expect(await cache.getWithMeta('doc')).toMatchObject({ source: 'memory' });
    // Still indexed under its tag, with the new expiry.
    await cache.invalidateTags(['docs']);
    expect(await fx.raw.exists(`${prefix}doc`)).toBe(0);
  });
});
