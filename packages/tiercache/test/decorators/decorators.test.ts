/**
 * The decorators under both compilations: vitest.config.ts runs this file twice, compiled by TypeScript with TC39
 * standard decorators (project `decorators-standard`) and with `experimentalDecorators` (project `decorators-legacy`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigurationError, createCache, defineKey } from 'tiercache';
import type { Cache } from 'tiercache';
import { CacheEvict, CachePut, Cacheable, setDefaultCache } from 'tiercache/decorators';

interface Product {
  readonly id: number;
  readonly name: string;
}

let open: Cache[] = [];
function memoryCache(): Cache {
  const cache = createCache({ memory: { maxEntries: 1_000 } });
  open.push(cache);
  return cache;
}
afterEach(async () => {
  setDefaultCache(undefined);
  await Promise.all(open.map((cache) => cache.close()));
  open = [];
});

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

class ProductService {
  readonly cache: Cache;
  calls = 0;
  names = new Map<number, string>();

  constructor(cache: Cache) {
    this.cache = cache;
  }

  @Cacheable({ key: 'product:{0}', tags: ['products', 'product:{0}'], cache: (self: ProductService) => self.cache })
  async find(id: number): Promise<Product> {
    this.calls++;
    await tick();
    return { id, name: this.names.get(id) ?? `product ${id}` };
  }

  @CacheEvict({ key: 'product:{0}', cache: (self: ProductService) => self.cache })
  async rename(id: number, name: string): Promise<void> {
    this.names.set(id, name);
  }

  @CacheEvict({ tags: ['products'], cache: (self: ProductService) => self.cache })
  async renameAll(prefix: string): Promise<void> {
    for (const id of [1, 2, 3]) this.names.set(id, `${prefix} ${id}`);
  }

  @CacheEvict({ key: 'product:{0}', cache: (self: ProductService) => self.cache })
  async failToRename(_id: number): Promise<void> {
    throw new Error('database down');
  }

  @CacheEvict({ key: 'product:{0}', beforeInvocation: true, cache: (self: ProductService) => self.cache })
  async failAfterEvicting(_id: number): Promise<void> {
    throw new Error('database down');
  }

  @CachePut({ key: 'product:{id}', cache: (self: ProductService) => self.cache })
  async save(product: Product): Promise<Product> {
    this.names.set(product.id, product.name);
    return product;
  }
}

describe(`decorators compiled as ${process.env['DECORATORS_COMPILATION']}`, () => {
  it('are compiled the way this project says', () => {
    let seen: string | undefined;
    const probe = (...args: unknown[]): void => {
      seen = args.length === 2 ? 'standard' : 'legacy';
    };
    class Probe {
      @probe
      async method(): Promise<void> {}
    }
    expect(new Probe()).toBeInstanceOf(Probe);
    expect(seen).toBe(process.env['DECORATORS_COMPILATION']);
  });

  it('serve the second call from the cache', async () => {
    const service = new ProductService(memoryCache());
    expect(await service.find(1)).toEqual({ id: 1, name: 'product 1' });
    expect(await service.find(1)).toEqual({ id: 1, name: 'product 1' });
    expect(service.calls).toBe(1);
    expect(await service.cache.get('product:1')).toEqual({ id: 1, name: 'product 1' });
  });

  it('reload after @CacheEvict deletes the key', async () => {
    const service = new ProductService(memoryCache());
    await service.find(1);
    await service.rename(1, 'lamp');
    expect(await service.find(1)).toEqual({ id: 1, name: 'lamp' });
    expect(service.calls).toBe(2);
  });

  it('invalidate every entry tagged by @Cacheable when @CacheEvict names the tag', async () => {
    const service = new ProductService(memoryCache());
    await Promise.all([service.find(1), service.find(2)]);
    await service.renameAll('new');
    expect(await service.find(1)).toEqual({ id: 1, name: 'new 1' });
    expect(await service.find(2)).toEqual({ id: 2, name: 'new 2' });
    expect(service.calls).toBe(4);
  });

  it('fill the tag templates from the arguments', async () => {
    const service = new ProductService(memoryCache());
    await Promise.all([service.find(1), service.find(2)]);
    await service.cache.invalidateTags(['product:1']);
    await Promise.all([service.find(1), service.find(2)]);
    expect(service.calls).toBe(3);
  });

  it('run the method once for 100 concurrent calls', async () => {
    const service = new ProductService(memoryCache());
    const results = await Promise.all(Array.from({ length: 100 }, () => service.find(7)));
    expect(service.calls).toBe(1);
    expect(new Set(results.map((r) => r.name))).toEqual(new Set(['product 7']));
  });

  it('keep the entry when the method fails, unless beforeInvocation', async () => {
    const service = new ProductService(memoryCache());
    await service.find(1);
    await expect(service.failToRename(1)).rejects.toThrow('database down');
    expect(await service.cache.has('product:1')).toBe(true);
    await expect(service.failAfterEvicting(1)).rejects.toThrow('database down');
    expect(await service.cache.has('product:1')).toBe(false);
  });

  it('store the result with @CachePut, so the next read does not call the method', async () => {
    const service = new ProductService(memoryCache());
    await service.save({ id: 3, name: 'chair' });
    expect(await service.find(3)).toEqual({ id: 3, name: 'chair' });
    expect(service.calls).toBe(0);
  });

  it('use the default cache when none is given, looked up at call time', async () => {
    class Clock {
      calls = 0;
      @Cacheable({ key: 'time:{zone}', ttl: '1m' })
      async now(params: { zone: string }): Promise<string> {
        this.calls++;
        return `${params.zone}:${this.calls}`;
      }
    }
    const clock = new Clock();
    await expect(clock.now({ zone: 'utc' })).rejects.toThrow(
      'No cache for @Cacheable on Clock.now: pass `cache` in its options or call setDefaultCache(cache) once at startup',
    );
    const cache = memoryCache();
    setDefaultCache(cache);
    expect(await clock.now({ zone: 'utc' })).toBe('utc:1');
    expect(await clock.now({ zone: 'utc' })).toBe('utc:1');
    expect(await cache.get('time:utc')).toBe('utc:1');
  });

  it('take the TTL and tags of a typed key', async () => {
    const ProductKey = defineKey<Product, [id: number]>('product:{0}', {
      version: 2,
      tags: (id) => [`product:${id}`],
    });
    const cache = memoryCache();
    class Catalog {
      calls = 0;
      @Cacheable({ key: ProductKey, cache })
      async find(id: number): Promise<Product> {
        this.calls++;
        return { id, name: 'typed' };
      }
    }
    const catalog = new Catalog();
    await catalog.find(5);
    expect(await cache.get(ProductKey(5))).toEqual({ id: 5, name: 'typed' });
    expect(ProductKey(5)).toBe('product:5@v2');
    await cache.invalidateTags(['product:5']);
    await catalog.find(5);
    expect(catalog.calls).toBe(2);
  });

  it('refuse a method that does not return a promise, with a message naming it', async () => {
    const cache = memoryCache();
    class Sync {
      // @ts-expect-error a synchronous method does not compile; at run time it is a clear error
      @Cacheable({ key: 'sync:{0}', cache })
      compute(n: number): number {
        return n * 2;
      }
    }
    await expect(new Sync().compute(2) as unknown as Promise<number>).rejects.toThrow(ConfigurationError);
    await expect(new Sync().compute(2) as unknown as Promise<number>).rejects.toThrow(
      'Expected Sync.compute decorated with @Cacheable to return a promise, got `4` (number)',
    );
  });

  it('refuse to decorate something that is not a method', () => {
    const cache = memoryCache();
    expect(() => {
      class Getter {
        // @ts-expect-error only methods can be decorated
        @Cacheable({ key: 'getter', cache })
        get value(): Promise<number> {
          return Promise.resolve(1);
        }
      }
      return Getter;
    }).toThrow(ConfigurationError);
  });

  it('refuse @CacheEvict without a key or tags when it is applied', () => {
    expect(() => CacheEvict({})).toThrow('Expected @CacheEvict to be given a `key`, `tags` or both');
  });
});
