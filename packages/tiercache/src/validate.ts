/**
 * The checks every option goes through, each throwing a `ConfigurationError` that names the option, in one shape:
 * ``Expected `ttl` to be a positive duration …, got `-5` (number)``. Shared by createCache, the per-call options, the
 * breaker, the alert gate, the webhook notifier, the evict endpoint and client, and the write strategies.
 */
import { parse as parseMs } from '@lukeed/ms';
import { ConfigurationError, describeValue } from './errors.js';
import type { Duration } from './types.js';

/** setTimeout and friends overflow past 2^31-1 ms; TTLs are plain numbers here, so only sanity bounds them (10 y). */
const MAX_DURATION_MS = 10 * 365 * 24 * 60 * 60_000;

/**
 * Turns a duration option into milliseconds, or throws a `ConfigurationError` naming the option.
 * `allowZero` admits 0 (grace); TTLs must be positive.
 */
export function toMs(name: string, value: unknown, { allowZero = false } = {}): number {
  const what = allowZero ? 'a non-negative duration' : 'a positive duration';
  let ms: number | undefined;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*[a-z]*\s*$/i.test(value)) ms = parseMs(value.trim());
  // Round before the checks: 0.4 would pass as positive and then become a TTL of 0.
  if (ms !== undefined) ms = Math.round(ms);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero) || ms > MAX_DURATION_MS) {
    throw new ConfigurationError(
      `Expected \`${name}\` to be ${what} (milliseconds or a string like '250ms', '5m', '1h'), got ${describeValue(value)}`,
    );
  }
  return ms;
}

/**
 * The library's duration grammar for applications that read durations of their own (an environment variable, say):
 * milliseconds as a number, or a string like `'250ms'`, `'30s'`, `'5m'`, `'1h'`, `'1.5h'`, `'30d'`. Returns whole
 * milliseconds; throws a `ConfigurationError` naming `name` for anything else (and for 0 unless `allowZero`).
 */
export function parseDuration(
  value: Duration,
  { name = 'duration', allowZero = false }: { readonly name?: string; readonly allowZero?: boolean } = {},
): number {
  return toMs(name, value, { allowZero });
}

/** A positive safe integer (at most `max`), or a ConfigurationError naming the option. Shared by every module's options. */
export function positiveInteger(name: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > max) {
    const bound = max === Number.MAX_SAFE_INTEGER ? '' : ` of at most ${max}`;
    throw new ConfigurationError(`Expected \`${name}\` to be a positive integer${bound}, got ${describeValue(value)}`);
  }
  return value;
}

/** A logger option: an object with a `warn(message)` method, or a ConfigurationError naming the option. */
export function warnLogger<L extends { warn(message: string): void }>(name: string, value: L): L {
  if (typeof value !== 'object' || value === null || typeof (value as { warn?: unknown }).warn !== 'function') {
    throw new ConfigurationError(
      `Expected \`${name}\` to be an object with a warn() method, got ${describeValue(value)}`,
    );
  }
  return value;
}

/**
 * An http:// or https:// URL, or a ConfigurationError that does not show it (a webhook or internal URL may carry a
 * credential).
 */
export function httpUrl(name: string, value: unknown): URL {
  let url: URL | undefined;
  try {
    url = new URL(String(value));
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigurationError(`Expected \`${name}\` to be an http:// or https:// URL`);
  }
  return url;
}

/** `what` names every accepted form, so `memory: true` is not told that only an object would do when false would too. */
export function plainObject(name: string, value: unknown, what = 'an object'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigurationError(`Expected \`${name}\` to be ${what}, got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

export function rejectUnknown(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new ConfigurationError(
        `Unknown option \`${name ? `${name}.` : ''}${key}\`; expected one of ${known.map((k) => `\`${k}\``).join(', ')}`,
      );
    }
  }
}

export function fraction(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigurationError(`Expected \`${name}\` to be a fraction from 0 to 1, got ${describeValue(value)}`);
  }
  return value;
}

export function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') {
    throw new ConfigurationError(`Expected \`${name}\` to be a boolean, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * ioredis Sentinel options (`{ sentinels, name }`), checked here so a mistake is a ConfigurationError naming the
 * option rather than ioredis' "Requires the name of master." thrown from inside the tier. Anything else is left to
 * ioredis. A client or a tier passed as `redis` has no own `sentinels` and is not looked at.
 */
export function sentinelOptions(value: object): void {
  if (!Object.hasOwn(value, 'sentinels') || typeof (value as { pipeline?: unknown }).pipeline === 'function') return;
  const { sentinels, name } = value as { sentinels?: unknown; name?: unknown };
  if (sentinels === undefined || sentinels === null) return;
  const endpoint = (item: unknown): boolean =>
    typeof item === 'object' &&
    item !== null &&
    typeof (item as { host?: unknown }).host === 'string' &&
    (item as { host: string }).host.length > 0 &&
    // ioredis' default port for a sentinel is 26379.
    ((item as { port?: unknown }).port === undefined ||
      (Number.isInteger((item as { port?: unknown }).port) &&
        (item as { port: number }).port > 0 &&
        (item as { port: number }).port < 65_536));
  if (!Array.isArray(sentinels) || sentinels.length === 0 || !sentinels.every(endpoint)) {
    const shown = Array.isArray(sentinels) ? `\`${JSON.stringify(sentinels)}\`` : describeValue(sentinels);
    throw new ConfigurationError(
      `Expected \`redis.sentinels\` to be a non-empty array of { host, port? } (port 1-65535), got ${shown}`,
    );
  }
  if (typeof name !== 'string' || name.length === 0) {
    throw new ConfigurationError(
      `Expected \`redis.name\` to be the name of the master the sentinels monitor (a non-empty string, like 'mymaster'), got ${describeValue(name)}`,
    );
  }
}
