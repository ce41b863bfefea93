/**
 * Write strategies across processes (child processes running helpers/strategies-worker.ts) against a real
 * redis-server and PostgreSQL: a producer SIGKILLed mid-stream whose queue another process finishes, and counters in
 * four processes with Postgres unreachable for 5 s and one process SIGKILLed mid-flush.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useRedis } from './helpers/fixture.js';
import { PG_PORT, createTables, dropTables, flushCounter, pgPool, upsert } from './helpers/pg.js';
import { sleep, uniquePrefix, waitFor } from './helpers/support.js';
import { startTcpProxy } from './helpers/tcp-proxy.js';
import type { TcpProxy } from './helpers/tcp-proxy.js';

const WORKER = fileURLToPath(new URL('./helpers/strategies-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

interface Message {
  readonly type: 'acked' | 'wrote' | 'done' | 'frozen';
  readonly n?: number;
  readonly rejected?: number;
  readonly offline?: number;
  readonly key?: string;
  readonly value?: number;
}

class Child {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly messages: Message[] = [];
  stderr = '';
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
        this.messages.push(JSON.parse(line) as Message);
      } catch {
        this.stderr += `(stdout) ${line}\n`;
      }
    });
    this.#child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  has(type: Message['type']): boolean {
    return this.messages.some((m) => m.type === type);
  }

  get acked(): number {
    let n = 0;
    for (const m of this.messages) if (m.type === 'acked') n = m.n ?? n;
    return n;
  }

  /** Increments that were rejected, or kept in memory (Redis unreachable), at the last report. */
  get uncertain(): number {
    let rejected = 0;
    let offline = 0;
    for (const m of this.messages) {
      rejected += m.rejected ?? 0;
      if (m.type === 'acked') offline = m.offline ?? 0;
    }
    return rejected + offline;
  }

  async kill(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGKILL');
    await this.exited;
  }
}

const fx = useRedis();
const suffix = `p${randomBytes(4).toString('hex')}`;
let db: pg.Pool;
let proxy: TcpProxy;
const children: Child[] = [];

beforeAll(async () => {
  db = pgPool();
  await createTables(db, suffix);
  proxy = await startTcpProxy(PG_PORT);
});

afterAll(async () => {
  await Promise.all(children.map((child) => child.kill()));
  await dropTables(db, suffix);
  await db.end();
  await proxy.close();
});

function child(env: Record<string, string>): Child {
  const c = new Child({ SW_URL: fx.redis.url, SW_TABLE: suffix, SW_PG_PORT: String(PG_PORT), ...env });
  children.push(c);
  return c;
}

describe('write-behind across processes', () => {
  it('a producer SIGKILLed mid-stream leaves nothing behind: another process claims and finishes its queue', async () => {
    const prefix = uniquePrefix('wbk');
    const producer = child({
      SW_PREFIX: prefix,
      SW_MODE: 'producer',
      SW_WRITES: '3000',
      SW_KEYS: '200',
      SW_WRITE_MS: '150',
    });
    await waitFor('1000 acknowledged writes', () => producer.messages.length >= 1000, { timeoutMs: 20_000 });
    await producer.kill();
    const acked = new Map<string, number>();
    for (const m of producer.messages) if (m.type === 'wrote') acked.set(m.key as string, m.value as number);
    expect(producer.has('done')).toBe(false);

    const cache = await fx.open(prefix);
    const queue = cache.writeBehindQueue<number>('kv', {
      claimIdle: '1s',
      write: (batch) => upsert(db, suffix, batch),
    });
    const before = await queue.stats();
    expect(before.depth).toBeGreaterThan(0);
    await queue.flush('20s');
    expect((await queue.stats()).depth).toBe(0);
    const { rows } = await db.query<{ key: string; value: string }>(`SELECT key, value FROM kv_${suffix}`);
    const stored = new Map(rows.map((r) => [r.key, Number(r.value)]));
    expect(stored.size).toBe(acked.size);
    // The latest acknowledged value of each key, or a later one the producer queued and died before reporting.
    for (const [key, value] of acked) expect(stored.get(key)).toBeGreaterThanOrEqual(value);
    const unreported = [...acked].filter(([key, value]) => stored.get(key) !== value);
    expect(unreported.length).toBeLessThanOrEqual(1);
  }, 60_000);
});

describe('counters across processes', () => {
  it('4 processes × 25 000 increments, Postgres unreachable 5 s, one killed mid-flush: the table holds every acknowledged increment once', async () => {
    const prefix = uniquePrefix('ctr');
    const base = {
      SW_PREFIX: prefix,
      SW_MODE: 'counter',
      SW_PG_PORT: String(proxy.port),
      SW_INCREMENTS: '25000',
      SW_IDS: '10',
      SW_CONCURRENCY: '50',
    };
    const workers = [child({ ...base, SW_HANG_AFTER: '6000' }), child(base), child(base), child(base)];
    await waitFor('every worker counting', () => workers.every((w) => w.acked >= 2000), { timeoutMs: 30_000 });
    proxy.reset();
    await sleep(5_000);
    proxy.pass();
    const victim = workers[0] as Child;
    await waitFor('the first worker to hang mid-flush', () => victim.has('frozen'), { timeoutMs: 30_000 }).catch(
      (error: unknown) => {
        throw new Error(`${String(error)}: ${JSON.stringify(victim.messages.slice(-3))} ${victim.stderr.slice(-2000)}`);
      },
    );
    await victim.kill();
    const survivors = workers.slice(1);
    await waitFor('the other workers to finish', () => survivors.every((w) => w.has('done')), { timeoutMs: 40_000 });
    const acked = workers.reduce((sum, w) => sum + w.acked, 0);
    expect(survivors.every((w) => w.acked === 25_000)).toBe(true);
    expect(victim.acked).toBeGreaterThanOrEqual(6000);
    // Every increment reached Redis (none timed out, none kept in memory only): "acknowledged" is exact.
    expect(workers.map((w) => w.uncertain)).toEqual([0, 0, 0, 0]);

    // Whatever the killed process left (its batch in flight, deltas not yet taken) is flushed by anyone: here.
    const cache = await fx.open(prefix);
    const counter = cache.counter('views', {
      flushInterval: '1h',
      flush: (deltas, batchId) => flushCounter(db, suffix, deltas, batchId),
    });
    await counter.flush();
    expect(await counter.unflushed()).toBe(0);
    const { rows } = await db.query(`SELECT sum(total)::int AS total FROM counters_${suffix}`);
    expect(rows[0]).toEqual({ total: acked });
    let live = 0;
    for (let i = 0; i < 10; i++) live += await counter.get(`p${i}`);
    expect(live).toBe(acked);
  }, 90_000);
});
