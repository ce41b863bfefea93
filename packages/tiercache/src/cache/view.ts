import type { CacheError } from '../errors.js';
import type { CacheEvents } from '../observability/events.js';

/** Where a value came from. */
export type Source = 'memory' | 'redis' | 'origin' | 'stale';

export interface ReadResult<T> {
  readonly value: T;
  readonly source: Source;
  /** Time left until the value's logical expiry, in ms (0 or less for a stale value). */
  readonly expiresInMs: number;
}

/**
 * Which part of the key space a facade speaks for: the cache itself, or one of its namespaces. Every path takes the
 * view of the call, so namespaces share one set of parts.
 */
export interface View {
  /** The full prefix, ending in `:`. */
  readonly prefix: string;
  /** The prefix past the root prefix: '' for the cache itself, `users:` for its namespace `users`. */
  readonly relative: string;
}

/** Counts, emits and alerts a failure the cache absorbed (a Redis error, an undecodable entry, an oversize value). */
export type Reporter = (
  operation: CacheEvents['error']['operation'] | 'lock',
  key: string | undefined,
  error: CacheError,
) => void;
