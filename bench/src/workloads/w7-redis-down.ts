import { performance } from 'node:perf_hooks';
import { capped, percentile, sleep } from '../harness.js';
import type { BenchConfig, Column, Outcome, RedisAddress, Row, Workload, WorkloadResult } from '../harness.js';
import {
  TTL_MS,
  closeIoredis,
  describeErrors,
  openBento,
  openCacheManager,
  openIoredis,
  openTiercache,
} from '../systems.js';
import { isValue, makeValue } from '../value.js';

const LOADER_MS = 1;

interface Opened {
  readonly getOrSet: (key: string, loader: () => Promise<unknown>) => Promise<unknown>;
  readonly close: () => Promise<void>;
  readonly report?: () => string | undefined;
}

interface DownSystem {
  readonly system: string;
  readonly role: Row['role'];
  readonly note: string;
  /** `wait`: the server is up, so wait until connected (paused case); false for a dead port. */
  open(redis: RedisAddress, wait: boolean): Promise<Opened>;
}

const SYSTEMS: readonly DownSystem[] = [
  {
    system: 'tiercache',
    role: 'subject',
    note: 'timeouts: { redisMs: 50 }',
    async open(redis, wait) {
      const opened = await openTiercache(
        { prefix: 'w7t', redis: { host: redis.host, port: redis.port }, timeouts: { redisMs: 50 }, ttl: TTL_MS },
        wait,
      );
      return {
        getOrSet: (key, loader) => opened.cache.getOrSet(key, loader),
        close: opened.close,
        report: () => describeErrors(opened.errors),
      };
    },
  },
  {
    system: 'BentoCache L1+L2',
    role: 'peer',
    note: 'defaults',
    async open(redis) {
      const bento = openBento(redis, { prefix: 'w7b', l1: { serialize: true }, l2: {} });
      return { getOrSet: (key, factory) => bento.getOrSet({ key, factory }), close: () => bento.disconnectAll() };
    },
  },
  {
    system: 'BentoCache L1+L2 commandTimeout',
    role: 'peer',
    note: 'ioredis { commandTimeout: 50 } in the L2 connection',
    async open(redis) {
      const bento = openBento(redis, {
        prefix: 'w7bt',
        l1: { serialize: true },
        l2: { connection: { commandTimeout: 50 } },
      });
      return { getOrSet: (key, factory) => bento.getOrSet({ key, factory }), close: () => bento.disconnectAll() };
    },
  },
  {
    system: 'cache-manager L1+L2',
    role: 'peer',
    note: 'defaults (Keyv memory + @keyv/redis)',
    async open(redis) {
      const opened = openCacheManager(redis, { namespace: 'w7c', serializer: 'keyv', memory: true, redis });
      return { getOrSet: (key, loader) => opened.cache.wrap(key, loader, TTL_MS), close: opened.close };
    },
  },
];

const COLUMNS: readonly Column[] = [
  { key: 'p50', label: 'p50', kind: 'duration' },
  { key: 'p99', label: 'p99', kind: 'duration' },
  { key: 'outcome', label: 'outcome', kind: 'text' },
  { key: 'loads', label: 'loader calls', kind: 'count' },
];

interface Plan {
  readonly calls: number;
  readonly intervalMs: number;
  readonly capMs: number;
  /** How long close() may take before the bench moves on. */
  readonly closeCapMs: number;
}

function plan(config: BenchConfig): Plan {
  return config.mode === 'full'
    ? { calls: 200, intervalMs: 5, capMs: 5000, closeCapMs: 2000 }
    : { calls: 20, intervalMs: 10, capMs: 500, closeCapMs: 300 };
}

/** Fires `calls` getOrSet calls at a steady pace (open loop, as traffic arrives), each on its own cold key. */
async function fire(opened: Opened, p: Plan, tag: string): Promise<{ outcomes: Outcome[]; loads: number }> {
  let loads = 0;
  const loader = async (): Promise<unknown> => {
    loads++;
    await sleep(LOADER_MS);
    return makeValue(1);
  };
  const pending: Promise<Outcome>[] = [];
  for (let i = 0; i < p.calls; i++) {
    pending.push(capped(() => opened.getOrSet(`w7:${tag}:${i}`, loader), p.capMs));
    await sleep(p.intervalMs);
  }
  return { outcomes: await Promise.all(pending), loads };
}

function summarize(outcomes: readonly Outcome[], capMs: number): string {
  const ok = outcomes.filter((o) => o.status === 'ok' && isValue(o.value)).length;
  const wrong = outcomes.filter((o) => o.status === 'ok' && !isValue(o.value)).length;
  const errors = outcomes.filter((o): o is Extract<Outcome, { status: 'error' }> => o.status === 'error');
  const cappedCount = outcomes.filter((o) => o.status === 'capped').length;
  const parts: string[] = [];
  if (ok > 0) parts.push(`${ok} served`);
  if (wrong > 0) parts.push(`${wrong} wrong value`);
  if (errors.length > 0) parts.push(`${errors.length} rejected (${errors[0]?.error.slice(0, 80) ?? ''})`);
  if (cappedCount > 0) parts.push(`${cappedCount} still pending at the ${capMs / 1000} s cap`);
  return parts.join(', ');
}

/** Closes a system but gives up after a while: some clients never settle close() while their server is gone. */
async function closeWithin(opened: Opened, capMs: number): Promise<string | undefined> {
  const outcome = await capped(() => opened.close(), capMs);
  if (outcome.status === 'capped') return `close() still pending after ${capMs / 1000} s`;
  if (outcome.status === 'error') return `close() rejected: ${outcome.error}`;
  return undefined;
}

function row(system: DownSystem, outcomes: readonly Outcome[], loads: number, p: Plan, extra: string | undefined): Row {
  const times = outcomes.map((o) => o.ms);
  const notes = [system.note, extra].filter(Boolean);
  return {
    system: system.system,
    role: system.role,
    values: {
      p50: percentile(times, times.length, 50),
      p99: percentile(times, times.length, 99),
      outcome: summarize(outcomes, p.capMs),
      loads,
    },
    ratio: null,
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}

function failedRow(system: DownSystem, error: unknown): Row {
  return {
    system: system.system,
    role: system.role,
    values: { p50: null, p99: null, outcome: null, loads: null },
    ratio: null,
    note: `${system.note}; did not run: ${error instanceof Error ? error.message : String(error)}`,
  };
}

export const w7paused: Workload = {
  id: 'W7-paused',
  title: 'Redis paused (CLIENT PAUSE ALL): getOrSet on cold keys, 1 ms loader',
  systems: SYSTEMS.map((s) => s.system),
  async run(config, select): Promise<WorkloadResult> {
    const started = performance.now();
    const p = plan(config);
    const rows: Row[] = [];
    const admin = await openIoredis(config.redis);
    // The pause outlasts the whole firing window plus the cap, so a call that waits for Redis hits the cap.
    const pauseMs = p.calls * p.intervalMs + p.capMs + (config.mode === 'full' ? 500 : 200);
    try {
      for (const system of SYSTEMS.filter((s) => select(s.system))) {
        let opened: Opened | undefined;
        try {
          opened = await system.open(config.redis, true);
          // One call while Redis answers, so the system is connected and warm before the pause.
          await capped(() => (opened as Opened).getOrSet('w7:warm', async () => makeValue(0)), p.capMs);
          const pausedAt = performance.now();
          await admin.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL');
          const { outcomes, loads } = await fire(opened, p, system.system.replace(/\W+/g, '-'));
          await sleep(Math.max(0, pauseMs - (performance.now() - pausedAt)) + 100);
          rows.push(
            row(
              system,
              outcomes,
              loads,
              p,
              [opened.report?.(), await closeWithin(opened, p.closeCapMs)].filter(Boolean).join('; '),
            ),
          );
          opened = undefined;
        } catch (error) {
          rows.push(failedRow(system, error));
        } finally {
          if (opened) await closeWithin(opened, p.closeCapMs);
        }
      }
    } finally {
      await closeIoredis(admin);
    }
    return {
      id: 'W7-paused',
      title: this.title,
      description:
        `The bench Redis is paused for ${(pauseMs / 1000).toFixed(1)} s; ${p.calls} getOrSet calls arrive every ${p.intervalMs} ms, ` +
        `each on its own cold key, each bounded by a ${p.capMs / 1000} s cap so the bench cannot hang.`,
      reference: null,
      ratioLabel: '',
      columns: COLUMNS,
      rows,
      notes: ['p50/p99 include capped calls at the cap (their real latency is longer)'],
      elapsedMs: performance.now() - started,
    };
  },
};

export const w7absent: Workload = {
  id: 'W7-absent',
  title: 'Redis absent (nothing listens on the port): getOrSet on cold keys, 1 ms loader',
  systems: SYSTEMS.map((s) => s.system),
  async run(config, select): Promise<WorkloadResult> {
    const started = performance.now();
    const p = plan(config);
    const rows: Row[] = [];
    const dead = { host: '127.0.0.1', port: config.deadPort };
    for (const system of SYSTEMS.filter((s) => select(s.system))) {
      let opened: Opened | undefined;
      try {
        opened = await system.open(dead, false);
        const { outcomes, loads } = await fire(opened, p, `absent-${system.system.replace(/\W+/g, '-')}`);
        rows.push(
          row(
            system,
            outcomes,
            loads,
            p,
            [opened.report?.(), await closeWithin(opened, p.closeCapMs)].filter(Boolean).join('; '),
          ),
        );
        opened = undefined;
      } catch (error) {
        rows.push(failedRow(system, error));
      } finally {
        if (opened) await closeWithin(opened, p.closeCapMs);
      }
    }
    return {
      id: 'W7-absent',
      title: this.title,
      description:
        `Each system points at 127.0.0.1:${config.deadPort}, where nothing listens; ${p.calls} getOrSet calls arrive every ` +
        `${p.intervalMs} ms, each bounded by a ${p.capMs / 1000} s cap.`,
      reference: null,
      ratioLabel: '',
      columns: COLUMNS,
      rows,
      notes: ['p50/p99 include capped calls at the cap (their real latency is longer)'],
      elapsedMs: performance.now() - started,
    };
  },
};
