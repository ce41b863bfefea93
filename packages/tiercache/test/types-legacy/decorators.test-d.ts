/**
 * Type tests of the decorators compiled with `experimentalDecorators` (as NestJS projects are): checked by
 * `npm run typecheck` through this folder's tsconfig. The TC39 compilation is checked in test/types/keys.test-d.ts.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { defineKey } from '../../src/index.js';
import type { Cache } from '../../src/index.js';
import { CacheEvict, CachePut, Cacheable } from '../../src/decorators/index.js';

interface Product {
  readonly id: number;
  readonly name: string;
}
declare const store: Cache;
const ProductKey = defineKey<Product, [id: number]>('product:{0}', { ttl: '1h' });

describe('decorators under experimentalDecorators', () => {
  it('accept async methods and a typed key whose value the method returns', () => {
    class Service {
      readonly cache: Cache = store;
      @Cacheable({ key: ProductKey, cache: (self: Service) => self.cache })
      async find(id: number): Promise<Product> {
        return { id, name: 'x' };
      }
      @CachePut({ key: 'product:{id}', tags: ['products'] })
      async save(product: Product): Promise<Product> {
        return product;
      }
      @CacheEvict({ key: ProductKey, tags: ['products'], beforeInvocation: true })
      async remove(_id: number): Promise<void> {}
    }
    expectTypeOf(new Service().find(1)).toEqualTypeOf<Promise<Product>>();
  });

  it('do not compile on a synchronous method or one returning another type than its typed key', () => {
    class Wrong {
      // @ts-expect-error the method must return a promise
      @Cacheable({ key: 'n:{0}' })
      sync(n: number): number {
        return n;
      }
      // @ts-expect-error the key holds a Product, the method returns a number
      @Cacheable({ key: ProductKey })
      async other(n: number): Promise<number> {
        return n;
      }
      // @ts-expect-error @CachePut stores the result: the method must return a promise
      @CachePut({ key: 'n:{0}' })
      put(n: number): number {
        return n;
      }
    }
    expectTypeOf(Wrong).toBeConstructibleWith();
  });
});
