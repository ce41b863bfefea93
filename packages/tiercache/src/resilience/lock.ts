import { randomBytes } from 'node:crypto';
import type { RemoteTier } from '../types.js';

/**
 * The stampede lock's key for a data key, under the prefix of the cache or namespace that loads it (so its `clear()`
 * removes the lock too, and a loader whose lock was removed does not write; keys starting with `__` are reserved, so
 * it cannot collide with a user key). It carries the data key as its hash tag, so on a Redis Cluster the lock and the
 * data live in one slot and one script can check both; a data key that has a hash tag of its own keeps it, since the
 * lock key then contains the data key and its tag verbatim.
 */
export function lockKeyFor(prefix: string, fullKey: string): string {
  const open = fullKey.indexOf('{');
  if (open !== -1) {
    const close = fullKey.indexOf('}', open + 1);
    // The first {…} of the lock key is then the data key's own tag (the prefix before it is the same string).
    if (close > open + 1) return `${prefix}__lock:${fullKey}`;
  }
  return `${prefix}__lock:{${fullKey}}`;
}

export function lockToken(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * Callers of this process waiting for another process to finish loading a key. Woken by the holder's publish (see
 * RedisTier.setLoaded) or by their own poll timer, whichever comes first. One waiter per key per process at most,
 * since single-flight already joined the rest, so the map stays as small as the set of keys loading elsewhere.
 */
export class LockWaiters {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** Resolves when `fullKey` is signalled or after `ms`, whichever is first. Never rejects. */
  wait(fullKey: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.#waiting.get(fullKey);
      if (!set) this.#waiting.set(fullKey, (set = new Set()));
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiting.get(fullKey) === waiters) this.#waiting.delete(fullKey);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      waiters.add(done);
    });
  }

  signal(fullKey: string): void {
    const set = this.#waiting.get(fullKey);
    if (set) for (const done of [...set]) done();
  }

  /** Wakes everyone (used on close, so no waiter outlives the cache). */
  signalAll(): void {
    for (const key of [...this.#waiting.keys()]) this.signal(key);
  }

  get size(): number {
    return this.#waiting.size;
  }
}

/** What a lease needs of Redis: compare-and-pexpire and compare-and-delete, through the remote accessor. */
export interface LeaseRemote {
  run<T>(operation: 'lock', key: string | undefined, fn: (tier: RemoteTier) => Promise<T>): Promise<unknown>;
}

/**
 * A held stampede lock: it owns its token, keeps itself alive while its loader runs (extended every third of its
 * TTL), and releases by compare-and-delete, so a holder never deletes another's lock. `token` is '' once the lease is
 * given up: a write guarded by it would then be refused, so a late result is stored by its creation time alone.
 */
export class Lease {
  readonly lockKey: string;
  readonly #token: string;
  readonly #key: string;
  readonly #remote: LeaseRemote;
  #held = true;
  #extender: NodeJS.Timeout | undefined;

  constructor(remote: LeaseRemote, key: string, lockKey: string, token: string) {
    this.#remote = remote;
    this.#key = key;
    this.lockKey = lockKey;
    this.#token = token;
  }

  get token(): string {
    return this.#held ? this.#token : '';
  }

  get held(): boolean {
    return this.#held;
  }

  /** Extends the lock every third of `ttlMs` until the lease is settled, released or given up. */
  keepAlive(ttlMs: number): void {
    if (!this.#held || this.#extender !== undefined) return;
    const token = this.#token;
    this.#extender = setInterval(
      () => void this.#remote.run('lock', this.#key, (tier) => tier.extendLock(this.lockKey, token, ttlMs)),
      Math.max(10, Math.floor(ttlMs / 3)),
    );
    this.#extender.unref();
  }

  /** The loader settled: stop extending (the write that follows releases the lock itself). */
  settle(): void {
    clearInterval(this.#extender);
    this.#extender = undefined;
  }

  /**
   * The write of the loaded value releases the lock itself (compare-and-delete in the same script): returns the
   * token for it ('' when the lease was given up), and the lease no longer holds anything.
   */
  handOver(): string {
    const token = this.token;
    this.settle();
    this.#held = false;
    return token;
  }

  /** Gives the lock up now (a hard timeout), so other processes can try; the late result is stored without it. */
  abandon(): void {
    void this.release();
  }

  /** Releases the lock now, if still held. */
  async release(): Promise<void> {
    this.settle();
    if (!this.#held) return;
    this.#held = false;
    await this.#remote.run('lock', this.#key, (tier) => tier.releaseLock(this.lockKey, this.#token));
  }
}
