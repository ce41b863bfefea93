import { randomBytes } from 'node:crypto';
import { CacheError } from '../errors.js';
import type { Instruments } from '../observability/instruments.js';
import type { KeyReply, LockedRead, LockedReadReply, ShareListener, WriteOp, WriteReply } from '../types.js';
import { toCacheError } from './errors.js';
import type { RemoteAccessor, RemoteOperation, RemoteOutcome } from './remote-accessor.js';

/** Redis did not answer this read (failed, timed out, or was skipped): the caller falls back without waiting again. */
export const UNREACHED = Symbol('redis unreached');
export type Unreached = typeof UNREACHED;

export type RawValue = string | null | undefined;

/** A multi-key read's answer per key: what Redis had, or UNREACHED for a key whose cluster node did not answer. */
export type RawValues = readonly (RawValue | Unreached)[];

const NOT_SENT: Promise<Unreached> = Promise.resolve(UNREACHED);
/** The `at` of a multi-get that is the batch's first read: it takes the batch's values as they are. */
const IDENTITY: readonly number[] = Object.freeze([]);
const WRITE_SKIPPED: Promise<RemoteOutcome<never>> = Promise.resolve({ ok: false });

/** A "value or lock" answer, with the token the lock was taken with. */
export interface LockedAnswer extends LockedReadReply {
  readonly token: string;
}

export interface BatchLimits {
  /** Most keys in one batch. */
  readonly maxKeys: number;
  /** Most bytes of values in one write batch. */
  readonly maxBytes: number;
}

export interface TurnBatcherOptions {
  readonly accessor: RemoteAccessor;
  /** false: every command goes out on its own, at once (for comparison). */
  readonly limits: BatchLimits | false;
  /** The lock TTL for "value or lock" reads, in ms. */
  readonly lockTtlMs: number;
  /** Whether plain sets may go out as one script (see WriteMode). Asked at each flush. */
  readonly scripted: () => boolean;
  /** Reports one op's own failure inside a batch that otherwise went through. */
  readonly report: (operation: RemoteOperation, key: string | undefined, error: CacheError) => void;
  /** Batch sizes are recorded here at each flush; undefined or disabled: not recorded. */
  readonly instruments?: Instruments | undefined;
}

interface ReadRequest {
  /** Index into the batch's keys, or several for a multi-get. */
  readonly at: number | readonly number[];
  readonly resolve: (value: RawValue | RawValues | Unreached) => void;
  /** Answered from its node's share before the whole batch was (a get on a Redis Cluster). */
  early?: true;
}

interface LockRequest {
  readonly read: LockedRead;
  readonly key: string;
  readonly resolve: (answer: LockedAnswer | Unreached) => void;
}

interface WriteRequest {
  readonly op: WriteOp;
  readonly key: string | undefined;
  readonly resolve: (outcome: RemoteOutcome<unknown>) => void;
}

/**
 * Answers the gets of a batch whose key a node's share holds, as soon as that node answered (a Redis Cluster): one
 * slow or dead master must not hold up the callers of the others. Failed keys and multi-gets wait for the whole
 * batch, where failures are reported and counted once.
 */
function earlyAnswers(reads: readonly ReadRequest[], size: number): ShareListener {
  // Which key indexes the current share holds: the share's number, so one array serves every share of the batch.
  // Made on the first share: a standalone Redis answers at once and never calls this.
  let shareOf: Uint32Array | undefined;
  let share = 0;
  return (indexes, values) => {
    shareOf ??= new Uint32Array(size);
    share++;
    for (const index of indexes) shareOf[index] = share;
    for (const read of reads) {
      const at = read.at;
      if (typeof at !== 'number' || shareOf[at] !== share) continue;
      const value = values[at];
      if (value instanceof CacheError) continue;
      read.early = true;
      read.resolve(value);
    }
  };
}

/**
 * Same-turn batching. The Redis reads of one event-loop turn (gets, multi-gets, lock waiters' re-reads) go out as an
 * MGET (a lone one as a plain GET), the loads' "value or lock" steps as a script call, and the turn's writes (sets,
 * deletes, tag bookkeeping, loaded values) as a script or a pipeline: each of at most `maxKeys` keys, the next one
 * started at once, so that Node decodes one reply while Redis serves the next command. The window is the turn, never
 * a timer: when nothing of ours is in flight the batch goes at the end of the current microtask queue (a lone caller
 * waits for nothing), otherwise at the loop's check phase (setImmediate), so that the requests an HTTP server reads
 * in one poll phase share one round trip. Writes go first, so a read in the same turn sees them. The timeout, the
 * breaker and errors are per batch (one accessor call), answers per key.
 */
export class TurnBatcher {
  readonly #accessor: RemoteAccessor;
  readonly #limits: BatchLimits | false;
  readonly #lockTtlMs: number;
  readonly #scripted: () => boolean;
  readonly #report: TurnBatcherOptions['report'];
  readonly #instruments: Instruments | undefined;

  #keys: string[] = [];
  #index: Map<string, number> | undefined;
  #readKey: string | undefined;
  #reads: ReadRequest[] = [];
  #locks: LockRequest[] = [];
  #writes: WriteRequest[] = [];
  #writeBytes = 0;
  #scheduled = false;
  #inflight = 0;
  readonly #flush = (): void => this.flush();

  constructor(options: TurnBatcherOptions) {
    this.#accessor = options.accessor;
    this.#limits = options.limits;
    this.#lockTtlMs = options.lockTtlMs;
    this.#scripted = options.scripted;
    this.#report = options.report;
    this.#instruments = options.instruments?.enabled === true ? options.instruments : undefined;
  }

  /** The stored string of one full key (`key`: the caller's, for error reports), or UNREACHED. */
  read(fullKey: string, key: string): Promise<RawValue | Unreached> {
    if (this.#skip('read')) return NOT_SENT;
    return new Promise((resolve) => this.#enqueueRead(fullKey, key, resolve));
  }

  /**
   * `read` with the answer handed to `done` (synchronously when skipped): the hottest path, where the caller
   * resolves its own promise from here instead of continuing one of ours. `done` must not throw.
   */
  readThen(fullKey: string, key: string, done: (raw: RawValue | Unreached) => void): void {
    if (this.#skip('read')) done(UNREACHED);
    else this.#enqueueRead(fullKey, key, done);
  }

  #enqueueRead(fullKey: string, key: string, done: (raw: RawValue | Unreached) => void): void {
    const at = this.#slot(fullKey, key);
    this.#reads.push({ at, resolve: done as ReadRequest['resolve'] });
    this.#queued(this.#keys.length);
  }

  /** The stored strings of several full keys in order (UNREACHED for a key whose cluster node failed), or UNREACHED. */
  readMany(fullKeys: readonly string[]): Promise<RawValues | Unreached> {
    if (this.#skip('read')) return NOT_SENT;
    return new Promise((resolve) => {
      let at: readonly number[];
      if (this.#keys.length === 0) {
        // The turn's first read: its keys are the batch's, as they are (an mget alone is sent and answered as is).
        this.#keys = fullKeys.slice();
        this.#readKey = undefined;
        at = IDENTITY;
      } else at = fullKeys.map((fullKey) => this.#slot(fullKey, undefined));
      this.#reads.push({ at, resolve: resolve as ReadRequest['resolve'] });
      this.#queued(this.#keys.length);
    });
  }

  /** A load's first step: the stored value, and the stampede lock when there is no fresh one. Or UNREACHED. */
  readOrLock(read: LockedRead, key: string): Promise<LockedAnswer | Unreached> {
    if (this.#skip('read')) return NOT_SENT;
    return new Promise((resolve) => {
      this.#locks.push({ read, key, resolve });
      this.#queued(this.#locks.length);
    });
  }

  /** One write op of the turn's batch; resolves with its own outcome. */
  write(op: WriteOp, key: string | undefined): Promise<RemoteOutcome<unknown>> {
    if (this.#skip('write')) return WRITE_SKIPPED;
    return new Promise((resolve) => {
      this.#writes.push({ op, key, resolve });
      if (op.kind !== 'unlink') this.#writeBytes += op.value.length;
      const limits = this.#limits;
      this.#queued(limits !== false && this.#writeBytes >= limits.maxBytes ? Infinity : this.#writes.length);
    });
  }

  /**
   * Answers at once what would be skipped anyway (Redis down, breaker open): nothing is queued for a turn. And keeps
   * program order: a write after reads of the same turn (or a read after writes) first sends what is queued, so Redis
   * sees the commands in the order they were made.
   */
  #skip(kind: 'read' | 'write'): boolean {
    if (this.#accessor.skipsNow(kind === 'read' ? 'get' : 'set')) return true;
    const pending = kind === 'read' ? this.#writes.length > 0 : this.#reads.length > 0 || this.#locks.length > 0;
    if (pending) this.flush();
    return false;
  }

  /** The index of `fullKey` in this turn's batch: a key asked for twice in one turn is sent once. */
  #slot(fullKey: string, key: string | undefined): number {
    const keys = this.#keys;
    if (keys.length === 0) {
      keys.push(fullKey);
      this.#readKey = key;
      return 0;
    }
    let index = this.#index;
    if (index === undefined) {
      // Built only once a second read joins the batch.
      index = new Map();
      for (let i = keys.length - 1; i >= 0; i--) index.set(keys[i] as string, i);
      this.#index = index;
    }
    const known = index.get(fullKey);
    if (known !== undefined) return known;
    const at = keys.length;
    keys.push(fullKey);
    index.set(fullKey, at);
    this.#readKey = undefined;
    return at;
  }

  #queued(size: number): void {
    const limits = this.#limits;
    if (limits === false || size >= limits.maxKeys) {
      this.flush();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (this.#inflight > 0) setImmediate(this.#flush);
    else queueMicrotask(this.#flush);
  }

  /** Sends whatever is queued now (close() calls it so nothing accepted is left behind). */
  flush(): void {
    this.#scheduled = false;
    if (this.#writes.length > 0) this.#flushWrites();
    if (this.#locks.length > 0) this.#flushLocks();
    if (this.#reads.length > 0) this.#flushReads();
  }

  #flushReads(): void {
    const keys = this.#keys;
    const reads = this.#reads;
    const reportKey = reads.length === 1 ? this.#readKey : undefined;
    this.#keys = [];
    this.#index = undefined;
    this.#reads = [];
    this.#readKey = undefined;
    this.#inflight++;
    this.#instruments?.readBatch.record(keys.length);
    if (keys.length === 1) {
      // A lone read is a plain GET, answered without an array.
      this.#accessor.send(
        'get',
        reportKey,
        (tier) => tier.get(keys[0] as string),
        1,
        (outcome) => {
          this.#inflight--;
          const value = outcome.ok ? outcome.value : UNREACHED;
          for (const read of reads)
            read.resolve(typeof read.at === 'number' ? value : value === UNREACHED ? value : [value]);
        },
      );
      return;
    }
    this.#accessor.send(
      'get',
      reportKey,
      (tier) => tier.getMany(keys, reads.length > 1 ? earlyAnswers(reads, keys.length) : undefined),
      keys.length,
      (outcome) => {
        this.#inflight--;
        if (!outcome.ok) {
          for (const read of reads) if (read.early !== true) read.resolve(UNREACHED);
          return;
        }
        const values = this.#perKey(outcome.value);
        for (const read of reads) {
          if (read.early === true) continue;
          const at = read.at;
          read.resolve(typeof at === 'number' ? values[at] : at === IDENTITY ? values : at.map((i) => values[i]));
        }
      },
    );
  }

  #flushLocks(): void {
    const locks = this.#locks;
    this.#locks = [];
    this.#inflight++;
    // One token for the batch: each lock key names its own key, so the token tells holders of that key apart.
    const token = randomBytes(12).toString('base64url');
    const ttlMs = this.#lockTtlMs;
    const reportKey = locks.length === 1 ? locks[0]?.key : undefined;
    // One key twice in a batch (two namespaces' views of it cannot be, single-flight joins the rest): asked once.
    const unique = new Map<string, number>();
    const reads: LockedRead[] = [];
    for (const lock of locks) {
      if (!unique.has(lock.read.key)) {
        unique.set(lock.read.key, reads.length);
        reads.push(lock.read);
      }
    }
    this.#instruments?.lockBatch.record(reads.length);
    this.#accessor.send(
      'lock',
      reportKey,
      (tier) => tier.readOrLock(reads, token, ttlMs, Date.now()),
      reads.length,
      (outcome) => {
        this.#inflight--;
        const answered = new Set<number>();
        const reported = new Set<CacheError>();
        for (const lock of locks) {
          if (!outcome.ok) {
            lock.resolve(UNREACHED);
            continue;
          }
          const at = unique.get(lock.read.key) as number;
          const reply = outcome.value[at];
          if (reply instanceof CacheError) {
            this.#reportOnce(reported, 'lock', reply);
            lock.resolve(UNREACHED);
          } else if (reply === undefined) lock.resolve(UNREACHED);
          else {
            // Only the first asker holds a lock taken for a key asked twice.
            lock.resolve({ value: reply.value, locked: reply.locked && !answered.has(at), token });
            answered.add(at);
          }
        }
      },
    );
  }

  #flushWrites(): void {
    const writes = this.#writes;
    this.#writes = [];
    this.#writeBytes = 0;
    this.#inflight++;
    const first = writes[0] as WriteRequest;
    const operation: RemoteOperation = first.op.kind === 'unlink' ? 'delete' : 'set';
    const reportKey = writes.length === 1 ? first.key : undefined;
    const scripted = this.#scripted();
    this.#instruments?.writeBatch.record(writes.length);
    this.#accessor.send(
      operation,
      reportKey,
      (tier) =>
        tier.write(
          writes.map((w) => w.op),
          { scripted },
        ),
      writes.length,
      (outcome) => {
        this.#inflight--;
        if (!outcome.ok) {
          for (const write of writes) write.resolve(outcome);
          return;
        }
        // Ops of a cluster node that failed share its error (a CacheError; a command's own reply error is not one): it
        // counts against the breaker once, as one call would.
        const nodeErrors = new Set<CacheError>();
        writes.forEach((write, i) => {
          const reply = outcome.value[i];
          if (reply !== undefined && !reply.ok && reply.error instanceof CacheError) nodeErrors.add(reply.error);
          write.resolve(this.#own(write, reply));
        });
        for (const error of nodeErrors) this.#accessor.countPartialFailure(error);
      },
    );
  }

  /**
   * A multi-key reply as the callers take it: a key whose cluster node failed while the others answered is UNREACHED
   * (its caller falls back), and each node's error is reported once. Nothing to do in the common case.
   */
  #perKey(values: readonly KeyReply[]): RawValues {
    if (!values.some((value) => value instanceof CacheError)) return values as readonly RawValue[];
    const reported = new Set<CacheError>();
    return values.map((value) => {
      if (!(value instanceof CacheError)) return value;
      this.#reportOnce(reported, 'get', value);
      return UNREACHED;
    });
  }

  #reportOnce(reported: Set<CacheError>, operation: RemoteOperation, error: CacheError): void {
    if (reported.has(error)) return;
    reported.add(error);
    this.#report(operation, undefined, error);
    this.#accessor.countPartialFailure(error);
  }

  #own(write: WriteRequest, reply: WriteReply | undefined): RemoteOutcome<unknown> {
    if (reply === undefined) return { ok: false, error: toCacheError(new Error('missing reply'), write.key) };
    if (reply.ok) return reply;
    const error = toCacheError(reply.error, write.key);
    this.#report(write.op.kind === 'unlink' ? 'delete' : 'set', write.key, error);
    return { ok: false, error };
  }
}
