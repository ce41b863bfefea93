/**
 * Stampede protection against a real Redis: single-flight in one process, the distributed lock across processes
 * (child processes running helpers/stampede-worker.ts), and a lock holder that dies mid-load. Loader calls are counted
 * in Redis itself (the loader does INCR), so a second load anywhere cannot go unseen.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import type { Cache } from 'tiercache';
import { startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import {
  closeRawClients,
  rawClient,
  sleep,
  trackUnhandledRejections,
  uniquePrefix,
  waitFor,
} from './helpers/support.js';

const WORKER = fileURLToPath(new URL('./helpers/stampede-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** Short, so a dead holder's lock runs out quickly; the loaders here (300 ms) still fit in it thanks to extension. */
const LOCK_TTL_MS = 1000;
/** The waiters' poll interval for this TTL, as cache.ts computes it: min(250, max(20, ttl / 10)). */
const POLL_MS = Math.min(250, Math.max(20, Math.round(LOCK_TTL_MS / 10)));
const LOCK_WAIT_MS = 5000;

interface Message {
  readonly type: 'ready' | 'loading' | 'waiting' | 'done' | 'failed';
  readonly id?: string;
  readonly pid?: number;
  readonly at?: number;
  readonly values?: number[];
  readonly sources?: Record<string, number>;
  readonly errors?: string[];
  readonly maxMs?: number;
  readonly loaderCalls?: number;
  readonly lock?: { acquired: number; waits: number; waitTimeouts: number };
  readonly error?: string;
}

/** A child process running the worker, with its reports collected as they come. */
class Worker {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #messages: Message[] = [];
  readonly #listeners = new Set<() => void>();
  #stderr = '';
  readonly exited: Promise<void>;

  constructor(env: Record<string, string>) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.#child.once('exit', () => resolve()));
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      try {
        this.#messages.push(JSON.parse(line) as Message);
      } catch {
        this.#stderr += `(stdout) ${line}\n`;
      }
      for (const listener of [...this.#listeners]) listener();
    });
    this.#child.stderr.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    this.#child.stdin.on('error', () => {});
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  send(command: Record<string, unknown>): void {
    this.#child.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /** The first report of `type` (for command `id`, when given), waiting up to `timeoutMs` for it. */
  next(type: Message['type'], id?: string, timeoutMs = 20_000): Promise<Message> {
    const find = () => this.#messages.find((m) => (m.type === type || m.type === 'failed') && m.id === id);
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found === undefined) return false;
        finish();
        if (found.type === 'failed') reject(new Error(`worker ${this.pid} failed: ${found.error}`));
        else resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`worker ${this.pid} sent no '${type}' for ${id} in ${timeoutMs} ms\n${this.#stderr}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
      };
      const listener = () => void check();
      this.#listeners.add(listener);
      check();
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.send({ cmd: 'close' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

let redis: RedisProcess;
let raw: Redis;
let unhandled: ReturnType<typeof trackUnhandledRejections>;
const workerPrefix = uniquePrefix('stampede-workers');
let workers: Worker[] = [];

beforeAll(async () => {
  unhandled = trackUnhandledRejections();
  redis = await startRedis();
  raw = await rawClient(redis.port);
  const env = {
    STAMPEDE_URL: redis.url,
    STAMPEDE_PREFIX: workerPrefix,
    STAMPEDE_LOCK_TTL_MS: String(LOCK_TTL_MS),
    STAMPEDE_LOCK_WAIT_MS: String(LOCK_WAIT_MS),
  };
  // Five processes: four for the stampede, and one more to be killed while it holds a lock.
  workers = Array.from({ length: 5 }, () => new Worker(env));
  await Promise.all(workers.map((worker) => worker.next('ready', undefined, 50_000)));
  // Every worker listens for the lock holder's "loaded" message, so waiters are woken, not left to poll.
  await waitFor('every worker to subscribe to the loaded channel', async () => {
    const reply = (await raw.pubsub('NUMSUB', `${workerPrefix}__loaded`)) as [string, number];
    return Number(reply[1]) >= workers.length;
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.close()));
  unhandled.dispose();
  await closeRawClients();
  await stopAllRedis();
});

function worker(index: number): Worker {
  const found = workers[index];
  if (found === undefined) throw new Error(`no worker ${index}`);
  return found;
}

describe('stampede protection in one process', () => {
  it('10 000 concurrent cold getOrSet calls on one key run the loader once and all get its value', async () => {
    const cache: Cache = createCache({ prefix: uniquePrefix('single-flight'), redis: redis.url });
    try {
      await waitFor('the cache to connect', () => cache.stats().redis.state === 'ready');
      let calls = 0;
      const loader = async () => {
        calls++;
        await sleep(50);
        return { loaded: calls };
      };
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 10_000 }, () => cache.getOrSetWithMeta('cold', loader)));
      const ms = performance.now() - started;
      expect(calls).toBe(1);
      expect(new Set(results.map((r) => JSON.stringify(r.value)))).toEqual(new Set([JSON.stringify({ loaded: 1 })]));
      expect(results.every((r) => r.source === 'origin')).toBe(true);
      const stats = cache.stats();
      expect(stats.loader.calls).toBe(1);
      expect(stats.lock.acquired).toBe(1);
      expect(stats.inflight).toBe(0);
      console.info(
        `[figures] 10 000 concurrent cold getOrSet in one process: 1 loader call, all settled in ${ms.toFixed(0)} ms`,
      );
    } finally {
      await cache.close();
    }
  });
});

describe('stampede protection across processes', () => {
  it('4 processes × 1000 callers on one cold key run a 300 ms loader once in total, counted in Redis', async () => {
    const id = 'four-by-thousand';
    const key = 'cold-across';
    const counterKey = `${workerPrefix}counter:${id}`;
    const four = [0, 1, 2, 3].map(worker);
    for (const w of four) w.send({ cmd: 'run', id, key, callers: 1000, loaderMs: 300, counterKey });
    const done = await Promise.all(four.map((w) => w.next('done', id)));

    expect(await raw.get(counterKey)).toBe('1');
    expect(done.map((d) => d.errors)).toEqual([[], [], [], []]);
    expect(done.reduce((sum, d) => sum + (d.loaderCalls ?? 0), 0)).toBe(1);
    // One value everywhere: the pid of the one process that loaded.
    const values = new Set(done.flatMap((d) => d.values ?? []));
    expect(values.size).toBe(1);
    const holder = done.find((d) => d.loaderCalls === 1);
    expect(holder?.values).toEqual([...values]);
    expect(holder?.sources).toEqual({ origin: 1000 });
    for (const other of done.filter((d) => d !== holder)) {
      // Read from Redis, after waiting on the holder's lock (or after it had already written).
      expect(other.sources).toEqual({ redis: 1000 });
      expect(other.lock?.waitTimeouts).toBe(0);
    }
    const waiterMs = done.filter((d) => d !== holder).map((d) => Math.round(d.maxMs ?? 0));
    console.info(
      `[figures] 4 processes × 1000 callers, loader 300 ms: loader calls counted in Redis = 1; ` +
        `holder done in ${Math.round(holder?.maxMs ?? 0)} ms, waiting processes done in ${waiterMs.join(', ')} ms`,
    );
  }, 30_000);

  it('when the lock holder is SIGKILLed mid-load, waiters in other processes finish within lock TTL + one poll', async () => {
    const id = 'killed-holder';
    const key = 'holder-dies';
    const counterKey = `${workerPrefix}counter:${id}`;
    const holder = worker(4);
    const waiters = [1, 2, 3].map(worker);
    holder.send({ cmd: 'run', id, key, callers: 10, loaderMs: 60_000, counterKey });
    await holder.next('loading', id);
    const takeoverLoaderMs = 50;
    for (const w of waiters) w.send({ cmd: 'run', id, key, callers: 1000, loaderMs: takeoverLoaderMs, counterKey });
    // Each waiting process found the lock taken and is waiting on it.
    await Promise.all(waiters.map((w) => w.next('waiting', id)));

    holder.kill('SIGKILL');
    const killedAt = Date.now();
    await holder.exited;
    const done = await Promise.all(waiters.map((w) => w.next('done', id)));
    const afterKill = done.map((d) => (d.at ?? Infinity) - killedAt);

    // The dead holder's call and exactly one takeover, among all three waiting processes.
    expect(await raw.get(counterKey)).toBe('2');
    expect(done.map((d) => d.errors)).toEqual([[], [], []]);
    expect(done.reduce((sum, d) => sum + (d.loaderCalls ?? 0), 0)).toBe(1);
    const values = new Set(done.flatMap((d) => d.values ?? []));
    expect(values.size).toBe(1);
    expect(values.has(holder.pid)).toBe(false);
    expect(done.every((d) => d.lock?.waitTimeouts === 0)).toBe(true);
    // The lock expires at most LOCK_TTL_MS after the kill (it was last extended before it); a waiter notices within
    // one poll, loads, and wakes the others. The margin absorbs a shared 2-core machine's scheduling.
    const margin = 750;
    const bound = LOCK_TTL_MS + POLL_MS + takeoverLoaderMs + margin;
    console.info(
      `[figures] holder SIGKILLed mid-load (lock TTL ${LOCK_TTL_MS} ms, poll ${POLL_MS} ms): waiting processes ` +
        `done ${afterKill.map((ms) => Math.round(ms)).join(', ')} ms after the kill; loader calls in Redis = 2`,
    );
    for (const ms of afterKill) expect(ms).toBeLessThanOrEqual(bound);
  }, 30_000);
});
