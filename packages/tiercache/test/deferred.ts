/**
 * A promise and the functions that settle it, so a test decides when something finishes (a loader, a Redis reply
 * that comes late or never). Node 20 has no Promise.withResolvers.
 */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
