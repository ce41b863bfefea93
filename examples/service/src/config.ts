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

export const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATABASE_URL: optional(z.url({ protocol: /^postgres(ql)?$/ })),
  DATABASE_SCHEMA: optional(z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case SQL identifier')),
  PGLITE_DIR: optional(z.string().min(1)),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
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
  return {
    port: e.PORT,
    host: e.HOST,
    database:
      e.DATABASE_URL === undefined
        ? { kind: 'pglite', dir: e.PGLITE_DIR ?? `${SERVICE_DIR}.data/pglite` }
        : { kind: 'postgres', url: e.DATABASE_URL, schema: e.DATABASE_SCHEMA },
    redisUrl: e.REDIS_URL,
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
