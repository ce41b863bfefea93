/**
 * Latency histograms, batch sizes and per-key-group figures: what `stats()` adds to the plain counters. Everything is
 * bounded (fixed buckets, a cap on groups) and recorded off the L1-hit path, except the group's memory-hit count,
 * which rides on the memory entry itself (one increment, no lookup).
 */
import type { Source } from '../cache/view.js';
import type { Entry, GroupTally } from '../entry.js';
import { loadChannel, readChannel } from './channels.js';
import type { LoadMessage } from './channels.js';
import { Histogram, SIZE_SHAPE } from './histogram.js';
import type { HistogramSummary } from './histogram.js';

/**
 * How the Prometheus and OpenTelemetry adapters reach a cache's histograms (their buckets are not in `stats()`):
 * a registered symbol, so an adapter loaded as another copy of the package still finds them.
 */
export const INSTRUMENTS: unique symbol = Symbol.for('tiercache.instruments');

/** The instruments behind a cache made by createCache (or one of its namespaces); undefined for anything else. */
export function instrumentsOf(cache: object): Instruments | undefined {
  const get = (cache as { [INSTRUMENTS]?: () => Instruments })[INSTRUMENTS];
  return typeof get === 'function' ? get.call(cache) : undefined;
}

/** The group extra keys fold into once `maxKeyGroups` groups exist. */
export const OTHER_GROUP = 'other';

/** One key group's figures in `stats().groups`. */
export interface KeyGroupStats {
  readonly hits: { readonly memory: number; readonly redis: number; readonly stale: number };
  readonly misses: number;
  readonly loader: { readonly calls: number; readonly errors: number; readonly latency: HistogramSummary };
}

export class KeyGroup implements GroupTally {
  memoryHits = 0;
  redisHits = 0;
  staleHits = 0;
  misses = 0;
  loaderCalls = 0;
  loaderErrors = 0;
  readonly loader = new Histogram();

  constructor(readonly name: string) {}

  stats(): KeyGroupStats {
    return {
      hits: { memory: this.memoryHits, redis: this.redisHits, stale: this.staleHits },
      misses: this.misses,
      loader: { calls: this.loaderCalls, errors: this.loaderErrors, latency: this.loader.summary() },
    };
  }
}

export interface InstrumentsOptions {
  /** false: no histograms, no groups, no channels (the comparison build of the overhead benchmark). */
  readonly enabled: boolean;
  /** The cache's root prefix (stripped before grouping). */
  readonly prefix: string;
  readonly maxGroups: number;
  /** Names the group of a key (without the root prefix); default: its first segment, up to `:`. */
  readonly keyGroup: ((key: string) => string) | undefined;
  /** Where durations come from, in ms: `performance.now`, or the injected clock (so tests measure fake time). */
  readonly now: () => number;
}

/** Latency and size histograms and the key groups of one cache (shared by its namespaces). */
export class Instruments {
  readonly enabled: boolean;
  readonly prefix: string;
  readonly now: () => number;
  /** Redis round trips (one per batch), ms. */
  readonly redis = new Histogram();
  /** Loader runs, ms. */
  readonly loader = new Histogram();
  /** Keys per read batch (MGET or GET), lock steps per "value or lock" batch, ops per write batch. */
  readonly readBatch = new Histogram(SIZE_SHAPE);
  readonly lockBatch = new Histogram(SIZE_SHAPE);
  readonly writeBatch = new Histogram(SIZE_SHAPE);
  /** The last Redis round trip, ms (health's latency). */
  lastRedisMs: number | undefined;
  readonly #groups = new Map<string, KeyGroup>();
  readonly #maxGroups: number;
  /** The keyGroup option; undefined: the first segment. */
  readonly #custom: ((key: string) => string) | undefined;
  #last: KeyGroup | undefined;
  readonly #other = new KeyGroup(OTHER_GROUP);

  constructor(options: InstrumentsOptions) {
    this.enabled = options.enabled;
    this.prefix = options.prefix;
    this.now = options.now;
    this.#maxGroups = options.maxGroups;
    this.#custom = options.keyGroup;
  }

  /** The group of a full key (root prefix included). Not for the L1-hit path: it may allocate. */
  group(fullKey: string): KeyGroup {
    const start = this.prefix.length;
    if (this.#custom === undefined) {
      // The default grouping without allocating when the key is in the group seen last (the common case).
      const last = this.#last;
      if (
        last !== undefined &&
        fullKey.startsWith(last.name, start) &&
        (fullKey.length === start + last.name.length || fullKey.charCodeAt(start + last.name.length) === 58)
      ) {
        return last;
      }
      const end = fullKey.indexOf(':', start);
      return (this.#last = this.#named(end < 0 ? fullKey.slice(start) : fullKey.slice(start, end)));
    }
    let name: string;
    try {
      name = this.#custom(fullKey.slice(start));
    } catch {
      name = OTHER_GROUP;
    }
    return this.#named(typeof name === 'string' && name !== '' ? name : OTHER_GROUP);
  }

  #named(name: string): KeyGroup {
    const known = this.#groups.get(name);
    if (known !== undefined) return known;
    if (name === OTHER_GROUP || name === '' || this.#groups.size >= this.#maxGroups) return this.#other;
    const group = new KeyGroup(name);
    this.#groups.set(name, group);
    return group;
  }

  /** Tags an entry going into memory with its group, so an L1 hit counts it with one increment. */
  tag(fullKey: string, entry: Entry): void {
    if (this.enabled) entry.group = this.group(fullKey);
  }

  /** A read answered from Redis or stale, or a miss: counted in its group and published. */
  read(fullKey: string, outcome: Exclude<Source, 'origin' | 'memory'> | 'miss'): void {
    if (!this.enabled) return;
    const group = this.group(fullKey);
    if (outcome === 'redis') group.redisHits++;
    else if (outcome === 'stale') group.staleHits++;
    else group.misses++;
    if (readChannel.hasSubscribers) this.publishRead(fullKey, group.name, outcome);
  }

  /** A memory hit of an entry tagged by `tag()`, published when someone listens (the count is the caller's). */
  publishRead(fullKey: string, group: string, outcome: Source | 'miss'): void {
    readChannel.publish({ prefix: this.prefix, key: fullKey.slice(this.prefix.length), group, outcome });
  }

  /** A loader run starts; returns what `loadEnded` needs. */
  loadStarted(fullKey: string): LoadMessage | undefined {
    if (!this.enabled) return undefined;
    const group = this.group(fullKey);
    group.loaderCalls++;
    if (!loadChannel.hasSubscribers) return undefined;
    const message: LoadMessage = {
      prefix: this.prefix,
      key: fullKey.slice(this.prefix.length),
      group: group.name,
      phase: 'start',
      durationMs: 0,
      error: undefined,
      within: undefined,
    };
    loadChannel.publish(message);
    return message;
  }

  loadEnded(fullKey: string, durationMs: number, error: unknown, message: LoadMessage | undefined): void {
    if (!this.enabled) return;
    const group = this.group(fullKey);
    this.loader.record(durationMs);
    group.loader.record(durationMs);
    if (error !== undefined) group.loaderErrors++;
    if (message !== undefined) {
      message.phase = 'end';
      message.durationMs = durationMs;
      message.error = error;
      loadChannel.publish(message);
    }
  }

  groups(): Readonly<Record<string, KeyGroupStats>> {
    const out: Record<string, KeyGroupStats> = {};
    for (const [name, group] of this.#groups) out[name] = group.stats();
    if (
      this.#other.memoryHits + this.#other.redisHits + this.#other.staleHits + this.#other.misses > 0 ||
      this.#other.loaderCalls > 0
    ) {
      out[OTHER_GROUP] = this.#other.stats();
    }
    return out;
  }
}
