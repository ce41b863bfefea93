import type { Cache, Source } from 'tiercache';

export interface Article {
  id: number;
  category: string;
  title: string;
  publishedAt: Date;
}

export interface NewsDb {
  latest(category: string): Promise<Article[]>;
}

// The CQRS worker, after collecting the feeds: every category list in a few round trips, one bus message per batch.
export async function warmNewsLists(cache: Cache, articles: readonly Article[]) {
  const lists = new Map<string, Article[]>([['all', [...articles]]]);
  for (const article of articles) lists.set(article.category, [...(lists.get(article.category) ?? []), article]);
  return cache.warm(
    [...lists].map(([category, list]) => ({ key: `news:list:${category}`, value: list })),
    { ttl: '1h', grace: '10m', tags: ['news'], batchSize: 500 },
  );
}

// The API: the warmed list, or Postgres when the worker has not written it yet; meta.source says which.
export async function newsPage(
  cache: Cache,
  db: NewsDb,
  category: string,
): Promise<{ articles: Article[]; meta: { source: Source } }> {
  const { value, source } = await cache.getOrSetWithMeta(`news:list:${category}`, () => db.latest(category), {
    ttl: '1h',
    grace: '10m',
    tags: ['news'],
  });
  return { articles: value, meta: { source } };
}
