import { Inject, Injectable } from '@nestjs/common';
import { defineKey } from 'tiercache';
import type { Cache } from 'tiercache';
import { CacheEvict, Cacheable } from 'tiercache/decorators';
import { TIERCACHE } from './tiercache.module.js';

export interface Product {
  readonly id: number;
  readonly name: string;
}

/** A typed key: `product:42@v2`, an hour fresh, tagged for bulk invalidation. */
export const ProductKey = defineKey<Product, [id: number]>('product:{0}', {
  ttl: '1h',
  version: 2,
  tags: (id) => ['products', `product:${id}`],
});

/** Stands in for the database. */
export class ProductRepository {
  queries = 0;
  readonly #rows = new Map<number, string>([
    [1, 'lamp'],
    [2, 'chair'],
  ]);

  async find(id: number): Promise<Product> {
    this.queries++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { id, name: this.#rows.get(id) ?? 'unknown' };
  }

  async rename(id: number, name: string): Promise<void> {
    this.#rows.set(id, name);
  }
}

@Injectable()
export class ProductsService {
  constructor(
    @Inject(TIERCACHE) readonly cache: Cache,
    @Inject(ProductRepository) private readonly repository: ProductRepository,
  ) {}

  @Cacheable({ key: ProductKey, cache: (self: ProductsService) => self.cache })
  async find(id: number): Promise<Product> {
    return this.repository.find(id);
  }

  @CacheEvict({ key: ProductKey, cache: (self: ProductsService) => self.cache })
  async rename(id: number, name: string): Promise<void> {
    await this.repository.rename(id, name);
  }
}
