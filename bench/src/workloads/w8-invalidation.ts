import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { CacheOptions } from 'tiercache';
import { percentile } from '../harness.js';
import type { BenchConfig, Column, Row, Workload, WorkloadResult } from '../harness.js';
import { TTL_MS, openBento, openTiercache } from '../systems.js';
import type { OpenTiercache } from '../systems.js';
import { makeValue } from '../value.js';

/**
 * What W8 passes as tiercache's `bus`, tried in order until createCache accepts one. Update here when the bus option
 * settles; until createCache accepts one of these, tiercache's row says "not available yet".
 */
export const TIERCACHE_BUS_CANDIDATES: readonly unknown[] = [true, {}];

interface Pair {
  /** Writes version `n` of the key through instance A. */
  readonly write: (n: number) => Promise<unknown>;
  /** Reads the key through instance B; resolves with the version B serves. */
  readonly read: () => Promise<number | undefined>;
  readonly close: () => Promise<void>;
  readonly note: string;
}

interface InvalidationSystem {
  readonly system: string;
  readonly role: Row['role'];
  /** Resolves undefined when the system cannot do this (a note says why). */
  open(config: BenchConfig, key: string): Promise<Pair | string>;
  /** A control expects B to stay stale: it shows the measurement can tell a working bus from none. */
  readonly control?: boolean;
}

const versionOf = (value: unknown): number | undefined =>
  typeof value === 'object' && value !== null ? (value as { id?: number }).id : undefined;

async function openTiercachePair(
  config: BenchConfig,
): Promise<{ a: OpenTiercache; b: OpenTiercache; bus: unknown } | string> {
  const rejected: string[] = [];
  for (const bus of TIERCACHE_BUS_CANDIDATES) {
    const options = {
      prefix: 'w8t',
      redis: { host: config.redis.host, port: config.redis.port },
      ttl: TTL_MS,
      bus,
    } as unknown as CacheOptions;
    let a: OpenTiercache | undefined;
    try {
      a = await openTiercache(options);
      const b = await openTiercache(options);
      return { a, b, bus };
    } catch (error) {
      await a?.close();
      rejected.push(error instanceof Error ? error.message : String(error));
    }
  }
  return `not available yet: createCache has no \`bus\` option (${rejected[0] ?? 'rejected'})`;
}

const SYSTEMS: readonly InvalidationSystem[] = [
  {
    system: 'tiercache',
    role: 'subject',
    async open(config, key) {
      const opened = await openTiercachePair(config);
      if (typeof opened === 'string') return opened;
      const { a, b, bus } = opened;
      return {
        write: (n) => a.cache.set(key, makeValue(n)),
        read: async () => versionOf(await b.cache.get(key)),
        close: async () => {
          await a.close();
          await b.close();
        },
        note: `bus: ${JSON.stringify(bus)}`,
      };
    },
  },
  ...[true, false].map((bus): InvalidationSystem => ({
    system: bus ? 'BentoCache bus' : 'BentoCache no bus',
    role: 'peer',
    ...(bus ? {} : { control: true }),
    async open(config, key) {
      const options = { prefix: `w8b${bus ? 'bus' : ''}`, l1: { serialize: true }, l2: {}, bus };
      const a = openBento(config.redis, options);
      const b = openBento(config.redis, options);
      return {
        write: (n) => a.set({ key, value: makeValue(n) }),
        read: async () => versionOf(await b.get({ key })),
        close: async () => {
          await a.disconnectAll();
          await b.disconnectAll();
        },
        note: bus ? 'redisBusDriver on the bench Redis' : 'control: no bus, so B keeps serving its L1 copy',
      };
    },
  })),
];

const COLUMNS: readonly Column[] = [
  { key: 'p50', label: 'p50', kind: 'duration' },
  { key: 'p99', label: 'p99', kind: 'duration' },
  { key: 'stale', label: 'still stale at timeout', kind: 'text' },
];

export const w8: Workload = {
  id: 'W8',
  title: 'Invalidation seen by another instance: set on A until B serves the new value',
  systems: SYSTEMS.map((s) => s.system),
  async run(config, select): Promise<WorkloadResult> {
    const started = performance.now();
    const rows: Row[] = [];
    const samples = config.mode === 'full' ? 200 : 30;
    const timeoutMs = 250;
    for (const system of SYSTEMS.filter((s) => select(s.system))) {
      const key = `w8:${system.system.replace(/\W+/g, '-')}`;
      let pair: Pair | string | undefined;
      try {
        pair = await system.open(config, key);
        if (typeof pair === 'string') {
          rows.push({
            system: system.system,
            role: system.role,
            values: { p50: null, p99: null, stale: null },
            ratio: null,
            note: pair,
          });
          continue;
        }
        // B holds version 0 in its L1 before the first write, as it would after serving a read.
        await pair.write(0);
        await pair.read();
        const n = system.control ? 5 : samples;
        const latencies: number[] = [];
        let stale = 0;
        for (let version = 1; version <= n; version++) {
          const t0 = performance.now();
          await pair.write(version);
          for (;;) {
            if ((await pair.read()) === version) {
              latencies.push(performance.now() - t0);
              break;
            }
            if (performance.now() - t0 > timeoutMs) {
              stale++;
              break;
            }
            await nextTurn();
          }
        }
        rows.push({
          system: system.system,
          role: system.role,
          values: {
            p50: latencies.length > 0 ? percentile(latencies, latencies.length, 50) : null,
            p99: latencies.length > 0 ? percentile(latencies, latencies.length, 99) : null,
            stale: `${stale} of ${n}`,
          },
          ratio: null,
          note: pair.note,
        });
      } catch (error) {
        rows.push({
          system: system.system,
          role: system.role,
          values: { p50: null, p99: null, stale: null },
          ratio: null,
          note: `did not run: ${error instanceof Error ? error.message : String(error)}`,
        });
      } finally {
        if (pair !== undefined && typeof pair !== 'string') await pair.close().catch(() => {});
      }
    }
    return {
      id: 'W8',
      title: this.title,
      description:
        'Two instances A and B share Redis; B has the key in its L1. A writes a new version and the clock runs until ' +
        `B serves it (B polls every event-loop turn; a sample gives up after ${timeoutMs} ms).`,
      reference: null,
      ratioLabel: '',
      columns: COLUMNS,
      rows,
      notes: [`${samples} samples per system (5 for the no-bus control)`],
      elapsedMs: performance.now() - started,
    };
  },
};
