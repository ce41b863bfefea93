import { fileURLToPath } from 'node:url';
import { parseDuration } from 'tiercache';
import { z } from 'zod';

/** The service's own directory, so `.data/` lands in the same place whatever the working directory. */
export const SERVICE_DIR = fileURLToPath(new URL('..', import.meta.url));

/** The key `DELETE /internal/cache` accepts when INTERNAL_KEY is unset: for a developer's own machine only. */
export const DEV_INTERNAL_KEY = 'dev-internal-key-change-me';

/**
 * `0` or `off` (do not run in-process), or a duration in tiercache's grammar (`parseDuration`): `500ms`, `30s`, `5m`,
 * `1.5h`, `1d`, or a bare number of milliseconds.
 */
const interval = z
  .string()
  .trim()
  .transform((raw, ctx) => {
    // Zero is spelled here: the library's parser reads '0' and '0s' as no duration at all.
    if (raw === 'off' || /^0+(ms|s|m|h|d)?$/.test(raw)) return 0;
    try {
      return parseDuration(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: `expected a duration like 30s, 5m, 1h (or 0 / off), got "${raw}"` });
      return z.NEVER;
    }
  });

const flag = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(|0|1|true|false|yes|no)$/, 'expected 1/0, true/false or yes/no')
  .transform((raw) => raw === '1' || raw === 'true' || raw === 'yes');

/** Empty strings count as unset, so `FOO= npm start` behaves like leaving FOO out. */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

/** `host:port,host:port` (IPv6 as `[::1]:7000`): Redis Cluster seed nodes or sentinels. */
const endpoints = z
  .string()
  .trim()
  .transform((raw, ctx) => {
    const out: { host: string; port: number }[] = [];
    for (const part of raw.split(',').map((p) => p.trim())) {
      const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(part);
      const port = Number(match?.[2]);
      if (match === null || port < 1 || port > 65_535) {
        ctx.addIssue({ code: 'custom', message: `expected host:port[,host:port…], got "${part}"` });
        return z.NEVER;
      }
      out.push({ host: (match[1] as string).replace(/^\[|\]$/g, ''), port });
    }
    return out;
  });

export const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  DATABASE_SCHEMA: optional(z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case SQL identifier')),
  PGLITE_DIR: optional(z.string().min(1)),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: optional(endpoints),
  REDIS_SENTINELS: optional(endpoints),
  REDIS_SENTINEL_MASTER: optional(z.string().min(1)),
  CACHE_PREFIX: z.string().min(1).max(200).default('tiercache-demo:'),
  CACHE_DISABLED: optional(flag),
  CACHE_MEMORY: optional(flag),
  CACHE_BATCHING: optional(flag),
  INTERNAL_KEY: optional(z.string().min(16, 'expected at least 16 characters')),
  WORKER_INTERVAL: optional(interval),
  TRENDS_INTERVAL: optional(interval),
  TRENDS_EVICT_URL: optional(z.url({ protocol: /^https?$/ })),
  VIEW_FLUSH_EVERY: z.coerce.number().int().min(1).max(1_000_000).default(16),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database:
    | { readonly kind: 'postgres'; readonly url: string; readonly schema: string | undefined }
    | { readonly kind: 'pglite'; readonly dir: string };
  readonly redisUrl: string;
  /** Where the cache's Redis is: one server (REDIS_URL), a Cluster (REDIS_CLUSTER_NODES) or behind Sentinel. */
  readonly redis:
    | { readonly kind: 'server'; readonly url: string }
    | { readonly kind: 'cluster'; readonly nodes: readonly Endpoint[] }
    | { readonly kind: 'sentinel'; readonly sentinels: readonly Endpoint[]; readonly name: string };
  /** The Redis target as logs and /stats show it (no password). */
  readonly redisTarget: string;
  readonly cachePrefix: string;
  readonly cacheDisabled: boolean;
  /** The in-process tier (CACHE_MEMORY=0 turns it off: every read goes to Redis, for the batching comparison). */
  readonly cacheMemory: boolean;
  /** Same-turn batching of Redis commands (CACHE_BATCHING=0 sends each command on its own). */
  readonly cacheBatching: boolean;
  readonly internalKey: string;
  /** True when INTERNAL_KEY was not set and the well-known development key is in use. */
  readonly internalKeyIsDefault: boolean;
  /** ms; 0 = not in-process. */
  readonly workerIntervalMs: number;
  /** ms; 0 = not in-process. */
  readonly trendsIntervalMs: number;
  readonly trendsEvictUrl: string | undefined;
  /** The product view counter writes the database once an id has this many views not yet written. */
  readonly viewFlushEvery: number;
  readonly logLevel: z.infer<typeof EnvSchema>['LOG_LEVEL'];
}

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates the environment; throws one `ConfigError` listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(`Invalid environment:\n${z.prettifyError(parsed.error)}`);
  }
  const e = parsed.data;
  const redis = redisOf(e);
  return {
    port: e.PORT,
    host: e.HOST,
    database:
      e.DATABASE_URL === undefined
        ? { kind: 'pglite', dir: e.PGLITE_DIR ?? `${SERVICE_DIR}.data/pglite` }
        : { kind: 'postgres', url: e.DATABASE_URL, schema: e.DATABASE_SCHEMA },
    redisUrl: e.REDIS_URL,
    redis,
    redisTarget: describeRedis(redis),
    cachePrefix: e.CACHE_PREFIX,
    cacheDisabled: e.CACHE_DISABLED ?? false,
    cacheMemory: e.CACHE_MEMORY ?? true,
    cacheBatching: e.CACHE_BATCHING ?? true,
    internalKey: e.INTERNAL_KEY ?? DEV_INTERNAL_KEY,
    internalKeyIsDefault: e.INTERNAL_KEY === undefined,
    workerIntervalMs: e.WORKER_INTERVAL ?? 5 * 60_000,
    trendsIntervalMs: e.TRENDS_INTERVAL ?? 10 * 60_000,
    trendsEvictUrl: e.TRENDS_EVICT_URL,
    viewFlushEvery: e.VIEW_FLUSH_EVERY,
    logLevel: e.LOG_LEVEL,
  };
}

function redisOf(e: z.infer<typeof EnvSchema>): Config['redis'] {
  if (e.REDIS_CLUSTER_NODES !== undefined && e.REDIS_SENTINELS !== undefined) {
    throw new ConfigError('Invalid environment: set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both');
  }
  if (e.REDIS_CLUSTER_NODES !== undefined) return { kind: 'cluster', nodes: e.REDIS_CLUSTER_NODES };
  if (e.REDIS_SENTINELS !== undefined) {
    if (e.REDIS_SENTINEL_MASTER === undefined) {
      throw new ConfigError('Invalid environment: REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the master group name');
    }
    return { kind: 'sentinel', sentinels: e.REDIS_SENTINELS, name: e.REDIS_SENTINEL_MASTER };
  }
  if (e.REDIS_SENTINEL_MASTER !== undefined) {
    throw new ConfigError('Invalid environment: REDIS_SENTINEL_MASTER is set without REDIS_SENTINELS');
  }
  return { kind: 'server', url: e.REDIS_URL };
}

const hostPort = (endpoint: Endpoint): string =>
  `${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;

function describeRedis(redis: Config['redis']): string {
  if (redis.kind === 'cluster') return `the Redis Cluster at ${redis.nodes.map(hostPort).join(',')}`;
  if (redis.kind === 'sentinel')
    return `master "${redis.name}" of the sentinels ${redis.sentinels.map(hostPort).join(',')}`;
  return redactUrl(redis.url);
}

/** Shows a Redis URL without its password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href.replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}
