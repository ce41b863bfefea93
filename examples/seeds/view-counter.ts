import type { Cache, Counter } from 'tiercache';

export interface ViewsTable {
  /** Adds the deltas once per batch id (a retried batch is skipped), in one transaction. */
  applyViews(deltas: ReadonlyMap<string, number>, batchId: string): Promise<void>;
  viewCount(productId: string): Promise<number>;
}

// The seed: INCR in Redis, and every x-th view an UPDATE … SET view_count = view_count + x.
export function createViewCounter(cache: Cache, db: ViewsTable): Counter {
  return cache.counter('product-views', {
    flushEvery: 16, // an id's pending delta reaching 16 flushes in the background
    flushInterval: '10s', // … and whatever is pending goes every 10 s and on close()
    flush: (deltas, batchId) => db.applyViews(deltas, batchId),
    load: (productId) => db.viewCount(productId), // seeds the live total from the database once per id
  });
}

// In the product page handler: the live total, from Redis.
export function countView(views: Counter, productId: number): Promise<number> {
  return views.incr(String(productId));
}
