/** Deleting from Redis: many keys with their locks, and a prefix by SCAN on every master. Cluster-safe. */
import { Cluster } from 'ioredis';
import type { Redis } from 'ioredis';
import type { RedisBatches } from './redis-batch.js';
import { groupByNodeAndSlot, groupBySlot, repliesOf } from './redis-connection.js';
import type { PipelineOp } from './redis-scripts.js';

export interface DeleteContext {
  readonly client: Redis | Cluster;
  readonly batches: RedisBatches;
  /** ioredis' keyPrefix, which SCAN shows and UNLINK adds. */
  readonly keyPrefix: string;
  readonly bound: <T>(promise: Promise<T>) => Promise<T>;
}

const SCAN_COUNT = 1000;
const UNLINK_BATCH = 500;

/** Escapes the glob characters of a literal so SCAN MATCH treats it literally. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}

/** UNLINKs `keys` and `alsoUnlink` (their lock keys, by index); resolves with how many of `keys` existed. */
export async function unlinkMany(
  ctx: DeleteContext,
  keys: readonly string[],
  alsoUnlink: readonly string[],
): Promise<number> {
  const { client, batches, bound } = ctx;
  if (keys.length === 0) return 0;
  const extraOf = (indexes: readonly number[]): string[] =>
    indexes.map((i) => alsoUnlink[i]).filter((k): k is string => k !== undefined);
  if (client instanceof Cluster) {
    // Per slot, one UNLINK of the keys (counted) and one of their lock keys (a lock carries its key's hash tag); the
    // slots of a node in one pipeline.
    const ops: PipelineOp[] = [];
    const counted: number[] = [];
    for (const slots of groupByNodeAndSlot(client, keys, (key) => key).values()) {
      for (const indexes of slots.values()) {
        const own = indexes.map((i) => keys[i] as string);
        const extra = extraOf(indexes);
        counted.push(ops.length);
        ops.push({ slotKey: own[0] as string, add: (p) => p.unlink(...own) });
        if (extra.length > 0) ops.push({ slotKey: own[0] as string, add: (p) => p.unlink(...extra) });
      }
    }
    const replies = await batches.pipeline(ops);
    return counted.reduce((sum, i) => sum + Number(replies[i]), 0);
  }
  const extra = extraOf(keys.map((_, i) => i));
  if (extra.length === 0) return bound(client.unlink(...keys));
  const results = await bound(
    client
      .pipeline()
      .unlink(...keys)
      .unlink(...extra)
      .exec(),
  );
  const [error, count] = results?.[0] ?? [new Error('empty pipeline reply'), 0];
  if (error) throw error;
  return count as number;
}

/** Removes every key under `prefix`; resolves with how many. Never KEYS, never FLUSHDB. */
export async function unlinkByPrefix(ctx: DeleteContext, prefix: string): Promise<number> {
  const nodes = ctx.client instanceof Cluster ? ctx.client.nodes('master') : [ctx.client];
  // A SCAN on one master sees only its own keys: every master, in parallel.
  const counts = await Promise.all(nodes.map((node) => scanAndUnlink(ctx, node, prefix)));
  return counts.reduce((a, b) => a + b, 0);
}

async function scanAndUnlink(ctx: DeleteContext, node: Redis, prefix: string): Promise<number> {
  const { keyPrefix, bound } = ctx;
  // SCAN MATCH sees keys as stored, with ioredis' keyPrefix; UNLINK adds keyPrefix again, so strip it.
  const pattern = `${escapeGlob(keyPrefix + prefix)}*`;
  let cursor = '0';
  let total = 0;
  do {
    const [next, found] = await bound(node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT));
    cursor = next;
    const keys = found.map((k) => k.slice(keyPrefix.length));
    for (let i = 0; i < keys.length; i += UNLINK_BATCH) {
      const batch = keys.slice(i, i + UNLINK_BATCH);
      if (!(ctx.client instanceof Cluster)) {
        total += await bound(node.unlink(...batch));
        continue;
      }
      // A node's keys of many slots: one UNLINK per slot (CROSSSLOT otherwise), all in one pipeline to the node.
      const pipeline = node.pipeline();
      const groups = [...groupBySlot(batch, (k) => k).values()];
      for (const indexes of groups) pipeline.unlink(...indexes.map((j) => batch[j] as string));
      for (const [error, count] of repliesOf(await bound(pipeline.exec()), groups.length)) {
        if (error) throw error;
        total += Number(count);
      }
    }
  } while (cursor !== '0');
  return total;
}
