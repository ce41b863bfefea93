/**
 * The NestJS example, compiled by TypeScript with `experimentalDecorators` and `emitDecoratorMetadata` (as Nest
 * projects are; see the `nestjs` project in vitest.config.ts) and run as a Nest application context.
 */
import 'reflect-metadata';
import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import type { Cache as CacheManager } from 'cache-manager';
import { afterEach, describe, expect, it } from 'vitest';
import type { Cache } from 'tiercache';
import { AppModule } from '../src/app.module.js';
import { ProductKey, ProductRepository, ProductsService } from '../src/products.service.js';
import { TIERCACHE } from '../src/tiercache.module.js';

let app: INestApplicationContext | undefined;
async function start(): Promise<INestApplicationContext> {
  app = await NestFactory.createApplicationContext(
    AppModule.forRoot({ env: { TIERCACHE_PREFIX: 'nest', TIERCACHE_TTL: '5m', TIERCACHE_MEMORY_MAX_ENTRIES: '1000' } }),
    { logger: false },
  );
  return app;
}
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe('the NestJS example', () => {
  it('serves the second call of a @Cacheable service method from tiercache', async () => {
    const context = await start();
    const products = context.get(ProductsService);
    const repository = context.get(ProductRepository);
    expect(await products.find(1)).toEqual({ id: 1, name: 'lamp' });
    expect(await products.find(1)).toEqual({ id: 1, name: 'lamp' });
    expect(repository.queries).toBe(1);
    expect(await context.get<symbol, Cache>(TIERCACHE).get(ProductKey(1))).toEqual({ id: 1, name: 'lamp' });
  });

  it('is compiled with decorator metadata, as Nest expects', () => {
    expect(Reflect.getMetadata('design:paramtypes', ProductsService)).toEqual([Object, ProductRepository]);
  });

  it('runs the method once for 100 concurrent calls and reloads after @CacheEvict', async () => {
    const context = await start();
    const products = context.get(ProductsService);
    const repository = context.get(ProductRepository);
    await Promise.all(Array.from({ length: 100 }, () => products.find(2)));
    expect(repository.queries).toBe(1);
    await products.rename(2, 'armchair');
    expect(await products.find(2)).toEqual({ id: 2, name: 'armchair' });
    expect(repository.queries).toBe(2);
  });

  it('wires @nestjs/cache-manager to the same tiercache through the Keyv adapter', async () => {
    const context = await start();
    const manager = context.get<symbol, CacheManager>(CACHE_MANAGER as unknown as symbol);
    const cache = context.get<symbol, Cache>(TIERCACHE);
    await manager.set('greeting', 'hello', 60_000);
    expect(await cache.get('keyv:greeting')).toBeDefined();
    expect(await manager.get('greeting')).toBe('hello');
    let loads = 0;
    await manager.wrap('report', async () => ++loads, 60_000);
    expect(await manager.wrap('report', async () => ++loads, 60_000)).toBe(1);
    expect(cache.prefix).toBe('nest:');
  });

  it('closes the cache when the application closes', async () => {
    const context = await start();
    const cache = context.get<symbol, Cache>(TIERCACHE);
    await context.close();
    app = undefined;
    await expect(cache.getOrSet('k', () => 1)).rejects.toThrow('The cache is closed');
  });
});
