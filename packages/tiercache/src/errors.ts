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
  CircuitOpen: 'TIERCACHE_CIRCUIT_OPEN',
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

/** The circuit breaker around Redis is open: the call was not sent. The cache treats it as a skip, never a failure. */
export class CircuitOpenError extends CacheError {
  constructor(message = 'The circuit breaker around Redis is open', options?: CacheErrorOptions) {
    super(ErrorCode.CircuitOpen, message, options);
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

/**
 * Reply errors that mean the server cannot serve this key right now, as opposed to a reply about this one command
 * (WRONGTYPE, ERR, NOSCRIPT, OOM on a write). The failover ones belong here: READONLY from a master demoted under the
 * client (Sentinel; the client reconnects to the new one), MOVED/ASK that reach the caller because ioredis gave up
 * following them or a plain client talks to a cluster node, TRYAGAIN during a slot migration.
 */
export const OUTAGE_REPLIES = /^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|BUSY|READONLY|MOVED|ASK)\b/;

/**
 * Whether a remote-tier error says "Redis is unreachable or cannot serve", the only kind that should count towards
 * opening the breaker: timeouts, connection failures and cluster-down replies do; a reply about the command itself
 * (WRONGTYPE), a serialization error or a closed cache do not. An error the tier did not type is counted, so a tier
 * that fails in an unexpected way on every call is still cut off.
 */
export function isOutageError(error: unknown): boolean {
  if (error instanceof CacheTimeoutError) return true;
  if (error instanceof ConnectionError) {
    const cause: unknown = error.cause;
    if (cause instanceof Error && cause.name === 'ReplyError') return OUTAGE_REPLIES.test(cause.message);
    return true;
  }
  return !(error instanceof CacheError);
}
