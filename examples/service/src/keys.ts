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
  newsList: (category: string | undefined) => `news:list:${category ?? 'all'}`,
  newsArticle: (id: number) => `news:article:${id}`,
  newsCategories: 'news:categories',
  trends: 'trends:top',
} as const;

export const ttl = {
  product: '10m',
  stock: '1h',
  order: '1h',
  newsList: '1h',
  newsArticle: '24h',
  trends: '6h',
} as const;
