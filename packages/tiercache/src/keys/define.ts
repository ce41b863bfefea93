import { parse as parseDuration } from '@lukeed/ms';
import type { Cache } from '../cache/contract.js';
import type { Loader } from '../cache/loader-runner.js';
import { ConfigurationError, describeValue } from '../errors.js';
import type { GetOrSetOptions } from '../options.js';
import type { Duration } from '../types.js';
import { compileTemplate, keyBuilder } from './template.js';
import type { KeyTemplate } from './template.js';

declare const valueType: unique symbol;

/**
 * A cache key that carries the type of the value stored under it. At run time it is the plain string; the type exists
 * only for the compiler, and is invariant so a loader of a wider or narrower type does not compile.
 */
export type Key<T> = string & { readonly [valueType]?: (value: T) => T };

/** The value type of a typed key (`unknown` for a plain string). */
export type KeyValue<K> = K extends { readonly [valueType]?: (value: infer T) => unknown } ? T : unknown;

/** The parameters of a named template when none are declared: an object whose properties fill the placeholders. */
export type KeyParams = { readonly [name: string]: unknown };

export interface KeyOptions<A extends readonly unknown[]> {
  /** How long a value under this key is fresh (the cache's `ttl` when omitted). */
  readonly ttl?: Duration;
  /** How long past its TTL a stale copy is kept (the cache's `grace` when omitted). */
  readonly grace?: Duration;
  /** Tags of every entry under this key, from the key's own arguments. */
  readonly tags?: readonly string[] | ((...args: A) => readonly string[]);
  /**
   * A positive integer that is part of every stored key (`product:42@v2`): bump it when the value's shape changes and
   * old entries are never read again (they expire on their own), without a flush. Version 1 adds nothing.
   * @default 1
   */
  readonly version?: number;
  /** What the key holds, for a dashboard. */
  readonly description?: string;
}

/** What a dashboard shows about one key definition. */
export interface KeyInfo {
  readonly name: string;
  /** The template (`product:{id}`) or `(function)`. */
  readonly template: string;
  readonly version: number;
  readonly ttl: Duration | undefined;
  readonly grace: Duration | undefined;
  /** The static tags, or `(function)` when tags come from the arguments. */
  readonly tags: readonly string[] | '(function)';
  readonly description: string | undefined;
}

/** A typed key: call it with the arguments to get the key; it also knows its TTL, grace and tags. */
export interface KeyDefinition<T, A extends readonly unknown[] = [params: KeyParams]> {
  (...args: A): Key<T>;
  readonly template: string;
  readonly version: number;
  /** The options every read of this key should use: `cache.getOrSet(ProductKey(p), load, ProductKey.options(p))`. */
  options(...args: A): GetOrSetOptions;
  /** `cache.getOrSet` of this key with its options. */
  getOrSet(cache: Cache, args: A, loader: Loader<T>): Promise<T>;
  /** Its description under a name (the name a registry gives it). */
  info(name?: string): KeyInfo;
}

const VERSION_SUFFIX = '@v';

/** The checks the cache applies to a duration, here at definition time so a typo fails at startup, not at a read. */
function checkDuration(name: string, value: unknown, allowZero: boolean): void {
  let ms: number | undefined;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*[a-z]*\s*$/i.test(value)) {
    ms = /^\s*0+(\.0+)?\s*[a-z]*\s*$/i.test(value) ? 0 : parseDuration(value.trim());
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0 || (Math.round(ms) === 0 && !allowZero)) {
    const what = allowZero ? 'a non-negative duration' : 'a positive duration';
    throw new ConfigurationError(
      `Expected \`${name}\` to be ${what} (milliseconds or a string like '250ms', '5m', '1h'), got ${describeValue(value)}`,
    );
  }
}

function checkVersion(version: unknown): number {
  if (version === undefined) return 1;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new ConfigurationError(`Expected \`version\` to be a positive integer, got ${describeValue(version)}`);
  }
  return version;
}

/**
 * Defines a typed key: `const ProductKey = defineKey<Product>('product:{id}', { ttl: '1h', version: 2 })`, then
 * `cache.getOrSet(ProductKey({ id: 42 }), load)` is a `Promise<Product>` and a loader of another type does not compile.
 * Declare the arguments for a tighter call: `defineKey<Product, [{ id: number }]>(…)`, `defineKey<Profile, [id: string]>('profile:{0}')`.
 * The version is a suffix of the stored key (`product:42@v2`; none for version 1): `@` is always encoded in a part,
 * so no argument can produce it.
 */
export function defineKey<T, A extends readonly unknown[] = [params: KeyParams]>(
  template: KeyTemplate<A>,
  options: KeyOptions<A> = {},
): KeyDefinition<T, A> {
  if (typeof template !== 'string' && typeof template !== 'function') {
    throw new ConfigurationError(
      `Expected \`key\` to be a template string or a function, got ${describeValue(template)}`,
    );
  }
  const version = checkVersion(options.version);
  const build = keyBuilder(template);
  const suffix = version === 1 ? '' : `${VERSION_SUFFIX}${version}`;
  const { ttl, grace, tags, description } = options;
  const source = typeof template === 'string' ? template : '(function)';
  if (ttl !== undefined) checkDuration(`ttl\` of the key \`${source}`, ttl, false);
  if (grace !== undefined) checkDuration(`grace\` of the key \`${source}`, grace, true);
  if (
    tags !== undefined &&
    typeof tags !== 'function' &&
    !(Array.isArray(tags) && tags.every((tag) => typeof tag === 'string' && tag.length > 0))
  ) {
    throw new ConfigurationError(
      `Expected \`tags\` of the key \`${source}\` to be an array of non-empty strings or a function, got ${describeValue(tags)}`,
    );
  }

  const key = ((...args: A) => `${build(...args)}${suffix}`) as KeyDefinition<T, A>;
  const optionsFor = (...args: A): GetOrSetOptions => {
    const resolved: { ttl?: Duration; grace?: Duration; tags?: readonly string[] } = {};
    if (ttl !== undefined) resolved.ttl = ttl;
    if (grace !== undefined) resolved.grace = grace;
    if (tags !== undefined) resolved.tags = typeof tags === 'function' ? tags(...args) : tags;
    return resolved;
  };
  return Object.defineProperties(key, {
    template: { value: source, enumerable: true },
    version: { value: version, enumerable: true },
    options: { value: optionsFor },
    getOrSet: {
      value: (cache: Cache, args: A, loader: Loader<T>) => cache.getOrSet(key(...args), loader, optionsFor(...args)),
    },
    info: {
      value: (name = source): KeyInfo => ({
        name,
        template: source,
        version,
        ttl,
        grace,
        tags: typeof tags === 'function' ? '(function)' : (tags ?? []),
        description,
      }),
    },
  });
}

/** Whether a value is a key made by `defineKey`. */
export function isKeyDefinition(value: unknown): value is AnyKeyDefinition {
  return typeof value === 'function' && typeof (value as { info?: unknown }).info === 'function' && 'version' in value;
}

/** What every key definition is, whatever its value and argument types (what a registry holds). */
export interface AnyKeyDefinition {
  (...args: never): string;
  readonly template: string;
  readonly version: number;
  options(...args: never): GetOrSetOptions;
  info(name?: string): KeyInfo;
}

/**
 * A registry of every key an application uses: `export const Keys = defineKeys({ product: ProductKey, … })`. It
 * refuses two definitions that would write the same keys (one template shape and version), and `listKeys(Keys)` is
 * what a dashboard shows.
 */
export function defineKeys<R extends Readonly<Record<string, AnyKeyDefinition>>>(definitions: R): Readonly<R> {
  const seen = new Map<string, string>();
  for (const [name, definition] of Object.entries(definitions)) {
    if (!isKeyDefinition(definition)) {
      throw new ConfigurationError(
        `Expected \`${name}\` to be a key made by defineKey, got ${describeValue(definition)}`,
      );
    }
    if (definition.template === '(function)') continue;
    // 'product:{id}' and 'product:{sku}' write the same keys: compare the shape with the placeholders blanked.
    compileTemplate(definition.template);
    const shape = `${definition.template.replace(/\{[^{}]*\}/g, '{}')}@v${definition.version}`;
    const other = seen.get(shape);
    if (other !== undefined) {
      throw new ConfigurationError(
        `Expected every key to be distinct, but \`${other}\` and \`${name}\` both write \`${definition.template}\` (version ${definition.version})`,
      );
    }
    seen.set(shape, name);
  }
  return Object.freeze({ ...definitions });
}

/** Every key of a registry, in definition order: name, template, version, TTL, grace, tags, description. */
export function listKeys(registry: Readonly<Record<string, AnyKeyDefinition>>): KeyInfo[] {
  return Object.entries(registry).map(([name, definition]) => definition.info(name));
}
