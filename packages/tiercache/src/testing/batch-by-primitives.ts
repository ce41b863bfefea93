import { storedFreshAt } from '../entry.js';
import { isOutageError } from '../errors.js';
import type { LockedRead, LockedReadReply, RemoteTier, WriteOp, WriteReply } from '../types.js';

/**
 * A turn's writes, op by op (concurrently), through a tier's single-op methods: for the testing tiers, whose calls cost no round
 * trip. An outage error fails the whole batch (as a lost connection fails a pipeline); any other error fails its op.
 */
export async function writeByPrimitives(tier: RemoteTier, ops: readonly WriteOp[]): Promise<WriteReply[]> {
  return Promise.all(ops.map((op) => writeOne(tier, op)));
}

async function writeOne(tier: RemoteTier, op: WriteOp): Promise<WriteReply> {
  {
    try {
      if (op.kind === 'set') {
        const { kind: _kind, ...write } = op;
        if (write.tagKeys !== undefined && write.tagKeys.length > 0) await tier.setMany([write]);
        else await tier.set(write.key, write.value, write.ttlMs);
        return { ok: true, value: true };
      } else if (op.kind === 'loaded') {
        const { kind: _kind, ...write } = op;
        return { ok: true, value: await tier.setLoaded(write) };
      } else {
        const existed = await Promise.all(
          op.keys.map(async (key, i) => {
            const lockKey = op.alsoUnlink[i];
            return (await tier.deleteMany([key], lockKey === undefined ? [] : [lockKey])) > 0;
          }),
        );
        return { ok: true, value: existed };
      }
    } catch (error) {
      if (isOutageError(error)) throw error;
      return { ok: false, error };
    }
  }
}

/** "The value, or else the lock", key by key, through `get` and `acquireLock`. */
export async function readOrLockByPrimitives(
  tier: RemoteTier,
  reads: readonly LockedRead[],
  token: string,
  ttlMs: number,
  now: number,
): Promise<LockedReadReply[]> {
  return Promise.all(
    reads.map(async (read): Promise<LockedReadReply> => {
      const value = await tier.get(read.key);
      const locked = !storedFreshAt(value, now) && (await tier.acquireLock(read.lockKey, token, ttlMs)) === true;
      return { value: value ?? null, locked };
    }),
  );
}
