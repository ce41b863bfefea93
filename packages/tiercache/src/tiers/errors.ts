import { CacheError, CacheTimeoutError, ConnectionError, OUTAGE_REPLIES, RedisReplyError } from '../errors.js';

/** Maps what a Redis client rejected with to a typed `CacheError`, once, where the call is made. */
export function toCacheError(error: unknown, key?: string): CacheError {
  if (error instanceof CacheError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Command timed out') {
    return new CacheTimeoutError(`Redis did not answer in time`, { cause: error, key });
  }
  // A reply about the command itself (WRONGTYPE, a script error) means the server is up; replies saying it cannot
  // serve now (CLUSTERDOWN, LOADING, …) are availability failures like a refused connection.
  if (error instanceof Error && error.name === 'ReplyError' && !OUTAGE_REPLIES.test(message)) {
    return new RedisReplyError(`Redis refused the command: ${message}`, { cause: error, key });
  }
  return new ConnectionError(`Redis command failed: ${message}`, { cause: error, key });
}

/** `promise`, or a rejection with `timeoutError()` after `ms`, whichever comes first; the timer never outlives it. */
export function withTimeout<T>(promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(timeoutError()), Math.max(1, ms));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
