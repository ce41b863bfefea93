/**
 * Every error tiercache raises is a `CacheError` with a stable `code`. Match on `code` (or the guards below), never on
 * the message: messages are for people and may be reworded.
 */
export const ErrorCode = {
  Configuration: 'TIERCACHE_CONFIGURATION',
  InvalidKey: 'TIERCACHE_INVALID_KEY',
  Serialization: 'TIERCACHE_SERIALIZATION',
  Connection: 'TIERCACHE_CONNECTION',
  Timeout: 'TIERCACHE_TIMEOUT',
  LoaderTimeout: 'TIERCACHE_LOADER_TIMEOUT',
  RedisReply: 'TIERCACHE_REDIS_REPLY',
  Closed: 'TIERCACHE_CLOSED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface CacheErrorOptions {
  readonly cause?: unknown;
  readonly key?: string | undefined;
}

export class CacheError extends Error {
  readonly code: ErrorCode;
  /** The cache key the failed operation was about, when there was one (unprefixed). */
  readonly key: string | undefined;

  constructor(code: ErrorCode, message: string, options: CacheErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.key = options.key;
  }
}

/** Options passed to `createCache` (or a per-call option) are invalid. Thrown synchronously, never retried. */
export class ConfigurationError extends CacheError {
  constructor(message: string, options?: CacheErrorOptions) {
    super(ErrorCode.Configuration, message, options);
  }
}

/** A key is not a non-empty string of bounded length. */
export class InvalidKeyError extends CacheError {
  constructor(message: string, options?: CacheErrorOptions) {
    super(ErrorCode.InvalidKey, message, options);
  }
}

/** A value cannot be encoded (circular, a function, a symbol, too large) or a stored entry cannot be decoded. */
export class SerializationError extends CacheError {
  constructor(message: string, options?: CacheErrorOptions) {
    super(ErrorCode.Serialization, message, options);
  }
}

/** Redis could not be reached or refused the command. */
export class ConnectionError extends CacheError {
  constructor(message: string, options?: CacheErrorOptions) {
    super(ErrorCode.Connection, message, options);
  }
}

/** A Redis command did not answer within `timeouts.redisMs`. */
export class CacheTimeoutError extends CacheError {
  constructor(message: string, options?: CacheErrorOptions) {
    super(ErrorCode.Timeout, message, options);
  }
}

/** A loader ran past its `hardTimeout` and no stale copy could stand in. Its late result is still cached. */
export class LoaderTimeoutError extends CacheError {
  constructor(message: string, options?: CacheErrorOptions) {
    super(ErrorCode.LoaderTimeout, message, options);
  }
}

/**
 * Redis answered with an error about the command itself (WRONGTYPE, a script error, OOM): the server is up, so this
 * does not count towards the circuit breaker.
 */
export class RedisReplyError extends CacheError {
  constructor(message: string, options?: CacheErrorOptions) {
    super(ErrorCode.RedisReply, message, options);
  }
}

/** The cache was used after `close()`. */
export class CacheClosedError extends CacheError {
  constructor(message = 'The cache is closed', options?: CacheErrorOptions) {
    super(ErrorCode.Closed, message, options);
  }
}

export function isCacheError(error: unknown): error is CacheError {
  return error instanceof CacheError;
}

/** Shows a rejected value the way the option messages do: `-5` (number), `"abc"` (string). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `\`${JSON.stringify(value)}\` (string)`;
  if (value === null) return '`null`';
  if (Array.isArray(value)) return '(array)';
  if (typeof value === 'object') return '(object)';
  if (typeof value === 'function') return '(function)';
  if (typeof value === 'symbol') return '(symbol)';
  return `\`${String(value)}\` (${typeof value})`;
}
