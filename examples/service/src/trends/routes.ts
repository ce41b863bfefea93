import type { FastifyPluginAsync } from 'fastify';
import type { Queryable } from '../db/index.js';
import { keys, ttl } from '../keys.js';
import { secondsLeft } from '../meta.js';

export interface Trends {
  readonly computedAt: string | null;
  readonly items: readonly {
    rank: number;
    productId: number;
    name: string;
    priceCents: number;
    views: number;
    score: number;
  }[];
}

export async function loadTrends(db: Queryable): Promise<Trends> {
  const rows = await db.query<{
    rank: number;
    product_id: number;
    name: string;
    price_cents: number;
    views: number;
    score: number;
    computed_at: Date | string;
  }>(
    `SELECT t.rank, t.product_id, p.name, p.price_cents, t.views, t.score, t.computed_at
       FROM trending_products t JOIN products p ON p.id = t.product_id
      ORDER BY t.rank`,
  );
  return {
    computedAt: rows[0] === undefined ? null : new Date(rows[0].computed_at).toISOString(),
    items: rows.map((r) => ({
      rank: r.rank,
      productId: r.product_id,
      name: r.name,
      priceCents: r.price_cents,
      views: r.views,
      score: Math.round(r.score * 100) / 100,
    })),
  };
}

export const trendsRoutes: FastifyPluginAsync = async (app) => {
  // Six hours, because the batch evicts it the moment a new ranking is committed: the TTL only bounds how stale it
  // gets if that eviction is lost.
  app.get('/trends', async () => {
    const read = await app.cached(keys.trends, () => loadTrends(app.db), { ttl: ttl.trends });
    return { data: read.value, meta: { source: read.source, cacheExpiresIn: secondsLeft(read.expiresInMs) } };
  });
};
