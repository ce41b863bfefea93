import type { Cache } from '../cache/contract.js';
import type { Loader } from '../cache/loader-runner.js';
import type { ReadResult } from '../cache/view.js';
import type { GetOrSetOptions, SetOptions } from '../options.js';
import type { Key } from './define.js';

/**
 * The `Cache` methods that take a key, typed by it: a `Key<Product>` reads a `Product`, and a loader or value of
 * another type does not compile. A plain string key keeps today's typing (the loader's type, or `unknown`).
 * `Cache` itself has these signatures; `typed(cache)` is kept as an identity for code written before it had them.
 */
export interface TypedKeyMethods {
  get<T = unknown>(key: Key<T>): Promise<T | undefined>;
  getWithMeta<T = unknown>(key: Key<T>): Promise<ReadResult<T> | undefined>;
  set<T>(key: Key<T>, value: NoInfer<T>, options?: SetOptions): Promise<void>;
  getOrSet<T>(key: Key<T>, loader: Loader<T>, options?: GetOrSetOptions): Promise<T>;
  getOrSetWithMeta<T>(key: Key<T>, loader: Loader<T>, options?: GetOrSetOptions): Promise<ReadResult<T>>;
}

/** A `Cache` whose keyed methods follow typed keys; see `TypedKeyMethods`. */
export interface TypedCache extends Omit<Cache, keyof TypedKeyMethods | 'namespace'>, TypedKeyMethods {
  namespace(name: string): TypedCache;
}

/** The same cache, typed by its keys (no wrapper at run time: the object is returned as it is). */
export function typed(cache: Cache): TypedCache {
  return cache as TypedCache;
}
