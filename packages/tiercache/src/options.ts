import { parse as parseDuration } from '@lukeed/ms';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { ConfigurationError, describeValue } from './errors.js';
import type { Clock, Duration } from './types.js';

/** Bounds of the in-process tier (L1). Both bounds apply; an unbounded L1 is refused. */
export interface MemoryOptions {
  /**
   * Most entries kept in memory.
   * @default 10_000
   */
  readonly maxEntries?: number;
  /**
   * Most bytes kept in memory, counted as the length of each encoded entry.
   * @default 67_108_864 (64 MiB)
   */
  readonly maxBytes?: number;
  /**
   * Longest time an entry stays in memory, whatever its TTL: the bound on how stale another instance's copy can get
   * when an invalidation message is lost.
   * @default '1h'
   */
  readonly maxTtl?: Duration;
}

export interface TimeoutOptions {
  /**
   * Longest wait for one Redis round trip. Past it the command fails with `CacheTimeoutError` and reads fall back.
   * @default 100 (ms)
   */
  readonly redisMs?: Duration;
}

export interface CacheOptions {
  /**
   * Every Redis key lives under it. A prefix that does not end in `:` gets one, so `app:user` never overlaps
   * `app:users`.
   * @default 'tiercache:'
   */
  readonly prefix?: string;
  /**
   * Redis: a URL (`redis://127.0.0.1:6379`), ioredis options, or an existing ioredis `Redis`/`Cluster` (which the
   * cache then does not close). Omitted: memory only.
   */
  readonly redis?: string | RedisOptions | Redis | Cluster;
  /** The in-process tier; `false` turns it off. */
  readonly memory?: MemoryOptions | false;
  /**
   * How long an entry is fresh.
   * @default '5m'
   */
  readonly ttl?: Duration;
  /**
   * How long after its TTL an entry is still kept as a stale copy (Redis keeps it for `ttl + grace`).
   * @default 0
   */
  readonly grace?: Duration;
  readonly timeouts?: TimeoutOptions;
  /**
   * Largest encoded entry accepted, in bytes. Larger writes are refused; larger stored entries read as a miss.
   * @default 1_048_576 (1 MiB)
   */
  readonly maxValueBytes?: number;
  /**
   * Longest key, in characters (before the prefix).
   * @default 1024
   */
  readonly maxKeyLength?: number;
  /**
   * What a failed Redis write (`set`, `delete`, `mset`, `clear`) does: `'report'` counts it and emits `error` (L1 is
   * still updated); `'throw'` also rejects the call.
   * @default 'report'
   */
  readonly writeErrors?: 'report' | 'throw';
  /** Where time comes from; tests inject a fake clock. */
  readonly clock?: Clock;
}

/** Per-call options of `set`, `mset` and `getOrSet`. */
export interface SetOptions {
  readonly ttl?: Duration;
  readonly grace?: Duration;
  readonly tags?: readonly string[];
}

export const DEFAULTS = {
  prefix: 'tiercache:',
  /** ms */
  ttl: 5 * 60_000,
  /** ms */
  grace: 0,
  memory: {
    maxEntries: 10_000,
    /** bytes */
    maxBytes: 64 * 1024 * 1024,
    /** ms */
    maxTtl: 60 * 60_000,
  },
  timeouts: {
    /** ms */
    redisMs: 100,
  },
  /** bytes */
  maxValueBytes: 1024 * 1024,
  /** characters */
  maxKeyLength: 1024,
  writeErrors: 'report',
  /** Most tags on one entry. */
  maxTags: 64,
} as const;

/** setTimeout and friends overflow past 2^31-1 ms; TTLs are plain numbers here, so only sanity bounds them (10 y). */
const MAX_DURATION_MS = 10 * 365 * 24 * 60 * 60_000;

export interface ResolvedOptions {
  readonly prefix: string;
  readonly redis: CacheOptions['redis'];
  readonly memory: { readonly maxEntries: number; readonly maxBytes: number; readonly maxTtl: number } | false;
  readonly ttl: number;
  readonly grace: number;
  readonly redisTimeoutMs: number;
  readonly maxValueBytes: number;
  readonly maxKeyLength: number;
  readonly writeErrors: 'report' | 'throw';
  readonly clock: Clock | undefined;
}

/**
 * Turns a duration option into milliseconds, or throws a `ConfigurationError` naming the option.
 * `allowZero` admits 0 (grace); TTLs must be positive.
 */
export function toMs(name: string, value: unknown, { allowZero = false } = {}): number {
  const what = allowZero ? 'a non-negative duration' : 'a positive duration';
  let ms: number | undefined;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*[a-z]*\s*$/i.test(value)) ms = parseDuration(value.trim());
  // Round before the checks: 0.4 would pass as positive and then become a TTL of 0.
  if (ms !== undefined) ms = Math.round(ms);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero) || ms > MAX_DURATION_MS) {
    throw new ConfigurationError(
      `Expected \`${name}\` to be ${what} (milliseconds or a string like '250ms', '5m', '1h'), got ${describeValue(value)}`,
    );
  }
  return ms;
}

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigurationError(`Expected \`${name}\` to be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigurationError(`Expected \`${name}\` to be an object, got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

function rejectUnknown(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ConfigurationError(
        `Unknown option \`${name ? `${name}.` : ''}${key}\`; expected one of ${known.map((k) => `\`${k}\``).join(', ')}`,
      );
    }
  }
}

const TOP_LEVEL = [
  'prefix',
  'redis',
  'memory',
  'ttl',
  'grace',
  'timeouts',
  'maxValueBytes',
  'maxKeyLength',
  'writeErrors',
  'clock',
] as const;

/** Validates `createCache` options and fills in DEFAULTS. Throws `ConfigurationError` with the first problem. */
export function validateOptions(input: unknown = {}): ResolvedOptions {
  const options = plainObject('options', input);
  rejectUnknown('', options, TOP_LEVEL);

  let prefix: string = DEFAULTS.prefix;
  if (options['prefix'] !== undefined) {
    const raw = options['prefix'];
    if (typeof raw !== 'string' || raw.length === 0 || raw.length > 256) {
      throw new ConfigurationError(
        `Expected \`prefix\` to be a non-empty string of at most 256 characters, got ${describeValue(raw)}`,
      );
    }
    prefix = raw.endsWith(':') ? raw : `${raw}:`;
  }

  let memory: ResolvedOptions['memory'] = { ...DEFAULTS.memory };
  if (options['memory'] === false) memory = false;
  else if (options['memory'] !== undefined) {
    const m = plainObject('memory', options['memory']);
    rejectUnknown('memory', m, ['maxEntries', 'maxBytes', 'maxTtl']);
    memory = {
      maxEntries:
        m['maxEntries'] === undefined
          ? DEFAULTS.memory.maxEntries
          : positiveInteger('memory.maxEntries', m['maxEntries']),
      maxBytes:
        m['maxBytes'] === undefined ? DEFAULTS.memory.maxBytes : positiveInteger('memory.maxBytes', m['maxBytes']),
      maxTtl: m['maxTtl'] === undefined ? DEFAULTS.memory.maxTtl : toMs('memory.maxTtl', m['maxTtl']),
    };
  }

  let redisTimeoutMs: number = DEFAULTS.timeouts.redisMs;
  if (options['timeouts'] !== undefined) {
    const t = plainObject('timeouts', options['timeouts']);
    rejectUnknown('timeouts', t, ['redisMs']);
    if (t['redisMs'] !== undefined) redisTimeoutMs = toMs('timeouts.redisMs', t['redisMs']);
  }

  const redis = options['redis'];
  if (redis !== undefined && typeof redis !== 'string' && (typeof redis !== 'object' || redis === null)) {
    throw new ConfigurationError(
      `Expected \`redis\` to be a URL, ioredis options or an ioredis client, got ${describeValue(redis)}`,
    );
  }
  if (typeof redis === 'string' && !/^rediss?:\/\//.test(redis)) {
    throw new ConfigurationError(`Expected \`redis\` to be a redis:// or rediss:// URL, got ${describeValue(redis)}`);
  }

  const writeErrors = options['writeErrors'] ?? DEFAULTS.writeErrors;
  if (writeErrors !== 'report' && writeErrors !== 'throw') {
    throw new ConfigurationError(
      `Expected \`writeErrors\` to be 'report' or 'throw', got ${describeValue(writeErrors)}`,
    );
  }

  const clock = options['clock'];
  if (
    clock !== undefined &&
    (typeof clock !== 'object' || clock === null || typeof (clock as Clock).now !== 'function')
  ) {
    throw new ConfigurationError(`Expected \`clock\` to be an object with a now() method, got ${describeValue(clock)}`);
  }

  return {
    prefix,
    redis: redis as CacheOptions['redis'],
    memory,
    ttl: options['ttl'] === undefined ? DEFAULTS.ttl : toMs('ttl', options['ttl']),
    grace: options['grace'] === undefined ? DEFAULTS.grace : toMs('grace', options['grace'], { allowZero: true }),
    redisTimeoutMs,
    maxValueBytes:
      options['maxValueBytes'] === undefined
        ? DEFAULTS.maxValueBytes
        : positiveInteger('maxValueBytes', options['maxValueBytes']),
    maxKeyLength:
      options['maxKeyLength'] === undefined
        ? DEFAULTS.maxKeyLength
        : positiveInteger('maxKeyLength', options['maxKeyLength']),
    writeErrors,
    clock: clock as Clock | undefined,
  };
}

export interface ResolvedSetOptions {
  readonly ttl: number;
  readonly grace: number;
  readonly tags: readonly string[];
}

const NO_TAGS: readonly string[] = Object.freeze([]);

/** Per-call options over the cache's defaults. Called on every write, so it returns early for the common case. */
export function resolveSetOptions(defaults: ResolvedOptions, options: SetOptions | undefined): ResolvedSetOptions {
  if (options === undefined) return { ttl: defaults.ttl, grace: defaults.grace, tags: NO_TAGS };
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`Expected the options argument to be an object, got ${describeValue(options)}`);
  }
  const ttl = options.ttl === undefined ? defaults.ttl : toMs('ttl', options.ttl);
  const grace = options.grace === undefined ? defaults.grace : toMs('grace', options.grace, { allowZero: true });
  let tags = NO_TAGS;
  if (options.tags !== undefined) {
    const raw: unknown = options.tags;
    if (
      !Array.isArray(raw) ||
      raw.length > DEFAULTS.maxTags ||
      !raw.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 256)
    ) {
      throw new ConfigurationError(
        `Expected \`tags\` to be an array of at most ${DEFAULTS.maxTags} non-empty strings (≤ 256 characters), got ${describeValue(raw)}`,
      );
    }
    tags = raw as string[];
  }
  return { ttl, grace, tags };
}
