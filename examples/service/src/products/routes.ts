import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AppError, AppErrorCode } from '../errors.js';
import { keys, ttl } from '../keys.js';
import { secondsLeft } from '../meta.js';
import { parseId } from '../params.js';
import { evictProduct } from './evict.js';
import { loadProductCards, loadProductPage, updateProduct } from './repo.js';
import type { ProductPage } from './repo.js';

const Stock = z.strictObject({ stock: z.number().int().min(0).max(1_000_000) });
const Order = z.strictObject({ quantity: z.number().int().min(1).max(1000) });

const Changes = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    description: z.string().trim().max(2000).optional(),
    priceCents: z.number().int().min(0).max(100_000_000).optional(),
    stock: z.number().int().min(0).max(1_000_000).optional(),
  })
  .refine(
    (c) => Object.values(c).some((v) => v !== undefined),
    'expected at least one of name, description, priceCents, stock',
  );

/** `ids=1,2,3`: 1 to 100 product ids, as given (duplicates kept, order kept). */
function parseIds(raw: unknown): number[] {
  if (typeof raw !== 'string' || raw === '') {
    throw new AppError(AppErrorCode.BadRequest, 'Expected `ids` to be a comma-separated list of product ids');
  }
  const ids = raw.split(',').map((part) => parseId(part.trim()));
  if (ids.length > 100) throw new AppError(AppErrorCode.BadRequest, `Expected at most 100 ids, got ${ids.length}`);
  return ids;
}

export const productRoutes: FastifyPluginAsync = async (app) => {
  // Cache-aside with the origin fallback: a hit in either tier costs no query; a miss runs the four queries once per
  // key per process (single-flight), however many requests wait for it. A missing id is remembered for a short while
  // (negative caching), so asking for it again costs no query until then.
  app.get<{ Params: { id: string } }>('/products/:id', async (request) => {
    const id = parseId(request.params.id);
    // A missing id is remembered for ttl.missing (negative caching): one query per id per that, not per request.
    const read = await app.cached(keys.product(id), async () => (await loadProductPage(app.db, id)) ?? undefined, {
      ttl: ttl.product,
      negativeTtl: ttl.missing,
    });
    const page: ProductPage | undefined = read.value;
    if (page === undefined) throw new AppError(AppErrorCode.NotFound, `No product ${id}`);
    // The live view count: one Redis round trip, written to the database every VIEW_FLUSH_EVERY views.
    const views = await app.views.incr(String(id));
    return { data: page, meta: { source: read.source, cacheExpiresIn: secondsLeft(read.expiresInMs), views } };
  });

  // Write-through: the database first; only once it has the stock is the cache set (and other instances told).
  app.put<{ Params: { id: string } }>('/products/:id/stock', async (request) => {
    const id = parseId(request.params.id);
    const { stock } = Stock.parse(request.body);
    const updated = await app.cache.writeThrough(
      keys.stock(id),
      { id, stock },
      async (value) => {
        const row = await updateProduct(app.db, id, { stock: value.stock });
        if (row === null) throw new AppError(AppErrorCode.NotFound, `No product ${id}`);
        return row;
      },
      { ttl: ttl.stock },
    );
    // The product pages show the stock too.
    await evictProduct(app.cache, app.db, id, updated.categoryId);
    return { data: { id, stock, updatedAt: updated.updatedAt }, meta: { writeThrough: true } };
  });

  app.get<{ Params: { id: string } }>('/products/:id/stock', async (request) => {
    const id = parseId(request.params.id);
    const read = await app.cached(
      keys.stock(id),
      async () => {
        const page = await loadProductPage(app.db, id);
        if (page === null) throw new AppError(AppErrorCode.NotFound, `No product ${id}`);
        return { id, stock: page.stock };
      },
      { ttl: ttl.stock },
    );
    return { data: read.value, meta: { source: read.source } };
  });

  // Write-behind: the order is in the cache (and in the durable queue in Redis) at once; the order log gets it in a
  // batch shortly after.
  app.post<{ Params: { id: string } }>('/products/:id/orders', async (request, reply) => {
    const id = parseId(request.params.id);
    const { quantity } = Order.parse(request.body);
    const orderKey = randomUUID();
    const order = { productId: id, quantity, orderedAt: new Date().toISOString() };
    await app.cache.writeBehind(keys.order(orderKey), order, { queue: 'orders', ttl: ttl.order });
    void reply.code(202);
    return { data: { orderKey, ...order }, meta: { writeBehind: true } };
  });

  // A product list (GET /products?ids=3,7,12): one getOrSetMany, so the cards missing from both tiers cost ONE query
  // together, whatever their number; ids that do not exist answer null and are remembered as missing for a while.
  app.get<{ Querystring: { ids?: string } }>('/products', async (request) => {
    const ids = parseIds(request.query.ids);
    const reads = await app.cachedMany(
      ids.map(keys.productCard),
      async (missing) => {
        const cards = await loadProductCards(
          app.db,
          missing.map((key) => Number(key.slice(key.lastIndexOf(':') + 1))),
        );
        return missing.map((key) => cards.get(Number(key.slice(key.lastIndexOf(':') + 1))));
      },
      { ttl: ttl.productCard, negativeTtl: ttl.missing },
    );
    const sources: Record<string, number> = {};
    for (const read of reads) sources[read.source] = (sources[read.source] ?? 0) + 1;
    return {
      data: reads.map((read) => read.value ?? null),
      meta: { sources, missing: reads.filter((read) => read.value === undefined).length },
    };
  });

  app.put<{ Params: { id: string } }>('/products/:id', async (request) => {
    const id = parseId(request.params.id);
    const changes = Changes.parse(request.body);
    const updated = await updateProduct(app.db, id, changes);
    if (updated === null) throw new AppError(AppErrorCode.NotFound, `No product ${id}`);
    await evictProduct(app.cache, app.db, id, updated.categoryId);
    return { data: { id, updatedAt: updated.updatedAt }, meta: { evicted: true } };
  });
};
