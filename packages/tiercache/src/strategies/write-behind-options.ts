/** The options, figures and public shape of a write-behind queue, and the validation of its options. */
import { positiveInteger, toMs } from '../options.js';
import type { Duration } from '../types.js';
import { checkFunction, checkOptionsObject } from './context.js';

export interface WriteBehindItem<T = unknown> {
  readonly key: string;
  readonly value: T;
  readonly id: string;
}

export interface WriteBehindQueueOptions<T = unknown> {
  /** Writes a batch to the origin (one item per key, the latest value). Throwing retries the batch. */
  readonly write: (batch: readonly WriteBehindItem<T>[]) => Promise<void> | void;
  /**
   * Most records in one call of `write`.
   * @default 100
   */
  readonly batchSize?: number;
  /**
   * How often the queue is checked for records other instances queued or left behind (new records of this
   * instance are written at once).
   * @default '1s'
   */
  readonly flushInterval?: Duration;
  /**
   * Attempts of a batch before its records are tried one by one, and a record that still fails is moved to the
   * dead letters.
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * Wait before retry n: `backoff × 2^(n-1)`, at most 30 s; or a function of the attempt number.
   * @default '200ms'
   */
  readonly backoff?: Duration | ((attempt: number) => number);
  /**
   * How long a record read by an instance may stay unwritten before another instance takes it over (the first
   * instance is presumed dead).
   * @default '30s'
   */
  readonly claimIdle?: Duration;
  /**
   * Most records kept in process memory (no Redis, or Redis unreachable); past it `writeBehind` rejects.
   * @default 10_000
   */
  readonly maxQueued?: number;
  /**
   * Most dead letters kept (the oldest are trimmed).
   * @default 10_000
   */
  readonly maxDeadLetters?: number;
}

export interface WriteBehindQueueStats {
  /** Records queued and not yet written (in Redis and in process memory). */
  readonly depth: number;
  /** Age of the oldest of them, in ms (0 when empty). */
  readonly lagMs: number;
  readonly deadLetters: number;
  /** Records written by this instance (superseded ones not counted). */
  readonly written: number;
  /** Failed `write` calls of this instance. */
  readonly failures: number;
  /** Records of this instance's batch waiting for a retry. */
  readonly retrying: number;
  /** Whether the queue is in Redis (false: in process memory, lost with the process). */
  readonly durable: boolean;
}

export interface DeadLetter<T = unknown> {
  readonly id: string;
  readonly key: string;
  readonly value: T;
  /** The writer's last error message. */
  readonly reason: string;
}

export interface WriteBehindQueue<T = unknown> {
  readonly name: string;
  stats(): Promise<WriteBehindQueueStats>;
  /** The figures of the last `stats()` call, without a round trip (for `health()` and metrics); undefined before. */
  readonly lastStats: WriteBehindQueueStats | undefined;
  /** The oldest dead letters (at most `limit`, default 100). */
  deadLetters(limit?: number): Promise<DeadLetter<T>[]>;
  /** Queues dead letters again (these ids, or all of the oldest 1000); resolves with how many. */
  replay(ids?: readonly string[]): Promise<number>;
  /** Writes what is queued now, retries included, until the queue is empty or `timeout` (default '10s') passed. */
  flush(timeout?: Duration): Promise<void>;
}

export const WRITE_BEHIND_DEFAULTS = {
  batchSize: 100,
  /** ms */
  flushInterval: 1_000,
  maxAttempts: 5,
  /** ms */
  backoff: 200,
  /** ms */
  claimIdle: 30_000,
  maxQueued: 10_000,
  maxDeadLetters: 10_000,
} as const;

const MAX_BACKOFF_MS = 30_000;

export interface Resolved<T> {
  readonly write: (batch: readonly WriteBehindItem<T>[]) => Promise<void> | void;
  readonly batchSize: number;
  readonly flushInterval: number;
  readonly maxAttempts: number;
  readonly backoff: (attempt: number) => number;
  readonly claimIdle: number;
  readonly maxQueued: number;
  readonly maxDeadLetters: number;
}

export function resolveQueueOptions<T>(input: unknown): Resolved<T> {
  checkOptionsObject(input);
  const o = input as WriteBehindQueueOptions<T>;
  checkFunction('write', o.write);
  const d = WRITE_BEHIND_DEFAULTS;
  let backoff: (attempt: number) => number;
  if (typeof o.backoff === 'function') {
    const fn = o.backoff;
    backoff = (attempt) => toMs('backoff', fn(attempt), { allowZero: true });
  } else {
    const base = o.backoff === undefined ? d.backoff : toMs('backoff', o.backoff, { allowZero: true });
    backoff = (attempt) => Math.min(MAX_BACKOFF_MS, base * 2 ** (attempt - 1));
  }
  return {
    write: o.write,
    batchSize: o.batchSize === undefined ? d.batchSize : positiveInteger('batchSize', o.batchSize, 10_000),
    flushInterval: o.flushInterval === undefined ? d.flushInterval : toMs('flushInterval', o.flushInterval),
    maxAttempts: o.maxAttempts === undefined ? d.maxAttempts : positiveInteger('maxAttempts', o.maxAttempts, 1_000),
    backoff,
    claimIdle: o.claimIdle === undefined ? d.claimIdle : toMs('claimIdle', o.claimIdle),
    maxQueued: o.maxQueued === undefined ? d.maxQueued : positiveInteger('maxQueued', o.maxQueued),
    maxDeadLetters:
      o.maxDeadLetters === undefined ? d.maxDeadLetters : positiveInteger('maxDeadLetters', o.maxDeadLetters),
  };
}

/** A batch taken from a store and not yet written. */
