import type { Cache } from 'tiercache';
import type { Queryable } from '../db/index.js';
import { keys } from '../keys.js';
import { productIdsInCategory } from './repo.js';

/**
 * The seed's `delete_prod_info`: after a product changes, drop every cached view that shows it — its own page, the
 * pages that list it as related (the products of its category), and the trends list. Called after the database write
 * has committed, so a reader that misses loads the new row. One query to find the pages, one round trip to Redis;
 * the library drops the copies in this instance's memory tier (and, with the bus, in every other instance's).
 */
export async function evictProduct(cache: Cache, db: Queryable, id: number, categoryId: number): Promise<number> {
  const ids = await productIdsInCategory(db, categoryId);
  return cache.deleteMany([...new Set([id, ...ids])].map(keys.product).concat(keys.productCard(id), keys.trends));
}
