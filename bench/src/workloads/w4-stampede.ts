import { performance } from 'node:perf_hooks';
import { median, sleep } from '../harness.js';
import type { BenchConfig, Column, Row, Workload, WorkloadResult } from '../harness.js';
import { TTL_MS, openBento, openCacheManager, openTiercache } from '../systems.js';
import { isValue, makeValue } from '../value.js';

const CALLERS = 1000;
const LOADER_MS = 5;

type GetOrSet = (key: string, loader: () => Promise<unknown>) => Promise<unknown>;

interface StampedeSystem {
  readonly system: string;
  readonly role: Row['role'];
  readonly note?: string;
  open(config: BenchConfig): Promise<{ getOrSet: GetOrSet; close: () => Promise<void> }>;
}

/** The least any implementation can do: one shared promise per key, no tiers at all. */
function singleFlightFloor(system: string, role: Row['role']): StampedeSystem {
  return {
    system,
    role,
    note: 'a Map of in-flight promises around the loader, no cache tiers',
    async open() {
      const inflight = new Map<string, Promise<unknown>>();
      return {
        getOrSet: (key, loader) => {
          let running = inflight.get(key);
          if (running === undefined) {
            running = loader().finally(() => inflight.delete(key));
            inflight.set(key, running);
          }
          return running;
        },
        close: async () => {},
      };
    },
  };
}

const SYSTEMS: readonly StampedeSystem[] = [
  singleFlightFloor('single-flight floor', 'reference'),
  singleFlightFloor('single-flight floor A/A', 'control'),
  ...[true, false].map((memory): StampedeSystem => ({
    system: memory ? 'tiercache L1+L2' : 'tiercache L2 only',
    role: 'subject',
    async open(config) {
      const opened = await openTiercache({
        prefix: `w4t${memory ? 'm' : ''}`,
        redis: { host: config.redis.host, port: config.redis.port },
        ...(memory ? {} : { memory: false as const }),
        ttl: TTL_MS,
      });
      return { getOrSet: (key, loader) => opened.cache.getOrSet(key, loader), close: opened.close };
    },
  })),
  ...[true, false].map((memory): StampedeSystem => ({
    system: memory ? 'BentoCache L1+L2' : 'BentoCache L2 only',
    role: 'peer',
    async open(config) {
      const bento = openBento(config.redis, {
        prefix: `w4b${memory ? 'm' : ''}`,
        l1: memory ? { serialize: true } : false,
        l2: {},
      });
      return { getOrSet: (key, factory) => bento.getOrSet({ key, factory }), close: () => bento.disconnectAll() };
    },
  })),
  ...[true, false].map((memory): StampedeSystem => ({
    system: memory ? 'cache-manager L1+L2' : 'cache-manager L2 only',
    role: 'peer',
    async open(config) {
      const opened = openCacheManager(config.redis, {
        namespace: `w4c${memory ? 'm' : ''}`,
        serializer: 'keyv',
        memory,
        redis: true,
      });
      return { getOrSet: (key, loader) => opened.cache.wrap(key, loader, TTL_MS), close: opened.close };
    },
  })),
];

const COLUMNS: readonly Column[] = [
  { key: 'calls', label: 'loader calls', kind: 'text' },
  { key: 'time', label: 'time (all callers served)', kind: 'duration' },
  { key: 'p99', label: 'worst rep', kind: 'duration' },
];

export const w4: Workload = {
  id: 'W4',
  title: `${CALLERS} concurrent getOrSet on one cold key, ${LOADER_MS} ms loader`,
  systems: SYSTEMS.map((s) => s.system),
  async run(config, select): Promise<WorkloadResult> {
    const started = performance.now();
    // A stampede is one ~10 ms event, so many more of them than of the other non-throughput workloads.
    const rounds = config.rounds * 3;
    const chosen = SYSTEMS.filter((s) => s.role === 'reference' || select(s.system));
    const rows: Row[] = [];
    const measured: { system: StampedeSystem; times: number[]; calls: number[]; failures: number; error?: string }[] =
      [];
    type Entry = (typeof measured)[number] & { opened?: Awaited<ReturnType<StampedeSystem['open']>> };
    const entries: Entry[] = [];
    for (const system of chosen) {
      const entry: Entry = { system, times: [], calls: [], failures: 0 };
      entries.push(entry);
      measured.push(entry);
      try {
        entry.opened = await system.open(config);
      } catch (error) {
        entry.error = error instanceof Error ? error.message : String(error);
        config.log(`  W4 ${system.system}: ${entry.error}`);
      }
    }
    const stampede = async (entry: Entry, round: number, warmup = false): Promise<void> => {
      const getOrSet = entry.opened?.getOrSet;
      if (getOrSet === undefined || entry.error !== undefined) return;
      let calls = 0;
      const loader = async (): Promise<unknown> => {
        calls++;
        await sleep(LOADER_MS);
        return makeValue(round);
      };
      const key = `w4:${entry.system.system.replace(/\W+/g, '-')}:${warmup ? 'warm' : 'cold'}:${round}`;
      const t0 = performance.now();
      const pending: Promise<unknown>[] = new Array<Promise<unknown>>(CALLERS);
      for (let i = 0; i < CALLERS; i++) pending[i] = getOrSet(key, loader);
      const settled = await Promise.allSettled(pending);
      const elapsed = performance.now() - t0;
      if (warmup) return;
      entry.times.push(elapsed);
      entry.calls.push(calls);
      entry.failures += settled.filter((s) => s.status === 'rejected' || !isValue(s.value, round)).length;
    };
    try {
      // Warm-up as the throughput workloads have it (warmupMs of each system): the first stampedes run before the
      // JIT has compiled the paths (measured: 7–10 ms for tiercache's first ten against ~6 ms after), while the floor's
      // few lines are compiled at once; a service runs these paths all day.
      for (const entry of entries) {
        const until = performance.now() + config.warmupMs;
        for (let w = 0; w === 0 || performance.now() < until; w++) await stampede(entry, w, true);
      }
      // Round-robin, the order rotating each round, so a burst of load from elsewhere hits every system alike.
      for (let round = 1; round <= rounds; round++) {
        for (let k = 0; k < entries.length; k++) await stampede(entries[(k + round) % entries.length] as Entry, round);
      }
    } finally {
      for (const entry of entries) await entry.opened?.close().catch(() => {});
    }
    const floor = median(measured.find((m) => m.system.role === 'reference')?.times ?? []);
    for (const m of measured) {
      const time = m.times.length > 0 ? median(m.times) : null;
      const notes = [m.system.note, m.error ? `did not run: ${m.error}` : undefined];
      if (m.failures > 0) notes.push(`${m.failures} callers got an error or a wrong value`);
      const lo = Math.min(...m.calls);
      const hi = Math.max(...m.calls);
      rows.push({
        system: m.system.system,
        role: m.system.role,
        values: {
          calls: m.calls.length === 0 ? null : lo === hi ? String(lo) : `${lo}–${hi}`,
          time,
          p99: m.times.length > 0 ? Math.max(...m.times) : null,
        },
        ratio: time === null || !Number.isFinite(floor) ? null : time / floor,
        reps: m.times,
        ...(notes.some(Boolean) ? { note: notes.filter(Boolean).join('; ') } : {}),
      });
    }
    return {
      id: 'W4',
      title: this.title,
      description:
        `${CALLERS} callers ask for the same cold key in the same tick; the loader sleeps ${LOADER_MS} ms. ` +
        'Time runs from the first call to the last caller served. Each repetition uses a new key.',
      reference: 'single-flight floor',
      ratioLabel: '× floor',
      columns: COLUMNS,
      rows,
      notes: [
        `time: median of ${rounds} rounds, systems interleaved round-robin (after ${config.warmupMs} ms of warm-up stampedes of each); loader calls: range over rounds`,
        'lower is better for time and ratio; the floor includes timer slack of the 5 ms sleep',
      ],
      elapsedMs: performance.now() - started,
    };
  },
};
