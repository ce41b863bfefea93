import type { Counter, WriteBehindQueue } from 'tiercache';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import type { Queryable } from '../db/index.js';

/** One order as the order log stores it (written behind, through the `orders` queue). */
export interface OrderEvent {
  readonly productId: number;
  readonly quantity: number;
  readonly orderedAt: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Live product page views: totals in Redis, written to `products.view_count` every N views. */
    views: Counter;
    /** The order log, written behind into `orders`. */
    orders: WriteBehindQueue<OrderEvent>;
    /** UPDATEs the view counter sent to the database (for the dashboard and the service test). */
    viewFlushes(): number;
  }
}

/**
 * The idempotent counter flush of docs/write-strategies.md: the batch id is recorded in the same transaction as the
 * deltas, so a batch retried after a crash, or after a COMMIT whose reply was lost, changes nothing the second time.
 * One UPDATE for the whole batch.
 */
export async function flushViews(
  db: { transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> },
  deltas: ReadonlyMap<string, number>,
  batchId: string,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const fresh = await tx.query(
      'INSERT INTO counter_batches (batch_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING batch_id',
      [batchId],
    );
    if (fresh.length === 0) return false;
    await tx.query(
      `UPDATE products p SET view_count = p.view_count + d.delta
         FROM unnest($1::int[], $2::bigint[]) AS d(id, delta) WHERE p.id = d.id`,
      [[...deltas.keys()].map(Number), [...deltas.values()]],
    );
    return true;
  });
}

/** Writes a batch of orders; an order key already written is skipped (a record can be delivered twice). */
export async function writeOrders(db: Queryable, batch: readonly { key: string; value: OrderEvent }[]): Promise<void> {
  await db.query(
    `INSERT INTO orders (order_key, product_id, quantity, ordered_at)
       SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::timestamptz[])
     ON CONFLICT (order_key) DO NOTHING`,
    [
      batch.map((o) => o.key),
      batch.map((o) => o.value.productId),
      batch.map((o) => o.value.quantity),
      batch.map((o) => o.value.orderedAt),
    ],
  );
}

/**
 * The service's write-behind parts on `app.cache`: the product view counter and the order log queue. Both are drained
 * by `cache.close()` (the cache plugin's onClose), which runs before the database plugin closes.
 */
export const strategiesPlugin = fp<{ readonly config: Config }>(
  async (app, { config }) => {
    let flushes = 0;
    const views = app.cache.counter('product-views', {
      flushEvery: config.viewFlushEvery,
      flushInterval: '10s',
      load: async (id) => {
        const [row] = await app.db.query<{ view_count: string | number }>(
          'SELECT view_count FROM products WHERE id = $1',
          [Number(id)],
        );
        return Number(row?.view_count ?? 0);
      },
      flush: async (deltas, batchId) => {
        if (await flushViews(app.db, deltas, batchId)) flushes++;
      },
    });
    const orders = app.cache.writeBehindQueue<OrderEvent>('orders', {
      batchSize: 200,
      write: (batch) => writeOrders(app.db, batch),
    });
    app.decorate('views', views);
    app.decorate('orders', orders);
    app.decorate('viewFlushes', () => flushes);
  },
  { name: 'strategies', dependencies: ['cache'], fastify: '5.x' },
);
