import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AppError, AppErrorCode } from '../errors.js';
import { keys, ttl } from '../keys.js';
import { secondsLeft } from '../meta.js';
import { parseId } from '../params.js';
import { evictProduct } from './evict.js';
import { loadProductPage, updateProduct } from './repo.js';
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

export const productRoutes: FastifyPluginAsync = async (app) => {
  // Cache-aside with the origin fallback: a hit in either tier costs no query; a miss runs the four queries once per
  // key per process (single-flight), however many requests wait for it.
  app.get<{ Params: { id: string } }>('/products/:id', async (request) => {
    const id = parseId(request.params.id);
    const read = await app.cached(
      keys.product(id),
      async () => {
        const page = await loadProductPage(app.db, id);
        // Thrown, not cached: a request for a missing id pays its query and nothing is stored for it.
        if (page === null) throw new AppError(AppErrorCode.NotFound, `No product ${id}`);
        return page;
      },
      { ttl: ttl.product },
    );
    const page: ProductPage = read.value;
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

  app.put<{ Params: { id: string } }>('/products/:id', async (request) => {
    const id = parseId(request.params.id);
    const changes = Changes.parse(request.body);
    const updated = await updateProduct(app.db, id, changes);
    if (updated === null) throw new AppError(AppErrorCode.NotFound, `No product ${id}`);
    await evictProduct(app.cache, app.db, id, updated.categoryId);
    return { data: { id, updatedAt: updated.updatedAt }, meta: { evicted: true } };
  });
};
