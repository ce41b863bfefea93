/**
 * Every cache key and TTL of the service in one place, so an eviction can never miss a key a reader uses.
 * Keys are relative to CACHE_PREFIX (Redis holds `${CACHE_PREFIX}product:42`).
 */
export const keys = {
  product: (id: number) => `product:${id}`,
  /** Written through on every stock change (PUT /products/:id/stock). */
  stock: (id: number) => `stock:${id}`,
  /** An order as accepted, before the order log has it (written behind). */
  order: (key: string) => `order:${key}`,
  /** The short form a product list shows (GET /products?ids=…), loaded for many ids in one query. */
  productCard: (id: number) => `product:card:${id}`,
  newsList: (category: string | undefined) => `news:list:${category ?? 'all'}`,
  newsArticle: (id: number) => `news:article:${id}`,
  newsCategories: 'news:categories',
  trends: 'trends:top',
} as const;

export const ttl = {
  product: '10m',
  stock: '1h',
  order: '1h',
  productCard: '10m',
  /** How long a missing product id is remembered (negative caching): one query per id per this, not per request. */
  missing: '30s',
  newsList: '1h',
  newsArticle: '24h',
  trends: '6h',
} as const;
