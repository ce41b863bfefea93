/**
 * Type tests of typed keys, `cached` and the decorators (checked by `npm run typecheck`; nothing here runs).
 */
import { describe, expectTypeOf, it } from 'vitest';
import { cached, defineKey, defineKeys, typed } from '../../src/index.js';
import type { Cache, Key, KeyValue, ReadResult, TypedCache } from '../../src/index.js';
import { CacheEvict, CachePut, Cacheable } from '../../src/decorators/index.js';

interface Product {
  readonly id: number;
  readonly name: string;
}
declare const plain: Cache;
const cache: TypedCache = typed(plain);
const ProductKey = defineKey<Product>('product:{id}', {
  ttl: '1h',
  tags: (p) => [`product:${String(p['id'])}`],
  version: 2,
});
const load = async (): Promise<Product> => ({ id: 1, name: 'lamp' });

describe('defineKey', () => {
  it('makes a key typed by its value that is still a string', () => {
    expectTypeOf(ProductKey({ id: 42 })).toEqualTypeOf<Key<Product>>();
    expectTypeOf(ProductKey({ id: 42 })).toExtend<string>();
    expectTypeOf<KeyValue<Key<Product>>>().toEqualTypeOf<Product>();
  });

  it('takes declared arguments when they are given', () => {
    const ByIndex = defineKey<Product, [id: number]>('product:{0}');
    expectTypeOf(ByIndex).toBeCallableWith(1);
    // @ts-expect-error the argument is a number
    expectTypeOf(ByIndex).toBeCallableWith('1');
    // @ts-expect-error a version is a number
    defineKey<Product>('p:{id}', { version: '2' });
  });

  it('keeps each definition of a registry with its own type', () => {
    const Keys = defineKeys({ product: ProductKey, count: defineKey<number, [name: string]>('count:{0}') });
    expectTypeOf(Keys.count('x')).toEqualTypeOf<Key<number>>();
    expectTypeOf(Keys.product).toEqualTypeOf<typeof ProductKey>();
  });
});

describe('a cache read through a typed key', () => {
  it('is typed by the key', () => {
    expectTypeOf(cache.getOrSet(ProductKey({ id: 42 }), load)).toEqualTypeOf<Promise<Product>>();
    expectTypeOf(cache.get(ProductKey({ id: 42 }))).toEqualTypeOf<Promise<Product | undefined>>();
    expectTypeOf(cache.getOrSetWithMeta(ProductKey({ id: 42 }), load)).toEqualTypeOf<Promise<ReadResult<Product>>>();
    expectTypeOf(cache.getWithMeta(ProductKey({ id: 42 }))).toEqualTypeOf<Promise<ReadResult<Product> | undefined>>();
  });

  it('does not compile with a loader or value of another type', () => {
    // @ts-expect-error the loader returns a number, the key holds a Product
    void cache.getOrSet(ProductKey({ id: 42 }), () => 42);
    // @ts-expect-error a loader that may return undefined does not widen the key's type
    void cache.getOrSet(ProductKey({ id: 42 }), async () => undefined as Product | undefined);
    // @ts-expect-error a string is not a Product
    void cache.set(ProductKey({ id: 42 }), 'lamp');
    void cache.set(ProductKey({ id: 42 }), { id: 42, name: 'lamp' });
  });

  it('keeps plain string keys as they were', () => {
    expectTypeOf(cache.getOrSet('k', () => 42)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(cache.get('k')).toEqualTypeOf<Promise<unknown>>();
    expectTypeOf(cache.get<string>('k')).toEqualTypeOf<Promise<string | undefined>>();
    // @ts-expect-error a number is not a string
    void cache.getOrSet<string>('k', () => 1);
    expectTypeOf(cache.namespace('n')).toEqualTypeOf<TypedCache>();
  });
});

describe('cached', () => {
  it('keeps the function arguments and makes the result a promise', () => {
    const find = cached((id: number, _locale: string) => ({ id, name: 'x' }), { key: 'product:{0}:{1}' });
    expectTypeOf(find).toBeCallableWith(1, 'en');
    expectTypeOf(find(1, 'en')).toEqualTypeOf<Promise<{ id: number; name: string }>>();
    expectTypeOf(find.key(1, 'en')).toEqualTypeOf<string>();
    // @ts-expect-error the first argument is a number
    void find('1', 'en');
  });

  it('types the key function and the tags function by the arguments', () => {
    cached(async (id: number) => id, { key: (id) => `n:${id.toFixed(0)}`, tags: (id) => [`n:${id}`] });
    // @ts-expect-error the key function takes the function's arguments
    cached(async (id: number) => id, { key: (id: string) => id });
  });
});

describe('decorators', () => {
  it('accept async methods, and a typed key whose value the method returns', () => {
    const TypedProduct = defineKey<Product, [id: number]>('product:{0}');
    class Service {
      readonly store: Cache = plain;
      @Cacheable({ key: 'product:{0}', ttl: '5m', tags: ['products'] })
      async find(id: number): Promise<Product> {
        return { id, name: 'x' };
      }
      @Cacheable({ key: TypedProduct, cache: (self: Service) => self.store })
      async typed(id: number): Promise<Product> {
        return { id, name: 'x' };
      }
      @CacheEvict({ tags: ['products'], beforeInvocation: true })
      async clear(): Promise<void> {}
      @CachePut({ key: 'product:{id}' })
      async save(product: Product): Promise<Product> {
        return product;
      }
    }
    expectTypeOf(new Service().find(1)).toEqualTypeOf<Promise<Product>>();
  });

  it('do not compile on a synchronous method, or on one returning another type than its typed key', () => {
    const TypedProduct = defineKey<Product, [id: number]>('product:{0}');
    class Wrong {
      // @ts-expect-error the method must return a promise
      @Cacheable({ key: 'n:{0}' })
      sync(n: number): number {
        return n;
      }
      // @ts-expect-error the key holds a Product, the method returns a number
      @Cacheable({ key: TypedProduct })
      async other(n: number): Promise<number> {
        return n;
      }
    }
    expectTypeOf(Wrong).toBeConstructibleWith();
    // @ts-expect-error beforeInvocation is a boolean
    CacheEvict({ key: 'k', beforeInvocation: 'yes' });
  });
});

describe('the Cache interface itself', () => {
  it('types its keyed methods by a typed key, without typed()', () => {
    expectTypeOf(plain.getOrSet(ProductKey({ id: 1 }), load)).toEqualTypeOf<Promise<Product>>();
    expectTypeOf(plain.get(ProductKey({ id: 1 }))).toEqualTypeOf<Promise<Product | undefined>>();
    // @ts-expect-error a loader of another type does not compile against a typed key
    void plain.getOrSet(ProductKey({ id: 1 }), async () => 'not a product');
    // @ts-expect-error nor does a value of another type
    void plain.set(ProductKey({ id: 1 }), { id: 1 });
    // A plain string key is typed as before: by the loader, or unknown.
    expectTypeOf(plain.getOrSet('any', async () => 42)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(plain.get('any')).toEqualTypeOf<Promise<unknown>>();
  });
});
