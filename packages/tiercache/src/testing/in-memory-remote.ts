import { ConfigurationError, ConnectionError, describeValue } from '../errors.js';
import type { Disposer } from '../observability/events.js';
import { systemClock } from '../types.js';
import type { Clock, LoadedWrite, RemoteTier, RemoteWrite } from '../types.js';

interface Stored {
  readonly value: string;
  readonly expiresAt: number;
}

/** Shaped like the reply errors ioredis raises, so code that tells replies from outages sees the same thing. */
function replyError(message: string): ConnectionError {
  const cause = new Error(message);
  cause.name = 'ReplyError';
  return new ConnectionError(`Redis command failed: ${message}`, { cause });
}

/** Redis refuses PX values that are not positive integers; so does this tier, so a bad TTL fails in unit tests too. */
function checkTtl(ttlMs: number, command: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw replyError(`ERR invalid expire time in '${command}' command`);
  }
}

/** The creation time the stored envelope carries, read the way the Redis script reads it. */
function createdAtOf(encoded: string): number | undefined {
  const match = /"c":(\d+)/.exec(encoded);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export interface InMemoryRemoteTierOptions {
  /** Where expiry time comes from; share the `FakeClock` the caches use. @default Date.now */
  readonly clock?: Clock;
}

/**
 * A `RemoteTier` over a Map, with Redis' semantics where the cache can observe them: PX expiry against the clock
 * (a key set with PX 100 at t is gone at t + 100), `NX` locks, compare-and-delete release, the late-writer guard of
 * `setLoaded`, literal prefix deletes, and pub/sub delivered asynchronously. Several caches given one instance share
 * it the way processes share a Redis, with no I/O, so unit tests of multi-instance behaviour stay fast and exact.
 */
export class InMemoryRemoteTier implements RemoteTier {
  readonly #clock: Clock;
  readonly #data = new Map<string, Stored>();
  readonly #channels = new Map<string, Set<(message: string) => void>>();
  #closed = false;

  constructor(options: InMemoryRemoteTierOptions = {}) {
    const clock: unknown = options.clock ?? systemClock;
    if (typeof clock !== 'object' || clock === null || typeof (clock as Partial<Clock>).now !== 'function') {
      throw new ConfigurationError(
        `Expected \`clock\` to be an object with a now() method, got ${describeValue(clock)}`,
      );
    }
    this.#clock = clock as Clock;
  }

  get available(): boolean {
    return !this.#closed;
  }

  async get(key: string): Promise<string | undefined> {
    this.#open();
    return this.#read(key, this.#clock.now())?.value;
  }

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    this.#open();
    const now = this.#clock.now();
    return keys.map((key) => this.#read(key, now)?.value);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#open();
    checkTtl(ttlMs, 'set');
    this.#data.set(key, { value, expiresAt: this.#clock.now() + ttlMs });
  }

  async setMany(writes: readonly RemoteWrite[]): Promise<void> {
    this.#open();
    // Checked first, so a bad write leaves none of the batch behind (a failed pipeline would report the same).
    for (const write of writes) checkTtl(write.ttlMs, 'set');
    const now = this.#clock.now();
    for (const write of writes) this.#data.set(write.key, { value: write.value, expiresAt: now + write.ttlMs });
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    this.#open();
    const now = this.#clock.now();
    let existed = 0;
    for (const key of keys) {
      if (this.#read(key, now) !== undefined) existed++;
      this.#data.delete(key);
    }
    return existed;
  }

  async deleteByPrefix(prefix: string): Promise<number> {
    this.#open();
    const now = this.#clock.now();
    let removed = 0;
    for (const [key, stored] of this.#data) {
      if (!key.startsWith(prefix)) continue;
      if (now < stored.expiresAt) removed++;
      this.#data.delete(key);
    }
    return removed;
  }

  async acquireLock(lockKey: string, token: string, ttlMs: number): Promise<boolean> {
    this.#open();
    checkTtl(ttlMs, 'set');
    const now = this.#clock.now();
    if (this.#read(lockKey, now) !== undefined) return false;
    this.#data.set(lockKey, { value: token, expiresAt: now + ttlMs });
    return true;
  }

  async extendLock(lockKey: string, token: string, ttlMs: number): Promise<boolean> {
    this.#open();
    checkTtl(ttlMs, 'pexpire');
    const now = this.#clock.now();
    if (this.#read(lockKey, now)?.value !== token) return false;
    this.#data.set(lockKey, { value: token, expiresAt: now + ttlMs });
    return true;
  }

  async releaseLock(lockKey: string, token: string): Promise<void> {
    this.#open();
    if (this.#read(lockKey, this.#clock.now())?.value === token) this.#data.delete(lockKey);
  }

  async setLoaded(write: LoadedWrite): Promise<boolean> {
    this.#open();
    checkTtl(write.ttlMs, 'set');
    const now = this.#clock.now();
    const locked = write.token !== '';
    if (locked && this.#read(write.lockKey, now)?.value !== write.token) return false;
    const current = this.#read(write.key, now);
    const created = current === undefined ? undefined : createdAtOf(current.value);
    if (created !== undefined && created > write.createdAt) {
      if (locked) this.#data.delete(write.lockKey);
      return false;
    }
    this.#data.set(write.key, { value: write.value, expiresAt: now + write.ttlMs });
    if (locked) this.#data.delete(write.lockKey);
    if (write.channel !== '') this.publish(write.channel, write.key);
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#channels.clear();
  }

  // ── for tests: what Redis would let you inspect ────────────────────────────────────────────────────────────

  /** Like PTTL: ms until `key` expires, or -2 when it does not exist. */
  pttl(key: string): number {
    const now = this.#clock.now();
    const stored = this.#read(key, now);
    return stored === undefined ? -2 : stored.expiresAt - now;
  }

  /** The live keys, in insertion order. Expired ones are dropped on the way. */
  keys(): string[] {
    const now = this.#clock.now();
    const live: string[] = [];
    for (const key of [...this.#data.keys()]) if (this.#read(key, now) !== undefined) live.push(key);
    return live;
  }

  get size(): number {
    return this.keys().length;
  }

  /** Delivers `message` to the channel's subscribers on a later microtask, as a Redis subscriber would get it. */
  publish(channel: string, message: string): number {
    const listeners = this.#channels.get(channel);
    if (listeners === undefined) return 0;
    const targets = [...listeners];
    queueMicrotask(() => {
      for (const listener of targets) {
        // A throwing subscriber must not become an uncaught exception in someone else's test.
        try {
          listener(message);
        } catch (error) {
          process.emitWarning(`tiercache/testing: a subscriber of '${channel}' threw: ${String(error)}`);
        }
      }
    });
    return targets.length;
  }

  subscribe(channel: string, listener: (message: string) => void): Disposer {
    let listeners = this.#channels.get(channel);
    if (listeners === undefined) this.#channels.set(channel, (listeners = new Set()));
    const set = listeners;
    const entry = (message: string): void => listener(message);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.#channels.get(channel) === set) this.#channels.delete(channel);
    };
  }

  #read(key: string, now: number): Stored | undefined {
    const stored = this.#data.get(key);
    if (stored === undefined) return undefined;
    if (now >= stored.expiresAt) {
      this.#data.delete(key);
      return undefined;
    }
    return stored;
  }

  #open(): void {
    // The message ioredis gives for a command on a closed connection.
    if (this.#closed) throw new ConnectionError('Redis command failed: Connection is closed.');
  }
}
