import type { Cache } from '../cache/contract.js';
import { ConfigurationError, describeValue } from '../errors.js';
import type { GetOrSetOptions } from '../options.js';
import { resolveCache } from './default-cache.js';
import { buildSpec, callOptions } from './spec.js';
import type { KeySpec, TagSpec } from './spec.js';

export interface CachedOptions<T, A extends readonly unknown[]> extends Omit<GetOrSetOptions, 'tags'> {
  /** The key: a template of the arguments (`'user:{0}'`, `'user:{id}'`), a function of them, or a typed key. */
  readonly key: KeySpec<T, A> | ((...args: A) => string);
  readonly tags?: TagSpec<A>;
  /** The cache to use; the default cache (`setDefaultCache`) when omitted, looked up at each call. */
  readonly cache?: Cache | (() => Cache);
}

/** A function whose results are cached; `key(…)` shows the key of some arguments and `evict(…)` deletes it. */
export interface CachedFunction<T, A extends readonly unknown[]> {
  (...args: A): Promise<T>;
  key(...args: A): string;
  evict(...args: A): Promise<boolean>;
}

/**
 * Wraps a function so that its results are cached under a key made from its arguments (`getOrSet`): concurrent calls
 * with one key run it once, and a failure falls back to a stale copy within grace.
 */
export function cached<T, A extends readonly unknown[]>(
  fn: (...args: A) => T | Promise<T>,
  options: CachedOptions<T, A>,
): CachedFunction<T, A> {
  if (typeof fn !== 'function') {
    throw new ConfigurationError(`Expected \`cached\` to be given a function, got ${describeValue(fn)}`);
  }
  const name = fn.name === '' ? '(anonymous)' : fn.name;
  const spec = buildSpec(options, `cached(${name})`);
  const build = spec.key;
  if (build === undefined) throw new ConfigurationError(`Expected \`key\` of cached(${name}) to be given`);
  const cacheFor = (): Cache => resolveCache(options.cache, undefined, `cached(${name})`);
  const wrapper = async (...args: A): Promise<T> =>
    cacheFor().getOrSet(build(args), () => fn(...args), callOptions(spec, options, args));
  return Object.assign(wrapper, {
    key: (...args: A) => build(args),
    evict: async (...args: A) => cacheFor().delete(build(args)),
  });
}
