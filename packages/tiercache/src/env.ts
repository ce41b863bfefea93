import { parse as parseDuration } from '@lukeed/ms';
import { z } from 'zod';
import { createCache } from './create-cache.js';
import type { Cache } from './cache/contract.js';
import { ConfigurationError } from './errors.js';
import { DEFAULTS } from './options.js';
import type { CacheOptions } from './options.js';

export interface EnvOptions {
  /**
   * The prefix of every variable read (`TIERCACHE_TTL`). Any other variable under it is an error, so a typo is not
   * silently ignored.
   * @default 'TIERCACHE_'
   */
  readonly prefix?: string;
  /** Options the environment cannot express (`alerts`, `clock`, a Redis client), under the variables. */
  readonly options?: CacheOptions;
}

/** setTimeout-safe and sane: the same 10-year bound as the options. */
const MAX_DURATION_MS = 10 * 365 * 24 * 60 * 60_000;
const DURATION = /^\d+(\.\d+)?\s*[a-z]*$/i;
const SWITCH = z.stringbool({
  truthy: ['on', 'true', '1', 'yes'],
  falsy: ['off', 'false', '0', 'no'],
  case: 'insensitive',
});

function duration(allowZero: boolean) {
  return z
    .string()
    .regex(DURATION)
    .transform((text) => Math.round(/^0+(\.0+)?\s*[a-z]*$/i.test(text) ? 0 : (parseDuration(text) ?? Number.NaN)))
    .pipe(
      z
        .number()
        .min(allowZero ? 0 : 1)
        .max(MAX_DURATION_MS),
    );
}
const positiveInteger = z
  .string()
  .regex(/^\d+$/)
  .transform(Number)
  .pipe(z.number().int().positive().max(Number.MAX_SAFE_INTEGER));
const fraction = z
  .string()
  .regex(/^\d+(\.\d+)?$/)
  .transform(Number)
  .pipe(z.number().min(0).max(1));

/** Mutable while it is assembled; handed to createCache as CacheOptions. */
type Draft = { -readonly [K in keyof CacheOptions]?: unknown } & {
  memory?: Record<string, unknown> | false;
  timeouts?: Record<string, unknown>;
  breaker?: Record<string, unknown> | false;
  bus?: Record<string, unknown> | false;
  lock?: Record<string, unknown> | false;
};
type Section = 'memory' | 'timeouts' | 'breaker' | 'bus' | 'lock';

interface Variable {
  /** The name after the prefix. */
  readonly name: string;
  /** What the value must be, for the message: ``Expected `TIERCACHE_TTL` to be a positive duration``. */
  readonly what: string;
  readonly schema: z.ZodType<unknown, string>;
  /** Whether the value may be shown in an error (not for a URL that can carry a password). */
  readonly secret?: boolean;
  readonly apply: (draft: Draft, value: never) => void;
  /** The default, as the README table shows it. */
  readonly default: string;
}

function sectionOf(draft: Draft, section: Section): Record<string, unknown> {
  const current = draft[section];
  if (current === false) return {}; // switched off: its settings are accepted and unused
  if (current === undefined) {
    const fresh: Record<string, unknown> = {};
    draft[section] = fresh;
    return fresh;
  }
  return current;
}

function setting(
  name: string,
  section: Section,
  option: string,
  what: string,
  schema: z.ZodType<unknown, string>,
  fallback: unknown,
): Variable {
  return {
    name,
    what,
    schema,
    default: String(fallback),
    apply: (draft, value: unknown) => {
      sectionOf(draft, section)[option] = value;
    },
  };
}

function toggle(name: string, section: Exclude<Section, 'timeouts'>, fallback: string): Variable {
  return {
    name,
    what: '`on` or `off`',
    schema: SWITCH,
    default: fallback,
    apply: (draft, on: boolean) => {
      if (!on) draft[section] = false;
      else if (draft[section] === undefined || draft[section] === false) draft[section] = {};
    },
  };
}

/** `host:port`, the host a name, an IPv4 address or a bracketed IPv6 one; the port 1-65535. */
const ENDPOINT = /^(\[[0-9a-fA-F:.]+\]|[\w.-]+):([1-9]\d{0,4})$/;

function endpoint(text: string, context: z.RefinementCtx): { host: string; port: number } {
  const [, host = '', port = ''] = ENDPOINT.exec(text) ?? [];
  if (Number(port) > 65_535) context.addIssue({ code: 'custom', message: 'port out of range' });
  return { host: host.replace(/^\[(.*)\]$/, '$1'), port: Number(port) };
}

function sentinelDraft(draft: Draft): Record<string, unknown> {
  return typeof draft.redis === 'object' && draft.redis !== null ? (draft.redis as Record<string, unknown>) : {};
}

const POSITIVE_DURATION = "a positive duration (milliseconds or a string like '250ms', '5m', '1h')";
const DURATION_OR_ZERO = "a non-negative duration (milliseconds or a string like '250ms', '5m', '1h')";
const POSITIVE_INTEGER = 'a positive integer';

/** Every variable, in the order the README lists them. Toggles come first so their sections' settings land. */
export const ENV_VARIABLES: readonly Variable[] = [
  {
    name: 'REDIS_URL',
    what: 'a redis:// or rediss:// URL',
    schema: z.string().regex(/^rediss?:\/\/\S+$/),
    secret: true,
    default: '— (memory only)',
    apply: (draft, url: string) => {
      draft.redis = url;
    },
  },
  {
    name: 'REDIS_CLUSTER_NODES',
    what: 'Redis Cluster nodes as host:port,host:port',
    schema: z.string().regex(/^\[?[^\s,[\]]+\]?:\d{1,5}(\s*,\s*\[?[^\s,[\]]+\]?:\d{1,5})*$/),
    default: '—',
    apply: (draft, nodes: string) => {
      // validateOptions parses the list (and checks each port); a node list here is a cluster tiercache owns.
      draft.redis = { cluster: nodes };
    },
  },
  {
    name: 'REDIS_SENTINELS',
    what: 'a comma-separated list of sentinels as host:port (`10.0.0.5:26379,[::1]:26380`)',
    schema: z
      .string()
      .transform((text) => text.split(',').map((item) => item.trim()))
      .pipe(z.array(z.string().regex(ENDPOINT).transform(endpoint)).min(1)),
    default: '— (no Sentinel)',
    apply: (draft, sentinels: { host: string; port: number }[]) => {
      draft.redis = { ...sentinelDraft(draft), sentinels };
    },
  },
  {
    name: 'REDIS_SENTINEL_MASTER',
    what: 'the name of the master the sentinels monitor (letters, digits, `.`, `_`, `-`)',
    schema: z.string().regex(/^[\w.-]{1,128}$/),
    default: '— (required with `REDIS_SENTINELS`)',
    apply: (draft, name: string) => {
      draft.redis = { ...sentinelDraft(draft), name };
    },
  },
  {
    name: 'PREFIX',
    what: 'a non-empty string of at most 256 characters',
    schema: z.string().min(1).max(256),
    default: DEFAULTS.prefix,
    apply: (draft, prefix: string) => {
      draft.prefix = prefix;
    },
  },
  {
    name: 'TTL',
    what: POSITIVE_DURATION,
    schema: duration(false),
    default: '5m',
    apply: (d, v: number) => void (d.ttl = v),
  },
  {
    name: 'GRACE',
    what: DURATION_OR_ZERO,
    schema: duration(true),
    default: '0',
    apply: (d, v: number) => void (d.grace = v),
  },
  setting('REDIS_TIMEOUT', 'timeouts', 'redisMs', POSITIVE_DURATION, duration(false), '100ms'),
  {
    name: 'MAX_VALUE_BYTES',
    what: POSITIVE_INTEGER,
    schema: positiveInteger,
    default: String(DEFAULTS.maxValueBytes),
    apply: (d, v: number) => void (d.maxValueBytes = v),
  },
  {
    name: 'MAX_KEY_LENGTH',
    what: POSITIVE_INTEGER,
    schema: positiveInteger,
    default: String(DEFAULTS.maxKeyLength),
    apply: (d, v: number) => void (d.maxKeyLength = v),
  },
  {
    name: 'WRITE_ERRORS',
    what: '`report` or `throw`',
    schema: z.enum(['report', 'throw']),
    default: DEFAULTS.writeErrors,
    apply: (d, v: string) => void (d.writeErrors = v),
  },
  {
    name: 'JITTER',
    what: 'a fraction from 0 to 1',
    schema: fraction,
    default: '0',
    apply: (d, v: number) => void (d.jitter = v),
  },
  toggle('MEMORY', 'memory', 'on'),
  setting('MEMORY_MAX_ENTRIES', 'memory', 'maxEntries', POSITIVE_INTEGER, positiveInteger, DEFAULTS.memory.maxEntries),
  setting('MEMORY_MAX_BYTES', 'memory', 'maxBytes', POSITIVE_INTEGER, positiveInteger, DEFAULTS.memory.maxBytes),
  setting('MEMORY_MAX_TTL', 'memory', 'maxTtl', POSITIVE_DURATION, duration(false), '1h'),
  toggle('BREAKER', 'breaker', 'on'),
  setting('BREAKER_THRESHOLD', 'breaker', 'threshold', POSITIVE_INTEGER, positiveInteger, DEFAULTS.breaker.threshold),
  setting('BREAKER_WINDOW', 'breaker', 'windowMs', POSITIVE_DURATION, duration(false), '10s'),
  setting('BREAKER_OPEN', 'breaker', 'openMs', POSITIVE_DURATION, duration(false), '10s'),
  setting(
    'BREAKER_MIN_DISTINCT_KEYS',
    'breaker',
    'minDistinctKeys',
    POSITIVE_INTEGER,
    positiveInteger,
    DEFAULTS.breaker.minDistinctKeys,
  ),
  toggle('BUS', 'bus', 'on (with Redis)'),
  setting('BUS_TRACKING', 'bus', 'tracking', '`on` or `off`', SWITCH, 'on'),
  setting('BUS_HEARTBEAT', 'bus', 'heartbeatMs', POSITIVE_DURATION, duration(false), '5s'),
  setting('BUS_REPLAY_MAX', 'bus', 'replayMax', POSITIVE_INTEGER, positiveInteger, DEFAULTS.bus.replayMax),
  toggle('LOCK', 'lock', 'on'),
  setting('LOCK_TTL', 'lock', 'ttlMs', POSITIVE_DURATION, duration(false), '10s'),
  setting('LOCK_WAIT', 'lock', 'waitMs', DURATION_OR_ZERO, duration(true), '5s'),
];

const BY_NAME = new Map(ENV_VARIABLES.map((v) => [v.name, v]));

/** Edit distance, to suggest the variable a typo meant. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length] ?? 0;
}

function unknownVariable(prefix: string, name: string): string {
  const suggestion = ENV_VARIABLES.map((v) => v.name).find((known) => distance(known, name) <= 2);
  return `Unknown variable \`${prefix}${name}\`${suggestion === undefined ? '' : `; did you mean \`${prefix}${suggestion}\`?`}`;
}

/**
 * The `createCache` options that environment variables describe (see the README's table): `TIERCACHE_REDIS_URL`,
 * `TIERCACHE_TTL=5m`, `TIERCACHE_MEMORY=off`, … An empty variable counts as unset. Throws one `ConfigurationError`
 * naming every variable that is wrong or unknown: ``Expected `TIERCACHE_TTL` to be a positive duration …, got `-5` ``.
 */
export function cacheOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  { prefix = 'TIERCACHE_', options = {} }: EnvOptions = {},
): CacheOptions {
  if (typeof prefix !== 'string' || prefix.length === 0) {
    throw new ConfigurationError('Expected `prefix` of createCacheFromEnv to be a non-empty string, like `TIERCACHE_`');
  }
  const draft: Draft = {};
  const problems: string[] = [];
  const found = Object.keys(env)
    .filter((key) => key.startsWith(prefix) && env[key] !== undefined && env[key] !== '')
    .map((key) => key.slice(prefix.length));
  for (const name of found) if (!BY_NAME.has(name)) problems.push(unknownVariable(prefix, name));
  // Table order, so that MEMORY=off comes before the memory bounds whatever the order of the environment.
  for (const variable of ENV_VARIABLES) {
    const raw = env[`${prefix}${variable.name}`];
    if (raw === undefined || raw === '') continue;
    const parsed = variable.schema.safeParse(raw.trim());
    if (!parsed.success) {
      problems.push(
        `Expected \`${prefix}${variable.name}\` to be ${variable.what}${variable.secret === true ? '' : `, got \`${raw}\``}`,
      );
      continue;
    }
    variable.apply(draft, parsed.data as never);
  }
  if (problems.length === 0) problems.push(...redisSourceProblems(env, prefix));
  if (problems.length > 0) throw new ConfigurationError(problems.join('; '));
  return merge(options, draft);
}

/** One way to reach Redis: a URL, cluster nodes, or Sentinel with both of its variables. */
function redisSourceProblems(env: Readonly<Record<string, string | undefined>>, prefix: string): string[] {
  const set = (name: string): boolean => (env[`${prefix}${name}`] ?? '') !== '';
  const [url, cluster, sentinels, master] = [
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'REDIS_SENTINELS',
    'REDIS_SENTINEL_MASTER',
  ].map(set);
  if (url && cluster) return [`Set \`${prefix}REDIS_URL\` or \`${prefix}REDIS_CLUSTER_NODES\`, not both`];
  const sentinelNames = `\`${prefix}REDIS_SENTINELS\` and \`${prefix}REDIS_SENTINEL_MASTER\``;
  for (const [other, name] of [
    [url, 'REDIS_URL'],
    [cluster, 'REDIS_CLUSTER_NODES'],
  ] as const) {
    if (other === true && (sentinels === true || master === true)) {
      return [`Set either \`${prefix}${name}\` or ${sentinelNames}, not both`];
    }
  }
  if (sentinels !== master) {
    return [
      `Sentinel needs both ${sentinelNames}; \`${prefix}${sentinels === true ? 'REDIS_SENTINEL_MASTER' : 'REDIS_SENTINELS'}\` is not set`,
    ];
  }
  return [];
}

/** The explicit options under the environment's: sections merge one level deep (`memory`, `breaker`, …). */
function merge(base: CacheOptions, draft: Draft): CacheOptions {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(draft)) {
    const under = result[key];
    // `redis` is replaced whole: a cluster node list must not be spread into a client or ioredis options passed in.
    // Sentinel's endpoints and master name are the exception: they join plain ioredis options passed in (a password).
    result[key] =
      value !== false &&
      typeof value === 'object' &&
      value !== null &&
      (key !== 'redis' || 'sentinels' in value) &&
      typeof under === 'object' &&
      under !== null &&
      Object.getPrototypeOf(under) === Object.prototype // never spread a client passed in
        ? { ...(under as Record<string, unknown>), ...(value as Record<string, unknown>) }
        : value;
  }
  return result as CacheOptions;
}

/** `createCache` configured from environment variables; see `cacheOptionsFromEnv`. */
export function createCacheFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: EnvOptions = {},
): Cache {
  return createCache(cacheOptionsFromEnv(env, options));
}
