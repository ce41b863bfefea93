import { Cluster } from 'ioredis';
import type { ChainableCommander, Redis } from 'ioredis';
import type { CacheError } from '../errors.js';
import type {
  LockedRead,
  LockedReadReplies,
  LockedReadReply,
  RemoteWrite,
  WriteMode,
  WriteOp,
  WriteReply,
} from '../types.js';
import { toCacheError } from './errors.js';
import { groupByNodeAndSlot, repliesOf } from './redis-connection.js';
import { loadedArgs } from './redis-scripts.js';
import type { PipelineOp, ScriptCommands, TagPipeline } from './redis-scripts.js';

type PipelineResult = [Error | null, unknown];

/** One slot's share of a batch on a cluster: the indexes of its items, and its command's outcome. */
export interface SlotReply {
  readonly indexes: readonly number[];
  readonly error: Error | null;
  readonly reply: unknown;
}

const WRITTEN: WriteReply = Object.freeze({ ok: true, value: true });

/**
 * The error of a slot's share that failed, one per distinct message in a batch: a node down fails all its slots with
 * one error, and so does a `CLUSTERDOWN` on every slot, each reported and counted once, not once a slot.
 */
export function slotFailure(seen: Map<string, CacheError>, error: Error): CacheError {
  let failed = seen.get(error.message);
  if (failed === undefined) {
    failed = toCacheError(error);
    seen.set(error.message, failed);
  }
  return failed;
}

/** The round trips of one batch, one per node: when none went through, the batch failed as a whole. */
function throwIfAllFailed(nodeErrors: readonly (Error | undefined)[]): void {
  const first = nodeErrors[0];
  if (first !== undefined && nodeErrors.every((error) => error !== undefined)) throw first;
}

/**
 * The multi-key commands of the Redis tier: a turn's writes as one script or pipeline, the loads' "value or lock"
 * reads as one script call, and pipelines per hash slot on a cluster. `bound` applies the tier's own timeout when
 * the client has none.
 */
export class RedisBatches {
  readonly #client: Redis | Cluster;
  readonly #bound: <T>(promise: Promise<T>) => Promise<T>;

  constructor(client: Redis | Cluster, bound: <T>(promise: Promise<T>) => Promise<T>) {
    this.#client = client;
    this.#bound = bound;
  }

  get #scripts(): ScriptCommands {
    return this.#client as unknown as ScriptCommands;
  }

  /** The tag-index updates of one write: one script call per tag, each on its own tag set. */
  tagOps(write: RemoteWrite, now: number): PipelineOp[] {
    const tagKeys = write.tagKeys;
    if (tagKeys === undefined || tagKeys.length === 0) return [];
    const expiresAt = now + write.ttlMs;
    return tagKeys.map((tagKey) => ({
      slotKey: tagKey,
      add: (p) => (p as unknown as TagPipeline).tiercacheTagAdd(tagKey, write.key, expiresAt, now),
    }));
  }

  /**
   * Runs commands in one pipeline (one round trip), or on a cluster one pipeline per hash slot, in parallel. Returns
   * the replies in the order of `ops`; the first error is thrown.
   */
  async pipeline(ops: readonly PipelineOp[]): Promise<unknown[]> {
    const results = await this.#pipelineSettled(ops);
    return results.map(([error, reply]) => {
      if (error) throw error;
      return reply;
    });
  }

  async readOrLock(
    reads: readonly LockedRead[],
    token: string,
    ttlMs: number,
    now: number,
  ): Promise<LockedReadReplies> {
    if (reads.length === 0) return [];
    const out = new Array<LockedReadReply | CacheError>(reads.length);
    const argsOf = (indexes: readonly number[]): (string | number)[] => {
      const args: (string | number)[] = [];
      for (const i of indexes) {
        const read = reads[i] as LockedRead;
        args.push(read.key, read.lockKey);
      }
      args.push(token, ttlMs, now);
      return args;
    };
    const fill = (indexes: readonly number[], reply: unknown[]): void => {
      indexes.forEach((index, j) => {
        const value = reply[2 * j];
        out[index] = { value: typeof value === 'string' ? value : null, locked: reply[2 * j + 1] === 1 };
      });
    };
    if (!(this.#client instanceof Cluster)) {
      const all = reads.map((_, i) => i);
      fill(all, await this.#bound(this.#scripts.tiercacheReadOrLock(all.length * 2, ...argsOf(all))));
      return out;
    }
    // A script touches one slot: a data key and its lock share one (the lock key carries the data key's hash tag).
    const replies = await this.bySlot(
      reads,
      (read) => read.key,
      (p, indexes) => {
        (p as unknown as TagPipeline).tiercacheReadOrLock(indexes.length * 2, ...argsOf(indexes));
      },
    );
    const seen = new Map<string, CacheError>();
    for (const { indexes, error, reply } of replies) {
      if (error === null) fill(indexes, reply as unknown[]);
      else {
        // That slot's node (or its command) failed while others answered: its keys fail, the others do not.
        const failed = slotFailure(seen, error);
        for (const index of indexes) out[index] = failed;
      }
    }
    return out;
  }

  async write(ops: readonly WriteOp[], mode: WriteMode): Promise<WriteReply[]> {
    if (ops.length === 0) return [];
    // On a cluster a batch is one pipeline per node either way: plain SETs there cost no Lua, and no script load on a
    // node's first batch (measured: 1024 keys took 134 ms the first time as SET_MANY per slot, past the timeout).
    const scripted = mode.scripted && !(this.#client instanceof Cluster);
    if (scripted && ops.length > 1 && ops.every((op) => op.kind === 'set' && !op.tagKeys?.length)) {
      await this.#setManyScripted(ops as readonly RemoteWrite[]);
      return ops.map(() => WRITTEN);
    }
    const commands: PipelineOp[] = [];
    /** For each op: the indexes of its commands, and which of them carry its reply. */
    const spans: { readonly from: number; readonly to: number; readonly counted: readonly number[] }[] = [];
    const now = Date.now();
    for (const op of ops) {
      const from = commands.length;
      const counted: number[] = [];
      if (op.kind === 'set') {
        counted.push(commands.length);
        commands.push({ slotKey: op.key, add: (p) => p.set(op.key, op.value, 'PX', op.ttlMs) });
        commands.push(...this.tagOps(op, now));
      } else if (op.kind === 'loaded') {
        counted.push(commands.length);
        const args = loadedArgs(op);
        commands.push({ slotKey: op.key, add: (p) => (p as unknown as TagPipeline).tiercacheSetLoaded(...args) });
        commands.push(...this.tagOps(op, now));
      } else {
        const groups =
          this.#client instanceof Cluster
            ? [...groupByNodeAndSlot(this.#client, op.keys, (k) => k).values()].flatMap((slots) => [...slots.values()])
            : [op.keys.map((_, i) => i)];
        // One UNLINK per key, so the reply says which keys existed (a delete counts a key found in either tier).
        for (const key of op.keys) {
          counted.push(commands.length);
          commands.push({ slotKey: key, add: (p) => p.unlink(key) });
        }
        for (const indexes of groups) {
          const extra = indexes.map((i) => op.alsoUnlink[i]).filter((k): k is string => k !== undefined);
          const slotKey = op.keys[indexes[0] as number] as string;
          if (extra.length > 0) commands.push({ slotKey, add: (p) => p.unlink(...extra) });
        }
      }
      spans.push({ from, to: commands.length, counted });
    }
    const results = await this.#pipelineSettled(commands);
    return ops.map((op, i): WriteReply => {
      const span = spans[i] as (typeof spans)[number];
      for (let c = span.from; c < span.to; c++) {
        const [error] = results[c] as PipelineResult;
        if (error) return { ok: false, error };
      }
      if (op.kind === 'set') return WRITTEN;
      if (op.kind === 'loaded')
        return { ok: true, value: (results[span.counted[0] as number] as PipelineResult)[1] === 1 };
      return { ok: true, value: span.counted.map((c) => Number((results[c] as PipelineResult)[1]) > 0) };
    });
  }

  /** Standalone only (a cluster sends plain SETs, see write). */
  async #setManyScripted(writes: readonly RemoteWrite[]): Promise<void> {
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const write of writes) {
      keys.push(write.key);
      args.push(write.value, write.ttlMs);
    }
    await this.#bound(this.#scripts.tiercacheSetMany(keys.length, ...keys, ...args));
  }

  /**
   * On a cluster: one command per hash slot (`add` queues it for the slot's items), the slots of one node in one
   * pipeline, the nodes in parallel. One round trip per node however many slots the batch spans. A node that fails
   * (down, timed out) fails its slots' share only; when every node failed, the batch fails (throws), so that the
   * accessor counts it and the breaker sees it.
   */
  async bySlot<T>(
    items: readonly T[],
    keyOf: (item: T) => string,
    add: (pipeline: ChainableCommander, indexes: readonly number[]) => void,
    onNode?: (replies: readonly SlotReply[]) => void,
  ): Promise<SlotReply[]> {
    const client = this.#client as Cluster;
    const out: SlotReply[] = [];
    const nodeErrors = await Promise.all(
      [...groupByNodeAndSlot(client, items, keyOf).values()].map(async (slots): Promise<Error | undefined> => {
        const groups = [...slots.values()];
        const pipeline = client.pipeline();
        for (const indexes of groups) add(pipeline, indexes);
        let results: PipelineResult[];
        try {
          results = repliesOf(await this.#bound(pipeline.exec()), groups.length);
        } catch (error) {
          // One error for the node's slots.
          const failed = toCacheError(error);
          const replies = groups.map((indexes): SlotReply => ({ indexes, error: failed, reply: undefined }));
          out.push(...replies);
          onNode?.(replies);
          return failed;
        }
        const replies = groups.map((indexes, g): SlotReply => {
          const [error, reply] = results[g] as PipelineResult;
          return { indexes, error, reply };
        });
        out.push(...replies);
        onNode?.(replies);
        return undefined;
      }),
    );
    throwIfAllFailed(nodeErrors);
    return out;
  }

  /**
   * Like #pipeline, but every command's own outcome comes back (`[error, reply]`), so one bad command fails its own
   * op only. Throws only when the whole round trip failed (a timeout, a lost connection).
   */
  async #pipelineSettled(ops: readonly PipelineOp[]): Promise<PipelineResult[]> {
    const groups =
      this.#client instanceof Cluster
        ? [...groupByNodeAndSlot(this.#client, ops, (op) => op.slotKey).values()].map((slots) =>
            [...slots.values()].flat(),
          )
        : [ops.map((_, i) => i)];
    const out = new Array<PipelineResult>(ops.length);
    const nodeErrors = await Promise.all(
      groups.map(async (indexes): Promise<Error | undefined> => {
        const pipeline = this.#client.pipeline();
        for (const i of indexes) (ops[i] as PipelineOp).add(pipeline);
        let results: PipelineResult[];
        try {
          results = (await this.#bound(pipeline.exec())) ?? [];
        } catch (error) {
          // One node of several: its ops fail with the node's error (a CacheError, unlike a command's own reply
          // error, so the batcher can tell); the other nodes' ops went through.
          const failed = toCacheError(error);
          for (const index of indexes) out[index] = [failed, undefined];
          return failed;
        }
        indexes.forEach((index, j) => {
          out[index] = results[j] ?? [new Error('missing pipeline reply'), undefined];
        });
        return undefined;
      }),
    );
    throwIfAllFailed(nodeErrors);
    return out;
  }
}
