/**
 * A cache in a process of its own, for the cross-process write-strategy tests (strategies-processes.test.ts). Run with
 * `node --import tsx strategies-worker.ts` and these environment variables:
 *
 * - `SW_URL` (Redis), `SW_PREFIX` (cache prefix), `SW_PG_PORT` (Postgres, usually through the test's TCP proxy),
 *   `SW_TABLE` (the table suffix), `SW_MODE`: `counter` or `producer`.
 * - counter: `SW_INCREMENTS` increments spread over `SW_IDS` ids, `SW_CONCURRENCY` at a time, flushed into
 *   `counters_<suffix>` by batch id. With `SW_HANG_AFTER`, the first flush after that many increments hangs inside
 *   its transaction (the increments stop), and the worker reports `frozen`: the test kills it mid-flush.
 * - producer: `SW_WRITES` writes of `SW_KEYS` keys through a write-behind queue written into `kv_<suffix>`, whose
 *   writer is slow (`SW_WRITE_MS`), so records are read and unwritten when the test kills it.
 *
 * It reports JSON lines on stdout: `{ "type": "acked", "n" }` (counter, after each round of increments),
 * `{ "type": "wrote", "key", "value" }` (producer, once writeBehind resolved), `{ "type": "done" }`, `{ "type": "frozen" }`.
 */
import { createCache } from '../../../src/index.js';
import { flushCounter, pgPool, upsert } from './pg.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`strategies-worker: ${name} is not set`);
  return value;
};
const say = (message: object): void => void process.stdout.write(`${JSON.stringify(message)}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const pool = pgPool(Number(env('SW_PG_PORT')));
const suffix = env('SW_TABLE');
// A generous Redis timeout: on a loaded 2-core machine a 100 ms one times out now and then, and an increment that
// timed out is the caller's to judge (it may or may not have been counted), which this test does not measure.
const cache = createCache({ prefix: env('SW_PREFIX'), redis: env('SW_URL'), timeouts: { redisMs: 2000 } });
await cache.ready('5s');

if (env('SW_MODE') === 'counter') {
  const total = Number(env('SW_INCREMENTS'));
  const ids = Number(env('SW_IDS'));
  const concurrency = Number(env('SW_CONCURRENCY'));
  const hangAfter = process.env['SW_HANG_AFTER'] === undefined ? undefined : Number(process.env['SW_HANG_AFTER']);
  let acked = 0;
  let frozen = false;
  const counter = cache.counter('views', {
    flushEvery: 500,
    flushInterval: '300ms',
    flush: (deltas, batchId) =>
      flushCounter(pool, suffix, deltas, batchId, async () => {
        if (hangAfter !== undefined && acked >= hangAfter && !frozen) {
          frozen = true;
          await new Promise<void>(() => undefined);
        }
      }),
  });
  let attempted = 0;
  while (attempted < total && !frozen) {
    const round = Math.min(concurrency, total - attempted);
    attempted += round;
    const results = await Promise.allSettled(
      Array.from({ length: round }, (_, i) => counter.incr(`p${(attempted + i) % ids}`)),
    );
    const rejected = results.filter((r) => r.status === 'rejected').length;
    acked += round - rejected;
    say({ type: 'acked', n: acked, rejected, offline: counter.offline });
  }
  if (hangAfter !== undefined) {
    // Counting is over (or stopped at the hang): make sure a flush reaches the hang, then report a final count.
    for (let i = 0; i < 600 && !frozen; i++) {
      void counter.flush().catch(() => undefined);
      await sleep(100);
    }
    say({ type: 'acked', n: acked, rejected: 0, offline: counter.offline });
    say({ type: 'frozen' });
    await new Promise<void>(() => undefined);
  }
  await cache.close();
  await pool.end();
  say({ type: 'done' });
} else {
  const writes = Number(env('SW_WRITES'));
  const keys = Number(env('SW_KEYS'));
  const writeMs = Number(env('SW_WRITE_MS'));
  cache.writeBehindQueue<number>('kv', {
    batchSize: 50,
    write: async (batch) => {
      await sleep(writeMs);
      await upsert(pool, suffix, batch);
    },
  });
  for (let i = 0; i < writes; i++) {
    const key = `k${i % keys}`;
    await cache.writeBehind(key, i, { queue: 'kv' });
    say({ type: 'wrote', key, value: i });
  }
  say({ type: 'done' });
  await new Promise<void>(() => undefined);
}
