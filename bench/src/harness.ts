import { performance } from 'node:perf_hooks';

export type Mode = 'full' | 'quick';

export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** What every workload is handed. Durations are in ms. */
export interface BenchConfig {
  readonly mode: Mode;
  /** Throughput: slices measured per system, interleaved round-robin; the median slice is reported. */
  readonly slices: number;
  /** Throughput: length of one slice. */
  readonly sliceMs: number;
  /** Throughput: warm-up of each system before the first slice. */
  readonly warmupMs: number;
  /** Repetitions of the non-throughput workloads (stampedes); medians are reported. */
  readonly rounds: number;
  readonly redis: RedisAddress;
  /** A loopback port nobody listens on, for "Redis absent". */
  readonly deadPort: number;
  /** Lower-cased `--filter`, or undefined. */
  readonly filter: string | undefined;
  readonly log: (line: string) => void;
}

/**
 * reference: the denominator of every ratio; control: the reference measured again (A/A) to show the noise;
 * subject: tiercache; peer: another cache library; raw: a client or structure used directly.
 */
export type Role = 'reference' | 'control' | 'subject' | 'peer' | 'raw';

export type ColumnKind = 'rate' | 'duration' | 'ratio' | 'count' | 'text';

export interface Column {
  readonly key: string;
  readonly label: string;
  readonly kind: ColumnKind;
}

export type Cell = number | string | null;

export interface Row {
  readonly system: string;
  readonly role: Role;
  /** Values by column key. Durations are in ms; rates in operations per second. */
  readonly values: Record<string, Cell>;
  /** The headline figure over the reference's (higher is better for rates, lower for times). Null when n/a. */
  readonly ratio: number | null;
  /** The headline figure of each repetition (slice or round), in run order. */
  readonly reps?: readonly number[];
  readonly note?: string;
}

export interface WorkloadResult {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  /** The system every ratio divides by. */
  readonly reference: string | null;
  /** What the ratio column means, for the table header. */
  readonly ratioLabel: string;
  readonly columns: readonly Column[];
  readonly rows: readonly Row[];
  readonly notes: readonly string[];
  readonly elapsedMs: number;
}

export interface Workload {
  readonly id: string;
  readonly title: string;
  /** Every system name the workload can run, so `--filter` can select by system. */
  readonly systems: readonly string[];
  run(config: BenchConfig, select: (system: string) => boolean): Promise<WorkloadResult>;
}

// ── statistics ────────────────────────────────────────────────────────────────────────────────────────────────

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile of the first `count` samples (sorted in place). */
export function percentile(samples: Float64Array | number[], count: number, p: number): number {
  if (count === 0) return NaN;
  const view =
    samples instanceof Float64Array ? samples.subarray(0, count).sort() : samples.slice(0, count).sort((a, b) => a - b);
  const rank = Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1));
  return view[rank] as number;
}

// ── formatting ────────────────────────────────────────────────────────────────────────────────────────────────

function fixed(value: number, unit: string): string {
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return fixed(perSecond / 1e6, 'M/s');
  if (perSecond >= 1e3) return fixed(perSecond / 1e3, 'k/s');
  return fixed(perSecond, '/s');
}

export function formatDuration(ms: number): string {
  if (ms < 0.001) return fixed(ms * 1e6, 'ns');
  if (ms < 1) return fixed(ms * 1e3, 'µs');
  if (ms < 1000) return fixed(ms, 'ms');
  return fixed(ms / 1000, 's');
}

export function formatRatio(ratio: number): string {
  if (ratio < 0.01) return `${ratio.toFixed(4)}×`;
  return `${ratio.toFixed(2)}×`;
}

export function formatCell(kind: ColumnKind, value: Cell): string {
  if (value === null || (typeof value === 'number' && !Number.isFinite(value))) return '–';
  if (typeof value === 'string') return value;
  switch (kind) {
    case 'rate':
      return formatRate(value);
    case 'duration':
      return formatDuration(value);
    case 'ratio':
      return formatRatio(value);
    case 'count':
      return String(Math.round(value));
    case 'text':
      return String(value);
  }
}

const ROLE_MARK: Record<Role, string> = {
  reference: ' (reference)',
  control: ' (A/A control)',
  subject: '',
  peer: '',
  raw: '',
};

export function renderTable(result: WorkloadResult): string {
  const withRatio = result.ratioLabel !== '';
  const headers = ['system', ...result.columns.map((c) => c.label), ...(withRatio ? [result.ratioLabel] : []), 'note'];
  const lines = [
    `| ${headers.join(' | ')} |`,
    `|${headers.map((_, i) => (i === 0 || i === headers.length - 1 ? '---' : '--:')).join('|')}|`,
  ];
  for (const row of result.rows) {
    const name = row.role === 'subject' ? `**${row.system}**` : `${row.system}${ROLE_MARK[row.role]}`;
    const cells = result.columns.map((c) => formatCell(c.kind, row.values[c.key] ?? null));
    const ratio = row.ratio === null ? '–' : formatRatio(row.ratio);
    const note = (row.note ?? '').replace(/\|/g, '\\|');
    lines.push(`| ${[name, ...cells, ...(withRatio ? [ratio] : []), note].join(' | ')} |`);
  }
  return lines.join('\n');
}

// ── measurement ───────────────────────────────────────────────────────────────────────────────────────────────

export interface Operation {
  /** 'sync' returns the value; 'async' returns a promise of it. `i` picks the key. */
  readonly kind: 'sync' | 'async';
  readonly run: (i: number) => unknown;
  /** Runs `n` operations from index `start` and returns how many missed; used in batch mode when present. */
  readonly batch?: (start: number, n: number) => number | Promise<number>;
}

/**
 * A batch loop compiled for one system. Each system gets its own function (not a closure of a shared one) so V8
 * keeps a separate, monomorphic feedback vector per loop: with a shared loop every system after the first would pay
 * for a polymorphic call site, which at 20 ns per operation is a visible share of the figure.
 */
export function compileBatch(
  kind: 'sync' | 'async',
  get: (key: string) => unknown,
  keys: readonly string[],
): (start: number, n: number) => number | Promise<number> {
  if ((keys.length & (keys.length - 1)) !== 0) throw new Error('compileBatch needs a power-of-two key count');
  const body =
    'let missed = 0; for (let j = 0; j < n; j++) { ' +
    `if ((${kind === 'async' ? 'await ' : ''}get(keys[(start + j) & mask])) === undefined) missed++; } return missed;`;
  // A fresh function per system on purpose (see above).
  const factory = new Function(
    'get',
    'keys',
    'mask',
    `return ${kind === 'async' ? 'async ' : ''}function (start, n) { ${body} };`,
  ) as (
    get: (key: string) => unknown,
    keys: readonly string[],
    mask: number,
  ) => (start: number, n: number) => number | Promise<number>;
  return factory(get, keys, keys.length - 1);
}

export interface MeasureOptions {
  readonly durationMs: number;
  /** Callers in flight at once (async only). */
  readonly concurrency: number;
  /**
   * Operations per timed batch: sub-microsecond operations are timed in batches (the clock costs more than the
   * operation), and the latency columns then show per-operation means of batches, not single operations.
   */
  readonly batch: number | undefined;
  readonly check: (value: unknown) => boolean;
}

/** Latency samples in ms, appended across calls of `measure` until full (then further samples are dropped). */
export class Recorder {
  readonly samples: Float64Array;
  count = 0;

  constructor(capacity = 1 << 18) {
    this.samples = new Float64Array(capacity);
  }

  percentile(p: number): number {
    return percentile(this.samples, this.count, p);
  }
}

export interface Sample {
  readonly ops: number;
  readonly elapsedMs: number;
  /** Operations whose result failed the workload's check (a miss, a wrong value, an error). */
  readonly failures: number;
  readonly firstError: string | undefined;
}

export async function measure(op: Operation, options: MeasureOptions, recorder: Recorder): Promise<Sample> {
  const { durationMs, concurrency, batch, check } = options;
  const latencies = recorder.samples;
  const capacity = latencies.length;
  let ops = 0;
  let failures = 0;
  let firstError: string | undefined;
  const fail = (error: unknown): void => {
    failures++;
    firstError ??= error instanceof Error ? error.message : String(error);
  };
  const start = performance.now();
  const end = start + durationMs;
  if (batch !== undefined && concurrency === 1) {
    const run = op.run;
    let i = 0;
    let now = start;
    while (now < end) {
      const t0 = now;
      if (op.batch !== undefined) {
        try {
          const missed = op.batch(i, batch);
          failures += typeof missed === 'number' ? missed : await missed;
        } catch (error) {
          fail(error);
        }
        i += batch;
      } else if (op.kind === 'sync') {
        for (let j = 0; j < batch; j++) if (!check(run(i++))) failures++;
      } else {
        for (let j = 0; j < batch; j++) {
          try {
            if (!check(await run(i++))) failures++;
          } catch (error) {
            fail(error);
          }
        }
      }
      now = performance.now();
      if (recorder.count < capacity) latencies[recorder.count++] = (now - t0) / batch;
      ops += batch;
    }
    return { ops, elapsedMs: now - start, failures, firstError };
  }
  if (op.kind === 'sync') throw new Error('a sync operation is measured in batches with one caller');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        if (!check(await op.run(next++))) failures++;
      } catch (error) {
        fail(error);
      }
      const t1 = performance.now();
      if (recorder.count < capacity) latencies[recorder.count++] = t1 - t0;
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ops, elapsedMs: performance.now() - start, failures, firstError };
}

// ── throughput workloads ──────────────────────────────────────────────────────────────────────────────────────

export interface ThroughputCase {
  readonly system: string;
  readonly role: Role;
  readonly note?: string;
  /** Connects and writes the system's own keys. */
  setup(): Promise<Operation>;
  /** Anything worth saying after the run (errors the library absorbed, for instance). */
  report?(): string | undefined;
  teardown(): Promise<void>;
}

export interface ThroughputSpec {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly concurrency: number;
  readonly batch: number | undefined;
  readonly check: (value: unknown) => boolean;
  /** Multiplies the reported rate (e.g. keys per call); 1 for plain operations. */
  readonly rateLabel?: string;
}

export const THROUGHPUT_COLUMNS: readonly Column[] = [
  { key: 'rate', label: 'ops/s', kind: 'rate' },
  { key: 'p50', label: 'p50', kind: 'duration' },
  { key: 'p99', label: 'p99', kind: 'duration' },
  { key: 'cpu', label: 'CPU/op', kind: 'duration' },
];

/**
 * The median over rounds of `rates[round] / reference[round]`. Each round measures every system within a fraction of
 * a second, so a round's ratio compares two systems under the same load from elsewhere; the median of those ratios
 * holds up when a shared machine swings between calm and busy, where a ratio of two medians does not.
 */
export function pairedRatio(rates: readonly number[], reference: readonly number[]): number | null {
  const pairs = rates.flatMap((rate, round) => {
    const ref = reference[round];
    return ref === undefined || ref <= 0 ? [] : [rate / ref];
  });
  return pairs.length > 0 ? median(pairs) : null;
}

interface CaseState {
  readonly spec: ThroughputCase;
  op: Operation | undefined;
  setupError: string | undefined;
  readonly rates: number[];
  /** CPU time (user + system) of this process per operation, in ms, one per slice. */
  readonly cpu: number[];
  readonly recorder: Recorder;
  failures: number;
  ops: number;
  firstError: string | undefined;
}

/**
 * Measures every case in `slices` short slices, round-robin, the order rotating each round so no system always runs
 * right after the same neighbour; reports the median slice rate, latency percentiles over all slices, and ratios to
 * the reference.
 */
export async function runThroughput(
  spec: ThroughputSpec,
  cases: readonly ThroughputCase[],
  config: BenchConfig,
): Promise<WorkloadResult> {
  const started = performance.now();
  const states: CaseState[] = cases.map((c) => ({
    spec: c,
    op: undefined,
    setupError: undefined,
    rates: [],
    cpu: [],
    recorder: new Recorder(),
    failures: 0,
    ops: 0,
    firstError: undefined,
  }));
  for (const state of states) {
    try {
      state.op = await state.spec.setup();
      const probe = state.op.kind === 'sync' ? state.op.run(0) : await state.op.run(0);
      if (!spec.check(probe)) throw new Error('the first operation did not return the expected parsed value');
    } catch (error) {
      state.setupError = error instanceof Error ? error.message : String(error);
      config.log(`  ${spec.id} ${state.spec.system}: setup failed: ${state.setupError}`);
    }
  }
  const runnable = states.filter((s) => s.op !== undefined);
  const options = { concurrency: spec.concurrency, batch: spec.batch, check: spec.check };
  try {
    for (const state of runnable) {
      await measure(state.op as Operation, { ...options, durationMs: config.warmupMs }, new Recorder(1024));
    }
    // Short slices, round-robin: a burst of load from another process lands on every system alike, not on one.
    for (let slice = 0; slice < config.slices; slice++) {
      for (let k = 0; k < runnable.length; k++) {
        const state = runnable[(k + slice) % runnable.length] as CaseState;
        const cpu0 = process.cpuUsage();
        const sample = await measure(state.op as Operation, { ...options, durationMs: config.sliceMs }, state.recorder);
        const cpu = process.cpuUsage(cpu0);
        state.rates.push((sample.ops / sample.elapsedMs) * 1000);
        state.cpu.push((cpu.user + cpu.system) / 1000 / sample.ops);
        state.failures += sample.failures;
        state.ops += sample.ops;
        state.firstError ??= sample.firstError;
      }
    }
    config.log(`  ${spec.id}: ${config.slices} slices of ${config.sliceMs} ms per system done`);
  } finally {
    for (const state of states) {
      await state.spec
        .teardown()
        .catch((error: unknown) => config.log(`  teardown of ${state.spec.system}: ${String(error)}`));
    }
  }
  const reference = states.find((s) => s.spec.role === 'reference');
  const referenceRates = reference?.rates ?? [];
  const rows: Row[] = states.map((state) => {
    const notes: string[] = [];
    if (state.spec.note) notes.push(state.spec.note);
    if (state.setupError) notes.push(`did not run: ${state.setupError}`);
    if (state.failures > 0) {
      notes.push(
        `${state.failures} of ${state.ops} operations failed the check${state.firstError ? ` (${state.firstError})` : ''}`,
      );
    }
    const extra = state.spec.report?.();
    if (extra) notes.push(extra);
    const rate = state.rates.length > 0 ? median(state.rates) : null;
    return {
      system: state.spec.system,
      role: state.spec.role,
      values: {
        rate,
        p50: state.recorder.count > 0 ? state.recorder.percentile(50) : null,
        p99: state.recorder.count > 0 ? state.recorder.percentile(99) : null,
        cpu: state.cpu.length > 0 ? median(state.cpu) : null,
      },
      ratio: pairedRatio(state.rates, referenceRates),
      reps: state.rates,
      ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    };
  });
  const latencyNote =
    spec.batch === undefined
      ? `p50/p99: latency of single operations over all slices (${spec.concurrency} caller${spec.concurrency === 1 ? '' : 's'} in flight)`
      : `p50/p99: per-operation mean of ${spec.batch}-operation batches over all slices (a clock read costs more than one operation)`;
  return {
    id: spec.id,
    title: spec.title,
    description: spec.description,
    reference: reference?.spec.system ?? null,
    ratioLabel: `× ${reference?.spec.system ?? 'reference'}`,
    columns: THROUGHPUT_COLUMNS,
    rows,
    notes: [
      `ops/s: median of ${config.slices} slices of ${config.sliceMs} ms per system; each round runs one slice of every system, round-robin (after a ${config.warmupMs} ms warm-up of each)${spec.rateLabel ? `; ${spec.rateLabel}` : ''}`,
      `${`× ${reference?.spec.system ?? 'reference'}`}: median over rounds of the system's slice rate over the reference's in the same round`,
      latencyNote,
      'CPU/op: CPU time (user + system) of the bench process per operation, median over slices; waiting for Redis or for a core is not counted, so it moves less than ops/s on a busy machine',
    ],
    elapsedMs: performance.now() - started,
  };
}

// ── small helpers shared by workloads ─────────────────────────────────────────────────────────────────────────

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export type Outcome =
  | { readonly status: 'ok'; readonly ms: number; readonly value: unknown }
  | { readonly status: 'error'; readonly ms: number; readonly error: string }
  | { readonly status: 'capped'; readonly ms: number };

/**
 * Runs a call and settles by `capMs` at the latest, so a peer that hangs cannot hang the bench. The call itself keeps
 * running (nothing can cancel it); its late settlement is swallowed here.
 */
export function capped(call: () => Promise<unknown>, capMs: number): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise<Outcome>((resolve) => {
    const timer = setTimeout(() => resolve({ status: 'capped', ms: performance.now() - t0 }), capMs);
    let promise: Promise<unknown>;
    try {
      promise = call();
    } catch (error) {
      promise = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ status: 'ok', ms: performance.now() - t0, value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({
          status: 'error',
          ms: performance.now() - t0,
          error: error instanceof Error ? error.message : String(error),
        });
      },
    );
  });
}

/** Polls `ready` every 5 ms until it is true or `timeoutMs` passes. */
export async function waitFor(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!ready()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Keys 0..count-1 under a prefix, built once so the measured loop does no string work. */
export function keyList(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}
