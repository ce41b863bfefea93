import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { renderTable } from './harness.js';
import type { BenchConfig, Mode, WorkloadResult, Workload } from './harness.js';
import { freePort, startRedisServer } from './redis-server.js';
import { w1 } from './workloads/w1-l1-hit.js';
import { w2, w2x64 } from './workloads/w2-redis-hit.js';
import { w3 } from './workloads/w3-redis-set.js';
import { w4 } from './workloads/w4-stampede.js';
import { w5 } from './workloads/w5-mget.js';
import { w6 } from './workloads/w6-cross-process.js';
import { w7absent, w7paused } from './workloads/w7-redis-down.js';
import { w8 } from './workloads/w8-invalidation.js';
import { w9 } from './workloads/w9-service-batching.js';
import { c1 } from './workloads/c1-cluster-hit.js';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_JSON = join(BENCH_DIR, 'results', 'latest.json');

export const WORKLOADS: readonly Workload[] = [w1, w2, w2x64, w3, w4, w5, w6, w7paused, w7absent, w8, w9, c1];

export interface Settings {
  readonly slices: number;
  readonly sliceMs: number;
  readonly warmupMs: number;
  readonly rounds: number;
  /** What the mode must fit in (ms); the watchdog in run.ts allows a minute more. */
  readonly budgetMs: number;
}

/** Per mode, chosen so a full run fits 5 minutes and a quick one 30 s on the 2-core machine. */
export const SETTINGS: Record<Mode, Settings> = {
  full: { slices: 40, sliceMs: 60, warmupMs: 300, rounds: 5, budgetMs: 300_000 },
  quick: { slices: 4, sliceMs: 30, warmupMs: 30, rounds: 2, budgetMs: 30_000 },
};

export interface CliOptions {
  readonly mode: Mode;
  readonly filter: string | undefined;
  readonly json: string;
}

export function parseArgs(argv: readonly string[]): CliOptions {
  let mode: Mode = 'full';
  let filter: string | undefined;
  let json = DEFAULT_JSON;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined || next.startsWith('--')) throw new Error(`Expected a value after \`${arg}\``);
      return next;
    };
    if (arg === '--quick') mode = 'quick';
    else if (arg === '--full') mode = 'full';
    else if (arg === '--filter') filter = value();
    else if (arg?.startsWith('--filter=')) filter = arg.slice('--filter='.length);
    else if (arg === '--json') json = resolve(value());
    else if (arg?.startsWith('--json=')) json = resolve(arg.slice('--json='.length));
    else throw new Error(`Unknown argument \`${arg}\`; expected --quick, --filter <substring>, --json <path>`);
  }
  return { mode, filter, json };
}

export interface BenchResult {
  readonly schema: 1;
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly mode: Mode;
  readonly filter: string | null;
  readonly settings: Omit<Settings, 'budgetMs'>;
  readonly machine: {
    readonly node: string;
    readonly platform: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly loadAverageAtStart: readonly number[];
    readonly loadAverageAtEnd: readonly number[];
    readonly memoryMb: number;
  };
  readonly redis: { readonly version: string; readonly port: number };
  readonly versions: Readonly<Record<string, string>>;
  /** The commit the run was made from, and whether the library's files differed from it. */
  readonly git: { readonly commit: string; readonly libraryModified: boolean } | null;
  readonly workloads: readonly WorkloadResult[];
}

/** The version of a package as the bench resolves it: the workspace's own node_modules first, then the root's. */
export function packageVersion(name: string): string {
  for (const base of [join(BENCH_DIR, 'node_modules'), join(BENCH_DIR, '..', 'node_modules')]) {
    const file = join(base, name, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return 'not installed';
}

function gitState(): BenchResult['git'] {
  try {
    const cwd = join(BENCH_DIR, '..');
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'packages/tiercache/src'], {
      cwd,
      encoding: 'utf8',
    });
    return { commit, libraryModified: status.trim() !== '' };
  } catch {
    return null;
  }
}

const PACKAGES = ['tiercache', 'ioredis', 'redis', 'lru-cache', 'bentocache', 'cache-manager', 'keyv', '@keyv/redis'];

/** Which workloads run, and within each which systems (the reference always runs, so ratios exist). */
export function selection(
  workloads: readonly Workload[],
  filter: string | undefined,
): { workload: Workload; select: (system: string) => boolean }[] {
  if (filter === undefined) return workloads.map((workload) => ({ workload, select: () => true }));
  const needle = filter.toLowerCase();
  const out: { workload: Workload; select: (system: string) => boolean }[] = [];
  for (const workload of workloads) {
    if (`${workload.id} ${workload.title}`.toLowerCase().includes(needle)) out.push({ workload, select: () => true });
    else if (workload.systems.some((s) => s.toLowerCase().includes(needle))) {
      out.push({ workload, select: (system) => system.toLowerCase().includes(needle) });
    }
  }
  return out;
}

export function renderWorkload(result: WorkloadResult): string {
  return [
    `### ${result.id} — ${result.title}`,
    '',
    result.description,
    '',
    renderTable(result),
    '',
    ...result.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

/**
 * Runs the selected workloads against a private redis-server and writes the JSON. Everything it starts is stopped
 * before it returns or throws.
 */
export async function runBench(
  options: CliOptions,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  print: (text: string) => void = (text) => process.stdout.write(`${text}\n`),
): Promise<BenchResult> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const loadAverageAtStart = os.loadavg().map((n) => Math.round(n * 100) / 100);
  const git = gitState();
  const settings = SETTINGS[options.mode];
  const chosen = selection(WORKLOADS, options.filter);
  if (chosen.length === 0) throw new Error(`--filter ${options.filter} matches no workload or system`);
  const server = await startRedisServer();
  log(`redis-server ${server.version} on 127.0.0.1:${server.port}; mode ${options.mode}`);
  const results: WorkloadResult[] = [];
  try {
    const config: BenchConfig = {
      mode: options.mode,
      slices: settings.slices,
      sliceMs: settings.sliceMs,
      warmupMs: settings.warmupMs,
      rounds: settings.rounds,
      redis: { host: server.host, port: server.port },
      deadPort: await freePort(),
      filter: options.filter?.toLowerCase(),
      log,
    };
    for (const { workload, select } of chosen) {
      log(`${workload.id}: ${workload.title}`);
      const result = await workload.run(config, select);
      results.push(result);
      log(`  ${workload.id} took ${(result.elapsedMs / 1000).toFixed(1)} s`);
      print(renderWorkload(result));
    }
  } finally {
    await server.stop();
  }
  const cpus = os.cpus();
  const result: BenchResult = {
    schema: 1,
    startedAt,
    elapsedMs: Math.round(performance.now() - started),
    mode: options.mode,
    filter: options.filter ?? null,
    settings: {
      slices: settings.slices,
      sliceMs: settings.sliceMs,
      warmupMs: settings.warmupMs,
      rounds: settings.rounds,
    },
    machine: {
      node: process.version,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      loadAverageAtStart,
      loadAverageAtEnd: os.loadavg().map((n) => Math.round(n * 100) / 100),
      memoryMb: Math.round(os.totalmem() / 2 ** 20),
    },
    redis: { version: server.version, port: server.port },
    versions: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(name)])),
    git,
    workloads: results,
  };
  mkdirSync(dirname(options.json), { recursive: true });
  writeFileSync(options.json, `${JSON.stringify(result, null, 2)}\n`);
  log(
    `wrote ${options.json} in ${(result.elapsedMs / 1000).toFixed(1)} s; load average ${loadAverageAtStart.join(' ')} at start, ${result.machine.loadAverageAtEnd.join(' ')} at end`,
  );
  return result;
}
