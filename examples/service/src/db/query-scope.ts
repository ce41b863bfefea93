import { AsyncLocalStorage } from 'node:async_hooks';

/** The database queries made on behalf of one request (or one job run). */
export interface QueryScope {
  queries: number;
}

const storage = new AsyncLocalStorage<QueryScope>();

/**
 * Runs `fn` with a fresh counter. AsyncLocalStorage rather than a counter threaded through every call: repositories
 * and cache loaders stay unaware of requests, and a loader shared by single-flight counts once, for the caller whose
 * request actually ran it.
 */
export function withQueryScope<T>(scope: QueryScope, fn: () => T): T {
  return storage.run(scope, fn);
}

export function countQuery(): void {
  const scope = storage.getStore();
  if (scope !== undefined) scope.queries++;
}
