import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AppError, AppErrorCode } from '../errors.js';
import { keys, ttl } from '../keys.js';
import { secondsLeft } from '../meta.js';
import { parseId } from '../params.js';
import { evictProduct } from './evict.js';
import { loadProductPage, updateProduct } from './repo.js';
import type { ProductPage } from './repo.js';

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
    return { data: page, meta: { source: read.source, cacheExpiresIn: secondsLeft(read.expiresInMs) } };
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
