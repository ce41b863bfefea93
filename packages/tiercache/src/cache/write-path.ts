import { createEntry } from '../entry.js';
import { writeChannel } from '../observability/channels.js';
import type { Entry, EntryCodec } from '../entry.js';
import { ConfigurationError, ConnectionError, describeValue } from '../errors.js';
import type { CacheError } from '../errors.js';
import type { Bus } from '../invalidation/bus.js';
import type { Coherence, LoadMark } from '../invalidation/coherence.js';
import type { ReplayQueue } from '../invalidation/replay.js';
import { tagKeyFor } from '../invalidation/tags.js';
import type { Emitter } from '../observability/events.js';
import type { Counters } from '../observability/stats.js';
import { resolveSetOptions, resolveTierOptions } from '../call-options.js';
import type { ResolvedOptions, SetOptions, TierOptions } from '../options.js';
import type { ResolvedGetOrSetOptions } from '../call-options.js';
import { lockKeyFor } from '../resilience/lock.js';
import type { Lease } from '../resilience/lock.js';
import type { TurnBatcher } from '../tiers/batcher.js';
import type { RemoteAccessor, RemoteOutcome } from '../tiers/remote-accessor.js';
import type { BackgroundTasks } from '../tasks.js';
import type { Clock, MemoryTier, RemoteWrite, RenewReply } from '../types.js';
import type { ReadResult, Reporter, View } from './view.js';

const DONE: Promise<void> = Promise.resolve();

export interface MsetEntry<T = unknown> extends SetOptions {
  readonly key: string;
  readonly value: T;
}

interface Prepared {
  readonly entry: Entry;
  readonly write: RemoteWrite;
}

/** A loaded value on its way into both tiers. */
export interface LoadedValue {
  readonly view: View;
  readonly key: string;
  readonly fullKey: string;
  readonly value: unknown;
  readonly options: ResolvedGetOrSetOptions;
  /** When the load started: the entry is as old as that, so a write or invalidation after it is newer. */
  readonly startedAt: number;
  readonly lease: Lease | undefined;
  readonly mark: LoadMark;
  /** Redis did not answer the load's first step: write in the background, so the call costs one timeout at most. */
  readonly degraded: boolean;
}

export interface WritePathOptions {
  readonly options: ResolvedOptions;
  readonly memory: MemoryTier<Entry> | undefined;
  /** undefined without Redis (and `accessor` with it). */
  readonly batcher: TurnBatcher | undefined;
  readonly accessor: RemoteAccessor | undefined;
  readonly coherence: Coherence;
  readonly bus: Bus | undefined;
  readonly replay: ReplayQueue | undefined;
  readonly codec: EntryCodec;
  readonly clock: Clock;
  readonly counters: Counters;
  readonly events: Emitter;
  readonly tasks: BackgroundTasks;
  readonly report: Reporter;
  readonly remember: (fullKey: string, entry: Entry, size: number, now: number) => void;
  /** Where a loader that wrote a value announces it, so waiters in other processes wake. */
  readonly loadedChannel: string;
}

/**
 * The write and invalidation path: memory is updated (or dropped) at once, Redis through the turn batcher (one
 * script or pipeline for the turn's writes), then the other instances are told (tracking, or a bus message). While
 * Redis is unreachable, invalidations are queued for replay, and a write is reported, never silently dropped.
 */
export class WritePath {
  readonly #o: WritePathOptions;

  constructor(options: WritePathOptions) {
    this.#o = options;
  }
  #published(kind: 'write' | 'delete', count: number): void {
    writeChannel.publish({ prefix: this.#o.options.prefix, kind, count });
  }

  /** TTL spread by the jitter option, so keys written together do not expire together. */
  ttl(ttl: number): number {
    const jitter = this.#o.options.jitter;
    return jitter === 0 ? ttl : Math.max(1, Math.round(ttl * (1 - Math.random() * jitter)));
  }

  #tagKeys(view: View, tags: readonly string[]): readonly string[] | undefined {
    return tags.length === 0 ? undefined : tags.map((tag) => tagKeyFor(view.prefix, tag));
  }

  /** Encodes one entry for a write; throws for a value that cannot be cached. Nothing is changed yet. */
  #encode(view: View, key: string, value: unknown, options: SetOptions | undefined, now: number): Prepared {
    const resolved = resolveSetOptions(this.#o.options, options);
    const ttl = this.ttl(resolved.ttl);
    const entry = createEntry(value, now, ttl, resolved.grace, resolved.tags);
    const encoded = this.#o.codec.encodeForWrite(key, entry);
    const tagKeys = this.#tagKeys(view, resolved.tags);
    const fullKey = view.prefix + key;
    const ttlMs = ttl + resolved.grace;
    const write =
      tagKeys === undefined
        ? { key: fullKey, value: encoded, ttlMs }
        : { key: fullKey, value: encoded, ttlMs, tagKeys };
    return { entry, write };
  }

  /** Applies an encoded write here: reads and loads in flight are superseded, memory holds the new copy. */
  #apply({ entry, write }: Prepared, now: number): void {
    this.#o.coherence.supersede(write.key);
    this.#o.remember(write.key, entry, write.value.length, now);
  }

  /**
   * `afterOrigin` (write-through): the origin already has the value, so a Redis failure is not the caller's to
   * retry: this instance's memory holds the value, and the key's invalidation is queued for replay instead.
   */
  set(
    view: View,
    key: string,
    value: unknown,
    options: (SetOptions & TierOptions) | undefined,
    afterOrigin = false,
  ): Promise<void> {
    const now = this.#o.clock.now();
    const tiers = resolveTierOptions(options);
    const prepared = this.#encode(view, key, value, options, now);
    const write = prepared.write;
    this.#o.counters.writes++;
    if (writeChannel.hasSubscribers) this.#published('write', 1);
    if (tiers.skipMemory) {
      this.#o.coherence.supersede(write.key);
      this.#o.memory?.delete(write.key);
    } else this.#apply(prepared, now);
    const batcher = this.#o.batcher;
    if (batcher === undefined || tiers.skipRedis) return DONE;
    // One continuation on the batcher's answer, not an async chain: this runs for every set.
    return batcher.write({ kind: 'set', ...write }, key).then((outcome) => {
      const telling = this.#written([write.key], outcome);
      return telling === undefined
        ? this.#setOutcome(view, key, write.key, outcome, afterOrigin)
        : telling.then(() => this.#setOutcome(view, key, write.key, outcome, afterOrigin));
    });
  }

  #setOutcome(view: View, key: string, fullKey: string, outcome: RemoteOutcome<unknown>, afterOrigin: boolean): void {
    if (afterOrigin && !outcome.ok) {
      this.#o.replay?.add({ kind: 'key', prefix: view.prefix, fullKey });
      return;
    }
    this.#outcome('set', key, outcome);
  }

  /**
   * Warming: a batch of entries written like `mset`, one round trip, one bus message for the batch; but an entry
   * that cannot be encoded, or whose Redis write fails, is counted as failed instead of failing the batch.
   */
  async warmBatch(
    view: View,
    entries: readonly MsetEntry[],
    check: (key: unknown) => string,
    onError: (key: string | undefined, error: unknown) => void,
  ): Promise<{ written: number; failed: number }> {
    const now = this.#o.clock.now();
    const prepared: Prepared[] = [];
    let failed = 0;
    for (const item of entries) {
      try {
        if (typeof item !== 'object' || item === null) {
          throw new ConfigurationError(`Expected each entry to be { key, value }, got ${describeValue(item)}`);
        }
        prepared.push(this.#encode(view, check(item.key), item.value, item, now));
      } catch (error) {
        failed++;
        onError((item as Partial<MsetEntry> | null)?.key, error);
      }
    }
    this.#o.counters.writes += prepared.length;
    for (const p of prepared) this.#apply(p, now);
    const batcher = this.#o.batcher;
    if (batcher === undefined || prepared.length === 0) return { written: prepared.length, failed };
    const outcomes = await Promise.all(prepared.map((p) => batcher.write({ kind: 'set', ...p.write }, undefined)));
    const written: string[] = [];
    outcomes.forEach((outcome, i) => {
      const fullKey = (prepared[i] as Prepared).write.key;
      if (outcome.ok) written.push(fullKey);
      else this.#o.replay?.add({ kind: 'key', prefix: view.prefix, fullKey });
    });
    await this.#written(written, { ok: true, value: undefined });
    return { written: written.length, failed: failed + prepared.length - written.length };
  }

  async mset(view: View, entries: readonly MsetEntry[], check: (key: unknown) => string): Promise<void> {
    const now = this.#o.clock.now();
    // Validate and encode everything before writing anything, so a bad entry leaves no partial batch behind.
    const items = entries.map((item) => {
      if (typeof item !== 'object' || item === null) {
        throw new ConfigurationError(`Expected each mset entry to be { key, value }, got ${describeValue(item)}`);
      }
      return { key: check(item.key), item };
    });
    const prepared = items.map(({ key, item }) => this.#encode(view, key, item.value, item, now));
    if (prepared.length === 0) return;
    this.#o.counters.writes += prepared.length;
    if (writeChannel.hasSubscribers) this.#published('write', prepared.length);
    for (const p of prepared) this.#apply(p, now);
    const writes = prepared.map((p) => p.write);
    const batcher = this.#o.batcher;
    if (batcher === undefined) return;
    const outcomes = await Promise.all(writes.map((write) => batcher.write({ kind: 'set', ...write }, undefined)));
    const failed = outcomes.find((outcome) => !outcome.ok);
    await this.#written(
      writes.filter((_, i) => outcomes[i]?.ok === true).map((w) => w.key),
      failed ?? { ok: true, value: undefined },
    );
    if (failed !== undefined) this.#outcome('set', undefined, failed);
  }

  /**
   * After a write reached Redis: a pending replayed delete of the key is moot, and the others are told. Undefined when
   * there is nothing to wait for (the common case: tracking tells them).
   */
  #written(fullKeys: readonly string[], outcome: RemoteOutcome<unknown>): Promise<void> | undefined {
    if (fullKeys.length === 0) return undefined;
    const replay = this.#o.replay;
    if (replay !== undefined) for (const fullKey of fullKeys) replay.forgetKey(fullKey);
    const bus = this.#o.bus;
    return outcome.ok && bus?.mustPublishKeys === true ? bus.publishKeys(fullKeys) : undefined;
  }

  async deleteMany(view: View, keys: readonly string[]): Promise<number> {
    const { memory, coherence, counters, batcher } = this.#o;
    const fullKeys = keys.map((key) => view.prefix + key);
    const inMemory = fullKeys.map((fullKey) => {
      coherence.supersede(fullKey);
      return memory?.delete(fullKey) === true;
    });
    const count = (existed: readonly boolean[] | undefined): number =>
      inMemory.reduce((n, here, i) => (here || existed?.[i] === true ? n + 1 : n), 0);
    counters.deletes += fullKeys.length;
    if (writeChannel.hasSubscribers) this.#published('delete', fullKeys.length);
    if (fullKeys.length === 0 || batcher === undefined) return count(undefined);
    const key = keys.length === 1 ? keys[0] : undefined;
    // The lock keys go in the same round trip: a loader still holding one then knows it was invalidated and does not
    // write what it loaded before this delete.
    const outcome = await batcher.write(
      { kind: 'unlink', keys: fullKeys, alsoUnlink: fullKeys.map((fullKey) => lockKeyFor(view.prefix, fullKey)) },
      key,
    );
    if (!outcome.ok) {
      for (const fullKey of fullKeys) this.#o.replay?.add({ kind: 'key', prefix: view.prefix, fullKey });
      this.#outcome('delete', key, outcome);
      return count(undefined);
    }
    if (this.#o.bus?.mustPublishKeys === true) await this.#o.bus.publishKeys(fullKeys);
    return count(outcome.value as readonly boolean[]);
  }

  async invalidateTags(view: View, tags: readonly string[]): Promise<void> {
    const { tags: valid } = resolveSetOptions(this.#o.options, { tags });
    if (valid.length === 0) return;
    this.#o.coherence.dropTags(view.prefix, valid);
    const accessor = this.#o.accessor;
    if (accessor === undefined) return;
    const tagKeys = this.#tagKeys(view, valid) ?? [];
    const outcome = await accessor.run('delete', undefined, (tier) =>
      tier.invalidateTags(tagKeys, (member) => lockKeyFor(view.prefix, member)),
    );
    if (!outcome.ok) {
      for (const tag of valid) this.#o.replay?.add({ kind: 'tag', prefix: view.prefix, tag });
      this.#outcome('delete', undefined, outcome);
      return;
    }
    const bus = this.#o.bus;
    await bus?.publish({ kind: 'tags', from: bus.instanceId, prefix: view.prefix, tags: valid });
  }

  async clear(view: View): Promise<void> {
    this.#o.coherence.dropPrefix(view.prefix);
    const accessor = this.#o.accessor;
    if (accessor === undefined) return;
    const outcome = await accessor.run('clear', undefined, (tier) => tier.deleteByPrefix(view.prefix));
    if (!outcome.ok) {
      this.#o.replay?.add({ kind: 'clear', prefix: view.prefix });
      this.#outcome('clear', undefined, outcome);
      return;
    }
    const bus = this.#o.bus;
    await bus?.publish({ kind: 'clear', from: bus.instanceId, prefix: view.prefix });
  }

  /** Stores a loaded value in both tiers unless a newer write or an invalidation came while it loaded. */
  async storeLoaded(loaded: LoadedValue): Promise<ReadResult<unknown>> {
    const { codec, coherence, memory, clock } = this.#o;
    const { view, key, fullKey, value, options, startedAt, lease } = loaded;
    const ttl = this.ttl(options.ttl);
    const entry = createEntry(value, startedAt, ttl, options.grace, options.tags);
    const result: ReadResult<unknown> = { value, source: 'origin', expiresInMs: entry.expiresAt - clock.now() };
    // An unencodable value is a bug and is thrown; an oversize one is data: the caller gets it, uncached, reported.
    let encoded: string;
    try {
      encoded = codec.encode(key, entry);
    } catch (error) {
      await lease?.release();
      throw error;
    }
    const oversize = codec.oversize(key, encoded);
    if (oversize) {
      this.#o.report('set', key, oversize);
      await lease?.release();
      return result;
    }
    if (!coherence.isCurrent(fullKey, loaded.mark)) {
      // Written or invalidated here while loading: the caller gets what it asked for, the tiers keep the newer state.
      await lease?.release();
      return result;
    }
    const current = memory?.get(fullKey, clock.now());
    if (options.skipMemory) {
      if (current !== undefined && current.createdAt <= startedAt) memory?.delete(fullKey);
    } else if (current === undefined || current.createdAt <= startedAt) {
      this.#o.remember(fullKey, entry, encoded.length, clock.now());
    }
    const batcher = this.#o.batcher;
    if (batcher === undefined || options.skipRedis) return result;
    // The write runs as a script, and Redis' NOLOOP does not cover script writes: its tracking echo must not drop
    // the copy just stored here.
    const kept = memory !== undefined && !options.skipMemory;
    if (kept) coherence.expectEcho(fullKey, encoded);
    const tagKeys = this.#tagKeys(view, options.tags);
    const write = batcher.write(
      {
        kind: 'loaded',
        key: fullKey,
        value: encoded,
        ttlMs: ttl + options.grace,
        createdAt: startedAt,
        lockKey: lease?.lockKey ?? lockKeyFor(view.prefix, fullKey),
        // The script releases the lock with the write: the lease is handed over to it.
        token: lease?.handOver() ?? '',
        channel: this.#o.loadedChannel,
        ...(tagKeys === undefined ? {} : { tagKeys }),
      },
      key,
    );
    const settle = write.then((outcome) => {
      if (outcome.ok && outcome.value === true) return;
      coherence.cancelEcho(fullKey);
      // Not written (something newer is in Redis, or the lock was lost to an invalidation): drop this copy.
      if (outcome.ok && memory?.get(fullKey, clock.now()) === entry) memory.delete(fullKey);
    });
    // With a copy kept here, the caller is answered once Redis' verdict has kept or dropped it, so that memory agrees
    // with Redis when getOrSet resolves. Without one there is nothing to settle: the write is on the connection ahead
    // of anything the caller sends next (read-your-writes holds), and waiting for its reply would add a round trip to
    // every cold load (W4: the reply comes ~0.3 ms after the loader ends here, the server having slept meanwhile).
    if (loaded.degraded || !kept) this.#o.tasks.track(settle);
    else await settle;
    return result;
  }

  /**
   * The loader answered "unchanged": the stale copy's expiry is renewed in both tiers (TTL and grace from this load,
   * counted from its start, as a new value's would be) without writing the value to Redis, unless a newer write or
   * an invalidation came while it loaded. Where Redis has no such entry any more, the value is written in full.
   */
  async renewLoaded(loaded: LoadedValue, stale: Entry): Promise<ReadResult<unknown>> {
    const { coherence, memory, clock, accessor } = this.#o;
    const { view, key, fullKey, options, startedAt, lease } = loaded;
    const ttl = this.ttl(options.ttl);
    const expiresAt = startedAt + ttl;
    const entry: Entry = { ...stale, expiresAt, graceUntil: expiresAt + options.grace };
    const result: ReadResult<unknown> = { value: stale.value, source: 'origin', expiresInMs: expiresAt - clock.now() };
    if (!coherence.isCurrent(fullKey, loaded.mark)) {
      await lease?.release();
      return result;
    }
    if (accessor === undefined || options.skipRedis) return this.storeLoaded({ ...loaded, value: stale.value });
    const now = clock.now();
    const current = memory?.get(fullKey, now);
    // What Redis will hold once renewed (when we wrote the entry): for memory's size, and to know the echo as ours.
    const encoded = this.#o.codec.encode(key, entry);
    if (options.skipMemory) {
      if (current !== undefined && current.createdAt <= stale.createdAt) memory?.delete(fullKey);
    } else if (current === undefined || current.createdAt <= stale.createdAt) {
      this.#o.remember(fullKey, entry, encoded.length, now);
    }
    // The script's SETRANGE and PEXPIRE are script writes, which NOLOOP does not cover: their tracking echoes must not
    // drop the copy just renewed here. (An echo expected and not seen expires; a foreign value is still told apart.)
    coherence.expectEcho(fullKey, encoded);
    coherence.expectEcho(fullKey, encoded);
    const tagKeys = this.#tagKeys(view, entry.tags);
    const renewal = {
      key: fullKey,
      lockKey: lease?.lockKey ?? lockKeyFor(view.prefix, fullKey),
      // The script releases the lock with the renewal: the lease is handed over to it.
      token: lease?.handOver() ?? '',
      createdAt: stale.createdAt,
      expiresAt,
      graceUntil: entry.graceUntil,
      ttlMs: Math.max(1, entry.graceUntil - now),
      channel: this.#o.loadedChannel,
      ...(tagKeys === undefined ? {} : { tagKeys }),
    };
    const outcome = await accessor.run('set', key, (tier) =>
      tier.renewLoaded === undefined ? Promise.resolve<RenewReply>('missing') : tier.renewLoaded(renewal),
    );
    if (!(outcome.ok && outcome.value === 'renewed')) {
      coherence.cancelEcho(fullKey);
      coherence.cancelEcho(fullKey);
    }
    // No entry of that age in Redis (expired, evicted, or a tier without renewals): the value goes in full, as loaded.
    if (outcome.ok && outcome.value === 'missing') {
      return this.storeLoaded({ ...loaded, value: stale.value, lease: undefined });
    }
    // Lost to an invalidation, or something newer is there: this copy goes (kept when Redis did not answer).
    if (outcome.ok && outcome.value !== 'renewed' && memory?.get(fullKey, clock.now()) === entry) {
      memory.delete(fullKey);
    }
    return result;
  }

  /** A failed or skipped Redis write: reported already; rejects the call only when asked for. */
  #outcome(operation: 'set' | 'delete' | 'clear', key: string | undefined, outcome: RemoteOutcome<unknown>): void {
    if (outcome.ok) return;
    let error: CacheError | undefined = outcome.error;
    if (error === undefined) {
      // Skipped without trying (not connected, or the breaker is open): counted as skipped, still reported.
      error = new ConnectionError('Redis is unavailable (not connected, or the circuit breaker is open)', { key });
      this.#o.events.emit('error', { operation, key, error });
    }
    if (this.#o.options.writeErrors === 'throw') throw error;
  }
}
