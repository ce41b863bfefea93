/**
 * What instrumentation costs with nobody subscribed: the same build, one cache with `instrumentation: true` (the
 * default) and one with `instrumentation: false`, measured in one run on the L1-hit and the L2-hit (Redis) paths.
 * Slices alternate A/B/B/A so drift and warm-up fall on both sides; the figure is the median of the per-round ratios,
 * by wall time and by this process's CPU time (steadier on a shared machine). A/A controls show the noise floor.
 *
 *   npm run build && npx tsx bench/src/overhead.ts [--rounds 12] [--slice-ms 400]
 */
import { createCache } from 'tiercache';
import type { Cache } from 'tiercache';
import { compileBatch, median, pairedRatio } from './harness.js';
import { startRedisServer } from './redis-server.js';
import { makeValue } from './value.js';

const KEYS = 1024;
const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const ROUNDS = arg('rounds', 12);
const SLICE_MS = arg('slice-ms', 400);

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`);

interface Rates {
  readonly wall: number;
  readonly cpu: number;
}

/** Times `body` (which returns its op count) by the wall clock and by this process's CPU time (user + system). */
async function timed(body: () => Promise<number>): Promise<Rates> {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const ops = await body();
  const wallMs = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  return { wall: (ops / wallMs) * 1000, cpu: (ops / ((cpu.user + cpu.system) / 1000)) * 1000 };
}

interface Variant {
  readonly name: string;
  readonly cache: Cache;
  /** Runs ops for about SLICE_MS; returns ops per second of wall time and of this process's CPU time. */
  readonly slice: () => Promise<Rates>;
}

/** L1: one caller awaiting each get, timed in batches of 1000 (as bench workload W1). */
function l1Slice(cache: Cache): () => Promise<Rates> {
  const batch = compileBatch('async', (key) => cache.get(key), keys);
  return () =>
    timed(async () => {
      let ops = 0;
      const start = performance.now();
      let missed = 0;
      while (performance.now() - start < SLICE_MS) {
        missed += await batch(ops, 1000);
        ops += 1000;
      }
      if (missed > 0) throw new Error(`${missed} L1 misses`);
      return ops;
    });
}

/** L2: 64 concurrent callers reading from Redis (memory off), as bench workload W2. */
function l2Slice(cache: Cache): () => Promise<Rates> {
  return () =>
    timed(async () => {
      let ops = 0;
      let missed = 0;
      const start = performance.now();
      const caller = async (offset: number): Promise<void> => {
        for (let i = offset; performance.now() - start < SLICE_MS; i += 64) {
          if ((await cache.get(keys[i & (KEYS - 1)] as string)) === undefined) missed++;
          ops++;
        }
      };
      await Promise.all(Array.from({ length: 64 }, (_, c) => caller(c)));
      if (missed > 0) throw new Error(`${missed} L2 misses`);
      return ops;
    });
}

async function compare(title: string, variants: readonly [Variant, Variant]): Promise<string> {
  const wall: [number[], number[]] = [[], []];
  const cpu: [number[], number[]] = [[], []];
  // Warm-up, both sides.
  for (const v of variants) await v.slice();
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [0, 1, 1, 0] : [1, 0, 0, 1];
    const got: [Rates[], Rates[]] = [[], []];
    for (const i of order) got[i as 0 | 1].push(await (variants[i as 0 | 1] as Variant).slice());
    for (const side of [0, 1] as const) {
      wall[side].push(median(got[side].map((r) => r.wall)));
      cpu[side].push(median(got[side].map((r) => r.cpu)));
    }
  }
  const wallRatio = pairedRatio(wall[0], wall[1]) ?? NaN;
  const cpuRatio = pairedRatio(cpu[0], cpu[1]) ?? NaN;
  const [on, off] = variants;
  return (
    `| ${title} | ${fmt(median(wall[0]))} | ${fmt(median(wall[1]))} | ${wallRatio.toFixed(3)}× | ` +
    `${cpuRatio.toFixed(3)}× | ${on.name} vs ${off.name} |`
  );
}

const fmt = (rate: number): string => `${(rate / 1e6).toFixed(3)} M/s`;

const server = await startRedisServer();
const lines: string[] = [];
try {
  const open = async (instrumentation: boolean, memory: boolean, tag = ''): Promise<Cache> => {
    const cache = createCache({
      prefix: `overhead-${instrumentation ? 'on' : 'off'}-${memory ? 'l1' : 'l2'}${tag}`,
      instrumentation,
      ...(memory
        ? { memory: { maxEntries: 10_000 } }
        : { memory: false as const, redis: { host: server.host, port: server.port } }),
      ttl: '10m',
      // A busy 2-core machine can stall a batch past the default 100 ms; a miss here would be a figure of the machine.
      timeouts: { redisMs: 5_000 },
    });
    await cache.ready();
    await cache.mset(keys.map((key, i) => ({ key, value: makeValue(i) })));
    return cache;
  };
  const l1On = await open(true, true);
  const l1Off = await open(false, true);
  const l1Control = await open(false, true, 'control');
  const l2On = await open(true, false);
  const l2Off = await open(false, false);
  // A/A control: a second instrumented L2 cache against the first shows how much of a gap is the machine's noise.
  const l2Control = await open(true, false, 'control');
  lines.push(
    `rounds ${ROUNDS}, slices of ${SLICE_MS} ms (A/B/B/A), Node ${process.version}, Redis ${server.version}`,
    '',
    '| path | on (wall) | off (wall) | on / off, wall time | on / off, CPU time | |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  lines.push(
    await compare('L1 hit (get, 1 caller)', [
      { name: 'on', cache: l1On, slice: l1Slice(l1On) },
      { name: 'off', cache: l1Off, slice: l1Slice(l1Off) },
    ]),
  );
  lines.push(
    await compare('L1 hit A/A control (both off)', [
      { name: 'off', cache: l1Off, slice: l1Slice(l1Off) },
      { name: 'off (second cache)', cache: l1Control, slice: l1Slice(l1Control) },
    ]),
  );
  lines.push(
    await compare('L2 hit (get, 64 callers, memory off)', [
      { name: 'on', cache: l2On, slice: l2Slice(l2On) },
      { name: 'off', cache: l2Off, slice: l2Slice(l2Off) },
    ]),
  );
  lines.push(
    await compare('L2 hit A/A control (both on)', [
      { name: 'on', cache: l2On, slice: l2Slice(l2On) },
      { name: 'on (second cache)', cache: l2Control, slice: l2Slice(l2Control) },
    ]),
  );
  const stats = l2On.stats();
  lines.push(
    '',
    `instrumented L2 cache saw ${stats.latency.redis.count} round trips, p50 ${stats.latency.redis.p50} ms, ` +
      `p99 ${stats.latency.redis.p99} ms, ${(stats.batches.reads.sum / Math.max(1, stats.batches.reads.count)).toFixed(1)} keys per read batch`,
  );
  await Promise.all([l1On, l1Off, l1Control, l2On, l2Off, l2Control].map((cache) => cache.close()));
} finally {
  await server.stop();
}
process.stdout.write(`${lines.join('\n')}\n`);
