import type { Cache } from '../cache/contract.js';
import { ConfigurationError, describeValue } from '../errors.js';
import type { GetOrSetOptions } from '../options.js';
import type { Duration } from '../types.js';
import { resolveCache } from './default-cache.js';
import { buildKey, buildSpec, buildTags, callOptions, isPromiseLike } from './spec.js';
import type { CacheOption, KeySpec, TagSpec } from './spec.js';

/**
 * A method decorator for async methods, usable both as a TC39 standard decorator (TypeScript ≥ 5 without
 * `experimentalDecorators`) and as a legacy one (`experimentalDecorators: true`, as NestJS projects compile). A method
 * that does not return a promise does not compile.
 */
export interface AsyncMethodDecorator<T = unknown, Self = unknown> {
  <This extends Self, F extends (this: This, ...args: never) => Promise<T>>(
    method: F,
    context: ClassMethodDecoratorContext<This>,
  ): F;
  <This extends Self, F extends (...args: never) => Promise<T>>(
    target: This,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<F>,
  ): TypedPropertyDescriptor<F>;
}

interface CommonOptions<This> {
  /** The cache to use, or a function of the instance (`(self: Service) => self.cache`); the default cache if omitted. */
  readonly cache?: CacheOption<This>;
}

export interface CacheableOptions<T = unknown, This = unknown>
  extends CommonOptions<This>, Omit<GetOrSetOptions, 'tags'> {
  /** The key: a template of the arguments (`'product:{0}'`, `'user:{id}'`), a function of them, or a typed key. */
  readonly key: KeySpec<T>;
  /** Tags of the cached entry: templates of the arguments (`['products', 'product:{0}']`) or a function of them. */
  readonly tags?: TagSpec;
}

export interface CacheEvictOptions<This = unknown> extends CommonOptions<This> {
  /** The key to delete (a template, a function of the arguments, or a typed key). */
  readonly key?: KeySpec<unknown>;
  /** Tags to invalidate (templates of the arguments, or a function of them). */
  readonly tags?: TagSpec;
  /**
   * Evict before the method runs (and whether it fails or not), instead of after it succeeds.
   * @default false
   */
  readonly beforeInvocation?: boolean;
}

export interface CachePutOptions<T = unknown, This = unknown> extends CommonOptions<This> {
  readonly key: KeySpec<T>;
  readonly ttl?: Duration;
  readonly grace?: Duration;
  readonly tags?: TagSpec;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;
type Wrap = (original: Method, name: string) => Method;

function isDecoratorContext(value: unknown): value is DecoratorContext {
  return typeof value === 'object' && value !== null && 'kind' in value;
}

function className(instance: unknown): string {
  const ctor = (instance as { constructor?: { name?: unknown } } | null | undefined)?.constructor;
  return typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : '(anonymous)';
}

/** Turns a wrapper of the method into a decorator of both kinds. */
function methodDecorator(decorator: string, wrap: Wrap): (...args: unknown[]) => unknown {
  return (value: unknown, context: unknown, descriptor?: unknown) => {
    if (isDecoratorContext(context)) {
      if (context.kind !== 'method' || typeof value !== 'function') {
        throw new ConfigurationError(`Expected @${decorator} to decorate a method, got a ${context.kind}`);
      }
      return wrap(value as Method, String(context.name));
    }
    const property = descriptor as PropertyDescriptor | undefined;
    if (property === undefined || typeof property.value !== 'function') {
      throw new ConfigurationError(
        `Expected @${decorator} to decorate a method, got ${describeValue(property?.value)}`,
      );
    }
    property.value = wrap(property.value as Method, String(context));
    return property;
  };
}

/** Calls the original method and insists on a promise: a synchronous method is a mistake worth a clear message. */
function invoke(decorator: string, original: Method, self: unknown, args: unknown[], name: string): Promise<unknown> {
  const result = original.apply(self, args);
  if (!isPromiseLike(result)) {
    throw new ConfigurationError(
      `Expected ${className(self)}.${name} decorated with @${decorator} to return a promise, got ${describeValue(result)}`,
    );
  }
  return Promise.resolve(result);
}

function label(decorator: string, self: unknown, name: string): string {
  return `@${decorator} on ${className(self)}.${name}`;
}

/**
 * Caches an async method's result under a key made from its arguments: `cache.getOrSet(key, method, { ttl, grace,
 * tags })`. Concurrent calls with one key run the method once.
 */
export function Cacheable<T = unknown, This = unknown>(
  options: CacheableOptions<T, This>,
): AsyncMethodDecorator<T, This> {
  const spec = buildSpec(options, '@Cacheable');
  const build = spec.key ?? buildKey(options.key, '@Cacheable');
  return methodDecorator(
    'Cacheable',
    (original, name) =>
      async function cacheable(this: unknown, ...args: unknown[]): Promise<unknown> {
        const cache = resolveCache(options.cache, this, label('Cacheable', this, name));
        return cache.getOrSet(
          build(args),
          () => invoke('Cacheable', original, this, args, name),
          callOptions(spec, options, args),
        );
      },
  ) as AsyncMethodDecorator<T, This>;
}

/** Deletes a key and/or invalidates tags after the method succeeds (or before it runs, with `beforeInvocation`). */
export function CacheEvict<This = unknown>(options: CacheEvictOptions<This>): AsyncMethodDecorator<unknown, This> {
  if (typeof options !== 'object' || options === null || (options.key === undefined && options.tags === undefined)) {
    throw new ConfigurationError('Expected @CacheEvict to be given a `key`, `tags` or both');
  }
  const key = options.key === undefined ? undefined : buildKey(options.key, '@CacheEvict');
  const tags = buildTags(options.tags, '@CacheEvict');
  const evict = async (cache: Cache, args: unknown[]): Promise<void> => {
    await Promise.all([key ? cache.delete(key(args)) : undefined, tags ? cache.invalidateTags(tags(args)) : undefined]);
  };
  return methodDecorator(
    'CacheEvict',
    (original, name) =>
      async function cacheEvict(this: unknown, ...args: unknown[]): Promise<unknown> {
        const cache = resolveCache(options.cache, this, label('CacheEvict', this, name));
        if (options.beforeInvocation === true) {
          await evict(cache, args);
          return invoke('CacheEvict', original, this, args, name);
        }
        const result = await invoke('CacheEvict', original, this, args, name);
        await evict(cache, args);
        return result;
      },
  ) as AsyncMethodDecorator<unknown, This>;
}

/** Always runs the method, then stores its result under the key (`cache.set`), so later reads see it. */
export function CachePut<T = unknown, This = unknown>(
  options: CachePutOptions<T, This>,
): AsyncMethodDecorator<T, This> {
  const spec = buildSpec(options, '@CachePut');
  const build = spec.key ?? buildKey(options.key, '@CachePut');
  return methodDecorator(
    'CachePut',
    (original, name) =>
      async function cachePut(this: unknown, ...args: unknown[]): Promise<unknown> {
        const cache = resolveCache(options.cache, this, label('CachePut', this, name));
        const key = build(args);
        const setOptions = callOptions(spec, options, args);
        const result = await invoke('CachePut', original, this, args, name);
        await cache.set(key, result, {
          ...(setOptions.ttl !== undefined && { ttl: setOptions.ttl }),
          ...(setOptions.grace !== undefined && { grace: setOptions.grace }),
          ...(setOptions.tags !== undefined && { tags: setOptions.tags }),
        });
        return result;
      },
  ) as AsyncMethodDecorator<T, This>;
}
