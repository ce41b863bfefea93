/** The circuit breaker's options: as the user writes them, resolved, and their validation. */
import { ConfigurationError, describeValue } from '../errors.js';
import { DEFAULTS, positiveInteger, toMs } from '../options.js';
import type { Duration } from '../types.js';

/** The circuit breaker around the Redis tier. Options as the user writes them; see `validateBreakerOptions`. */
export interface BreakerOptions {
  /**
   * Failures within `windowMs` that open the breaker (at most 10 000: the window keeps one timestamp per failure).
   * @default 10
   */
  readonly threshold?: number;
  /**
   * How far back failures count. A failure at `t` counts while `now - t < windowMs`.
   * @default '10s'
   */
  readonly windowMs?: Duration;
  /**
   * How long the breaker stays open before it lets one probe through; also how long an unanswered probe is waited for.
   * @default '10s'
   */
  readonly openMs?: Duration;
  /**
   * Distinct keys the failures in the window must span, so that one broken key cannot open the breaker for all. A
   * failure without a key (a batch, a connection error) counts as a key of its own. At most `threshold`.
   * @default 3
   */
  readonly minDistinctKeys?: number;
}

export interface ResolvedBreakerOptions {
  readonly threshold: number;
  /** ms */
  readonly windowMs: number;
  /** ms */
  readonly openMs: number;
  readonly minDistinctKeys: number;
}

/** Why each default is what it is: docs/resilience.md, "Circuit breaker". */
export const BREAKER_DEFAULTS: ResolvedBreakerOptions = DEFAULTS.breaker;

/** The window keeps one timestamp per failure up to `threshold`; a larger threshold is refused, not silently capped. */
const MAX_THRESHOLD = 10_000;

const KNOWN = ['threshold', 'windowMs', 'openMs', 'minDistinctKeys'] as const;

/**
 * Validates `breaker` options and fills in BREAKER_DEFAULTS. Throws `ConfigurationError` naming the first bad option.
 * `false` (no breaker) is the caller's to handle before calling this.
 */
export function validateBreakerOptions(input: unknown = {}): ResolvedBreakerOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigurationError(`Expected \`breaker\` to be an object or false, got ${describeValue(input)}`);
  }
  const options = input as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!(KNOWN as readonly string[]).includes(key)) {
      throw new ConfigurationError(
        `Unknown option \`breaker.${key}\`; expected one of ${KNOWN.map((k) => `\`${k}\``).join(', ')}`,
      );
    }
  }
  const threshold =
    options['threshold'] === undefined
      ? BREAKER_DEFAULTS.threshold
      : positiveInteger('breaker.threshold', options['threshold'], MAX_THRESHOLD);
  const windowMs =
    options['windowMs'] === undefined ? BREAKER_DEFAULTS.windowMs : toMs('breaker.windowMs', options['windowMs']);
  const openMs = options['openMs'] === undefined ? BREAKER_DEFAULTS.openMs : toMs('breaker.openMs', options['openMs']);
  let minDistinctKeys: number;
  if (options['minDistinctKeys'] === undefined) {
    // The default must not make a small explicit threshold unreachable.
    minDistinctKeys = Math.min(BREAKER_DEFAULTS.minDistinctKeys, threshold);
  } else {
    minDistinctKeys = positiveInteger('breaker.minDistinctKeys', options['minDistinctKeys'], MAX_THRESHOLD);
    if (minDistinctKeys > threshold) {
      throw new ConfigurationError(
        `Expected \`breaker.minDistinctKeys\` to be at most \`breaker.threshold\` (${threshold}), got ${describeValue(minDistinctKeys)}`,
      );
    }
  }
  return { threshold, windowMs, openMs, minDistinctKeys };
}
