/**
 * Coherence: what a write or an invalidation anywhere does to this instance's memory tier. One object owns every
 * piece of state that decides it — the epoch, the marks of reads and loads in flight, the expected tracking echoes
 * of our own script writes, and whether tracking and the subscriber are live — so the rule "a load or read that an
 * invalidation overtook keeps its result out of memory" lives here and nowhere else.
 */
import { counted } from '../observability/channels.js';
import { performance } from 'node:perf_hooks';
import { storedCreatedAt } from '../entry.js';
import type { Entry } from '../entry.js';
import type { Counters } from '../observability/stats.js';
import type { KeyReply, MemoryTier } from '../types.js';
import { sharesTag } from './tags.js';

/** How long an expected tracking echo of our own script write is waited for. */
const ECHO_WINDOW_MS = 2_000;
const MAX_ECHOES = 1_000;

/** A load in flight, by identity; its tags let a tag invalidation supersede it. */
export interface LoadMark {
  readonly tags: readonly string[];
}

/** The reads of one key in flight, and how often the key was invalidated since the first of them started. */
interface ReadMark {
  pending: number;
  generation: number;
}

/** What a read compares when it ends; undefined without memory (nothing to keep out of it). */
export type ReadWatch = { readonly mark: ReadMark; readonly generation: number; readonly epoch: number } | undefined;

/** Tracking echoes expected for one key: how many, until when, and the last encoded entry our scripts wrote there. */
interface Echo {
  readonly count: number;
  readonly until: number;
  readonly value: string;
}

export class Coherence {
  readonly #memory: MemoryTier<Entry> | undefined;
  readonly #counters: Counters;
  /** Bumped by every invalidation wider than one key (tags, a prefix, a flush). */
  #epoch = 0;
  readonly #reads = new Map<string, ReadMark>();
  /**
   * Loads in flight by full key, each with a mark of its own. A write, delete or invalidation of the key removes the
   * mark, and a load whose mark is gone keeps its result out of both tiers (it was loaded before the change).
   */
  readonly #loads = new Map<string, LoadMark>();
  readonly #echoes = new Map<string, Echo>();
  #trackingActive = false;
  readonly #trackingWaiters = new Set<() => void>();
  /**
   * Tracking is configured (bus on, `bus.tracking`): set before it is active. Our own script writes then expect their
   * echo from the start, since the echo of a write sent just after CLIENT TRACKING arrives before its reply says so
   * (a missed expectation dropped the copy just written); an expected echo that never comes expires.
   */
  trackingWanted = false;

  /** Redis is sending this instance every foreign write under the prefix (so key messages need not be published). */
  get trackingActive(): boolean {
    return this.#trackingActive;
  }

  set trackingActive(active: boolean) {
    this.#trackingActive = active;
    if (active) for (const wake of [...this.#trackingWaiters]) wake();
  }

  /** Resolves true once tracking is active, or false after `ms` (for `ready()`). */
  whenTracking(ms: number): Promise<boolean> {
    if (this.#trackingActive) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#trackingWaiters.delete(done);
        resolve(this.#trackingActive);
      };
      const timer = setTimeout(done, Math.max(1, ms));
      this.#trackingWaiters.add(done);
    });
  }
  /** The subscriber connection is subscribed (bus messages and tracking invalidations can arrive). */
  subscriberReady = false;

  constructor(memory: MemoryTier<Entry> | undefined, counters: Counters) {
    this.#memory = memory;
    this.#counters = counters;
  }

  // ── reads and loads in flight ────────────────────────────────────────────────────────────────────────────────

  /** A read of `fullKey` from Redis starts. */
  watchRead(fullKey: string): ReadWatch {
    if (this.#memory === undefined) return undefined;
    let mark = this.#reads.get(fullKey);
    if (mark === undefined) {
      mark = { pending: 0, generation: 0 };
      this.#reads.set(fullKey, mark);
    }
    mark.pending++;
    return { mark, generation: mark.generation, epoch: this.#epoch };
  }

  /** The read ended: true when nothing invalidated the key meanwhile, so what it read may be kept in memory. */
  endRead(fullKey: string, watch: ReadWatch): boolean {
    if (watch === undefined) return true;
    const { mark } = watch;
    if (--mark.pending === 0 && this.#reads.get(fullKey) === mark) this.#reads.delete(fullKey);
    return mark.generation === watch.generation && this.#epoch === watch.epoch;
  }

  /** A load of `fullKey` starts; its result may be stored while `isCurrent` says so. */
  beginLoad(fullKey: string, tags: readonly string[]): LoadMark {
    const mark: LoadMark = { tags };
    this.#loads.set(fullKey, mark);
    return mark;
  }

  isCurrent(fullKey: string, mark: LoadMark): boolean {
    return this.#loads.get(fullKey) === mark;
  }

  endLoad(fullKey: string, mark: LoadMark): void {
    if (this.#loads.get(fullKey) === mark) this.#loads.delete(fullKey);
  }

  /** A write or delete of `fullKey` happened here: reads and loads of it in flight must not keep what they got. */
  supersede(fullKey: string): void {
    if (this.#loads.size > 0) this.#loads.delete(fullKey);
    if (this.#reads.size === 0) return;
    const mark = this.#reads.get(fullKey);
    if (mark !== undefined) mark.generation++;
  }

  // ── invalidations ────────────────────────────────────────────────────────────────────────────────────────────

  /** Drops memory copies of these keys, and keeps reads and loads of them in flight out of the tiers. */
  dropKeys(fullKeys: readonly string[]): void {
    for (const fullKey of fullKeys) {
      this.#memory?.delete(fullKey);
      this.supersede(fullKey);
    }
  }

  dropTags(prefix: string, tags: readonly string[]): void {
    this.#epoch++;
    this.#memory?.deleteWhere(prefix, (entry) => sharesTag(entry.tags, tags));
    for (const [fullKey, mark] of [...this.#loads]) {
      if (fullKey.startsWith(prefix) && sharesTag(mark.tags, tags)) this.#loads.delete(fullKey);
    }
  }

  dropPrefix(prefix: string): void {
    this.#epoch++;
    this.#memory?.deleteByPrefix(prefix);
    for (const fullKey of [...this.#loads.keys()]) if (fullKey.startsWith(prefix)) this.#loads.delete(fullKey);
  }

  /**
   * Tracking just came on for the first time. Copies kept before it may be stale (a writer whose own tracking is on
   * publishes no key messages, so a foreign write made while this instance was starting reached nobody here). Returns
   * them, with the entry each was made from, for one check against Redis; reads in flight keep nothing (the epoch).
   */
  copiesToCheck(): readonly (readonly [string, Entry])[] {
    this.#epoch++;
    return this.#memory?.list() ?? [];
  }

  /**
   * The check's answer (`current[i]` is what Redis holds at `checked[i]`'s key): a copy stays only if Redis still holds
   * the entry it was made from (a key whose cluster node did not answer is not known to, so its copy goes). Only the
   * checked copy goes: one made since, by a read or a write here, is not stale.
   */
  dropChanged(checked: readonly (readonly [string, Entry])[], current: readonly KeyReply[]): void {
    const stale = new Set<Entry>();
    checked.forEach(([key, entry], i) => {
      if (storedCreatedAt(current[i]) === entry.createdAt) return;
      stale.add(entry);
      this.supersede(key);
    });
    if (stale.size > 0) this.#memory?.deleteWhere('', (entry) => stale.has(entry));
  }

  /** Invalidations may have been missed (the subscriber was down or silent): nothing in memory can be trusted. */
  flushMemory(reset = true): void {
    if (reset) {
      this.#counters.busResets++;
      counted(this.#counters.prefix, 'busResets');
    }
    this.#epoch++;
    this.#memory?.clear();
    this.#loads.clear();
  }

  // ── tracking echoes of our own script writes ─────────────────────────────────────────────────────────────────

  /** Our own script is about to write `value` at `fullKey`: its tracking invalidation will come back to us. */
  expectEcho(fullKey: string, value: string): void {
    if (!this.#trackingActive && !this.trackingWanted) return;
    const now = performance.now();
    if (this.#echoes.size > MAX_ECHOES) {
      for (const [key, echo] of this.#echoes) if (echo.until < now) this.#echoes.delete(key);
    }
    const echo = this.#echoes.get(fullKey);
    this.#echoes.set(fullKey, { count: (echo?.count ?? 0) + 1, until: now + ECHO_WINDOW_MS, value });
  }

  cancelEcho(fullKey: string): void {
    const echo = this.#echoes.get(fullKey);
    if (echo === undefined) return;
    if (echo.count > 1) this.#echoes.set(fullKey, { count: echo.count - 1, until: echo.until, value: echo.value });
    else this.#echoes.delete(fullKey);
  }

  /**
   * Redis reported these keys written by someone. Drops the foreign ones; returns our own echoes with what we wrote,
   * for the caller to verify against Redis: BCAST tracking reports a key once per turn of Redis' event loop, naming
   * only its last writer, so another client's write in the same turn as ours arrives as the message we took for our
   * echo. The copy stays only if Redis still holds what we wrote.
   */
  onTracked(fullKeys: readonly string[], root: string): ReadonlyMap<string, string> | undefined {
    this.#counters.trackingInvalidations += fullKeys.length;
    counted(this.#counters.prefix, 'trackingInvalidations', fullKeys.length);
    const foreign: string[] = [];
    let echoed: Map<string, string> | undefined;
    const now = performance.now();
    for (const fullKey of fullKeys) {
      if (!fullKey.startsWith(root)) continue;
      const echo = this.#echoes.get(fullKey);
      if (echo === undefined) {
        foreign.push(fullKey);
        continue;
      }
      this.cancelEcho(fullKey);
      if (echo.until >= now) (echoed ??= new Map()).set(fullKey, echo.value);
      else foreign.push(fullKey);
    }
    this.dropKeys(foreign);
    return echoed;
  }
}
