import { isFresh } from '../entry.js';
import type { Entry, EntryCodec } from '../entry.js';
import { SerializationError } from '../errors.js';
import type { Coherence } from '../invalidation/coherence.js';
import type { Instruments } from '../observability/instruments.js';
import type { Counters } from '../observability/stats.js';
import { Lease } from '../resilience/lock.js';
import type { LeaseRemote } from '../resilience/lock.js';
import { readChannel } from '../observability/channels.js';
import { UNREACHED } from '../tiers/batcher.js';
import type { RawValue, TurnBatcher, Unreached } from '../tiers/batcher.js';
import type { Clock, MemoryTier } from '../types.js';
import type { ReadResult, Reporter, View } from './view.js';

/** What a Redis read of one key answers: the fresh entry read at `now`, or undefined for a miss. */
type Shape<R> = (entry: Entry | undefined, now: number) => R;
const asResult: Shape<ReadResult<unknown> | undefined> = (entry, now) =>
  entry === undefined ? undefined : { value: entry.value, source: 'redis', expiresInMs: entry.expiresAt - now };
const asValue: Shape<unknown> = (entry) => entry?.value;

/** A read of one key from Redis: the decoded entry (fresh or within grace) and its encoded size. */
export interface RemoteEntry {
  readonly entry: Entry;
  readonly size: number;
  /** False when the key was invalidated while it was being read: return it, but keep it out of memory. */
  readonly keep: boolean;
}

/** What Redis had for a key: an entry, nothing, or no answer (the rest of the call should not wait on it again). */
export type RemoteRead = RemoteEntry | undefined | Unreached;

export interface ReadPathOptions {
  readonly memory: MemoryTier<Entry> | undefined;
  /** undefined without Redis. */
  readonly batcher: TurnBatcher | undefined;
  readonly lockRemote: LeaseRemote | undefined;
  readonly coherence: Coherence;
  readonly codec: EntryCodec;
  readonly clock: Clock;
  /** The clock of memory hits (hit-clock.ts). */
  readonly hitClock: Clock;
  readonly counters: Counters;
  readonly report: Reporter;
  /** Keeps a copy in memory (bounded by memory.maxTtl). */
  readonly remember: (fullKey: string, entry: Entry, size: number, now: number) => void;
  /** Per-group hits and misses; undefined: not recorded. */
  readonly instruments?: Instruments | undefined;
}

/**
 * The read path: memory, then Redis through the turn batcher (MGETs of the turn's keys), decoded once. Reads never fail
 * because of Redis: no answer is a miss, counted.
 */
export class ReadPath {
  readonly #memory: MemoryTier<Entry> | undefined;
  readonly #batcher: TurnBatcher | undefined;
  readonly #lockRemote: LeaseRemote | undefined;
  readonly #coherence: Coherence;
  readonly #codec: EntryCodec;
  readonly #clock: Clock;
  readonly #hitClock: Clock;
  readonly #counters: Counters;
  readonly #report: Reporter;
  readonly remember: ReadPathOptions['remember'];
  readonly #instruments: Instruments | undefined;

  constructor(options: ReadPathOptions) {
    this.#memory = options.memory;
    this.#batcher = options.batcher;
    this.#lockRemote = options.lockRemote;
    this.#coherence = options.coherence;
    this.#codec = options.codec;
    this.#clock = options.clock;
    this.#hitClock = options.hitClock;
    this.#counters = options.counters;
    this.#report = options.report;
    this.remember = options.remember;
    this.#instruments = options.instruments?.enabled === true ? options.instruments : undefined;
  }

  /** The memory copy of `key` (fresh or not), looked up by the caller's own key string where it can be. */
  memoryEntry(view: View, key: string, now: number): Entry | undefined {
    return this.#memory?.getRelative(view.relative === '' ? key : view.relative + key, now);
  }

  /** A fresh memory hit for `key` as a read result, counted; undefined otherwise. */
  memoryHit(view: View, key: string): ReadResult<unknown> | undefined {
    if (this.#memory === undefined) return undefined;
    const now = this.#hitClock.now();
    const entry = this.memoryEntry(view, key, now);
    if (entry === undefined || !isFresh(entry, now)) return undefined;
    this.#counters.memoryHits++;
    this.memoryHitOf(view, key, entry);
    return { value: entry.value, source: 'memory', expiresInMs: entry.expiresAt - now };
  }

  /** Counts a memory hit in the entry's key group (tagged when it went into memory) and publishes it if listened to. */
  memoryHitOf(view: View, key: string, entry: Entry): void {
    const group = entry.group;
    if (group === undefined) return;
    group.memoryHits++;
    if (readChannel.hasSubscribers) this.#instruments?.publishRead(view.prefix + key, group.name, 'memory');
  }

  /** After a memory miss: Redis, counted as a hit or a miss. `keep`: false to keep the copy out of memory. */
  getSlow(key: string, fullKey: string, keep = true): Promise<ReadResult<unknown> | undefined> {
    return this.#slow(key, fullKey, asResult, keep);
  }

  /** `getSlow` for `get`, which needs the value alone: one continuation less on the hottest remote path. */
  getSlowValue(key: string, fullKey: string): Promise<unknown> {
    return this.#slow(key, fullKey, asValue);
  }

  #slow<R>(key: string, fullKey: string, shape: Shape<R>, remember = true): Promise<R> {
    const batcher = this.#batcher;
    if (batcher === undefined) {
      this.#counters.misses++;
      this.#instruments?.read(fullKey, 'miss');
      return Promise.resolve(shape(undefined, 0));
    }
    const watch = this.#coherence.watchRead(fullKey);
    // The batcher answers into the caller's own promise: no continuation of a promise of its own in between.
    return new Promise<R>((resolve, reject) => {
      batcher.readThen(fullKey, key, (raw) => {
        try {
          const keep = this.#coherence.endRead(fullKey, watch) && remember;
          const now = this.#clock.now();
          // As fromRemote(#found(…)), without the two objects between: this runs for every Redis hit of get.
          let entry = raw === UNREACHED ? undefined : this.#decode(key, raw);
          if (entry !== undefined && (typeof raw !== 'string' || !isFresh(entry, now))) entry = undefined;
          if (entry === undefined) this.#counters.misses++;
          else {
            this.#counters.redisHits++;
            if (keep) this.remember(fullKey, entry, (raw as string).length, now);
          }
          this.#instruments?.read(fullKey, entry === undefined ? 'miss' : 'redis');
          resolve(shape(entry, now));
        } catch (error) {
          reject(error as Error);
        }
      });
    });
  }

  async mget(view: View, keys: readonly string[]): Promise<unknown[]> {
    const out = new Array<unknown>(keys.length).fill(undefined);
    const missing: number[] = [];
    if (this.#memory === undefined) for (let i = 0; i < keys.length; i++) missing.push(i);
    else {
      for (let i = 0; i < keys.length; i++) {
        const hit = this.memoryHit(view, keys[i] as string);
        if (hit === undefined) missing.push(i);
        else out[i] = hit.value;
      }
    }
    if (missing.length === 0) return out;
    const counters = this.#counters;
    const batcher = this.#batcher;
    const fullKeys = missing.map((i) => view.prefix + (keys[i] as string));
    if (batcher === undefined) {
      counters.misses += missing.length;
      for (const fullKey of fullKeys) this.#instruments?.read(fullKey, 'miss');
      return out;
    }
    // Without memory there is no copy to keep out of it: no marks to take.
    const watches =
      this.#memory === undefined ? undefined : fullKeys.map((fullKey) => this.#coherence.watchRead(fullKey));
    const values = await batcher.readMany(fullKeys);
    const keep = watches?.map((watch, j) => this.#coherence.endRead(fullKeys[j] as string, watch));
    if (values === UNREACHED) {
      counters.misses += missing.length;
      for (const fullKey of fullKeys) this.#instruments?.read(fullKey, 'miss');
      return out;
    }
    const now = this.#clock.now();
    const instruments = this.#instruments;
    for (let j = 0; j < missing.length; j++) {
      const index = missing[j] as number;
      const raw = values[j];
      // UNREACHED: this key's cluster node did not answer (reported once by the batcher); a miss like any other.
      const entry = raw === UNREACHED ? undefined : this.#decode(keys[index] as string, raw);
      if (entry === undefined || typeof raw !== 'string' || !isFresh(entry, now)) {
        counters.misses++;
        instruments?.read(fullKeys[j] as string, 'miss');
        continue;
      }
      counters.redisHits++;
      instruments?.read(fullKeys[j] as string, 'redis');
      if (keep?.[j] === true) this.remember(fullKeys[j] as string, entry, raw.length, now);
      out[index] = entry.value;
    }
    return out;
  }

  /** Reads one key from Redis: the entry (fresh or within grace), undefined, or UNREACHED. Never throws. */
  async readRemote(key: string, fullKey: string): Promise<RemoteRead> {
    const batcher = this.#batcher;
    if (batcher === undefined) return undefined;
    const watch = this.#coherence.watchRead(fullKey);
    const raw = await batcher.read(fullKey, key);
    const keep = this.#coherence.endRead(fullKey, watch);
    return raw === UNREACHED ? UNREACHED : this.#found(key, raw, keep);
  }

  /**
   * A load's first step in one round trip: what Redis has, and the stampede lock when it has nothing fresh. `lease`
   * is set when this caller now holds the lock; undefined with UNREACHED, or when another process holds it.
   */
  async readOrLock(
    key: string,
    fullKey: string,
    lockKey: string,
  ): Promise<{ readonly found: RemoteRead; readonly lease: Lease | undefined }> {
    const batcher = this.#batcher;
    const lockRemote = this.#lockRemote;
    if (batcher === undefined || lockRemote === undefined) return { found: undefined, lease: undefined };
    const watch = this.#coherence.watchRead(fullKey);
    const answer = await batcher.readOrLock({ key: fullKey, lockKey }, key);
    const keep = this.#coherence.endRead(fullKey, watch);
    if (answer === UNREACHED) return { found: UNREACHED, lease: undefined };
    const lease = answer.locked ? new Lease(lockRemote, key, lockKey, answer.token) : undefined;
    return { found: this.#found(key, answer.value, keep), lease };
  }

  /** A fresh Redis hit as a read result, filling memory; undefined for a miss or a stale copy. */
  fromRemote(fullKey: string, found: RemoteRead): ReadResult<unknown> | undefined {
    if (found === undefined || found === UNREACHED) return undefined;
    const now = this.#clock.now();
    if (!isFresh(found.entry, now)) return undefined;
    if (found.keep) this.remember(fullKey, found.entry, found.size, now);
    return { value: found.entry.value, source: 'redis', expiresInMs: found.entry.expiresAt - now };
  }

  #found(key: string, raw: RawValue, keep: boolean): RemoteEntry | undefined {
    const entry = this.#decode(key, raw);
    if (entry === undefined || typeof raw !== 'string') return undefined;
    if (this.#clock.now() >= entry.graceUntil) return undefined;
    return { entry, size: raw.length, keep };
  }

  /** A corrupt, oversize or unknown-version entry is a miss, counted and reported. */
  #decode(key: string, raw: RawValue): Entry | undefined {
    const decoded = this.#codec.decode(key, raw);
    if (decoded instanceof SerializationError) {
      this.#report('decode', key, decoded);
      return undefined;
    }
    return decoded;
  }
}
