import type { FastifyPluginAsync } from 'fastify';
import type { ReadResult } from 'tiercache';
import { z } from 'zod';
import { AppError, AppErrorCode } from '../errors.js';
import { keys, ttl } from '../keys.js';
import { secondsLeft } from '../meta.js';
import { parseId, withoutEmpty } from '../params.js';
import { CATEGORIES, CATEGORY_SLUGS } from './feeds.js';
import { articleById, articlePage, categoryCounts } from './repo.js';
import type { Article, CategoryCount, Cursor } from './repo.js';

const Query = z.preprocess(
  withoutEmpty,
  z.strictObject({
    category: z.enum(CATEGORY_SLUGS).optional(),
    cursor: z.string().max(200).optional(),
    limit: z.coerce.number().int().min(1).max(50).default(10),
  }),
);

/** Opaque to clients: base64url of `<ISO time>|<id>` of the last article they saw. */
export function encodeCursor(article: Pick<Article, 'publishedAt' | 'id'>): string {
  return Buffer.from(`${article.publishedAt}|${article.id}`).toString('base64url');
}

export function decodeCursor(raw: string): Cursor {
  const [publishedAt, id, ...rest] = Buffer.from(raw, 'base64url').toString('utf8').split('|');
  const n = Number(id);
  if (
    rest.length > 0 ||
    publishedAt === undefined ||
    Number.isNaN(Date.parse(publishedAt)) ||
    !Number.isSafeInteger(n)
  ) {
    throw new AppError(AppErrorCode.BadRequest, 'cursor: not a cursor this API returned');
  }
  return { publishedAt: new Date(publishedAt).toISOString(), id: n };
}

/** True when `a` comes after the cursor in a feed ordered by (publishedAt, id) descending. */
function after(a: Article, cursor: Cursor): boolean {
  return a.publishedAt < cursor.publishedAt || (a.publishedAt === cursor.publishedAt && a.id < cursor.id);
}

type NewsSource = 'redis' | 'memory' | 'postgres';

export const newsRoutes: FastifyPluginAsync = async (app) => {
  /**
   * The read side: pages come from the list the worker cached. The database answers when the list is missing, and
   * also whenever Redis is away even if this instance still holds a copy in memory: the worker may run in another
   * process, and without Redis this instance cannot hear that the list changed, so the database is the one copy known
   * to be current.
   */
  const readList = async <T>(key: string): Promise<ReadResult<T> | undefined> =>
    app.cacheStatus().shared ? app.cache.getWithMeta<T>(key) : undefined;

  app.get('/news', async (request) => {
    const { category, cursor: rawCursor, limit } = Query.parse(request.query);
    const cursor = rawCursor === undefined ? undefined : decodeCursor(rawCursor);
    const list = await readList<Article[]>(keys.newsList(category));

    let items: Article[];
    let more: boolean;
    let source: NewsSource;
    if (list !== undefined) {
      const start = cursor === undefined ? 0 : list.value.findIndex((a) => after(a, cursor));
      items = start < 0 ? [] : list.value.slice(start, start + limit);
      more = start >= 0 && start + limit < list.value.length;
      source = list.source === 'memory' ? 'memory' : 'redis';
    } else {
      const rows = await articlePage(app.db, category, cursor, limit + 1);
      items = rows.slice(0, limit);
      more = rows.length > limit;
      source = 'postgres';
    }
    const last = items.at(-1);
    return {
      data: items,
      page: { limit, nextCursor: more && last !== undefined ? encodeCursor(last) : null },
      meta: {
        source,
        cacheExpiresIn: secondsLeft(list?.expiresInMs),
        totalCached: list?.value.length ?? 0,
      },
    };
  });

  app.get('/news/categories', async () => {
    const cached = await readList<CategoryCount[]>(keys.newsCategories);
    const counts = cached?.value ?? (await categoryCounts(app.db));
    const bySlug = new Map(counts.map((c) => [c.slug, c]));
    return {
      data: CATEGORIES.map(({ slug, name }) => ({
        slug,
        name,
        count: bySlug.get(slug)?.count ?? 0,
        latest: bySlug.get(slug)?.latest ?? null,
      })),
      meta: {
        source: (cached === undefined ? 'postgres' : cached.source === 'memory' ? 'memory' : 'redis') as NewsSource,
        cacheExpiresIn: secondsLeft(cached?.expiresInMs),
      },
    };
  });

  app.get<{ Params: { id: string } }>('/news/:id', async (request) => {
    const id = parseId(request.params.id);
    const read = await app.cached(
      keys.newsArticle(id),
      async () => {
        const article = await articleById(app.db, id);
        if (article === null) throw new AppError(AppErrorCode.NotFound, `No article ${id}`);
        return article;
      },
      { ttl: ttl.newsArticle },
    );
    return { data: read.value, meta: { source: read.source, cacheExpiresIn: secondsLeft(read.expiresInMs) } };
  });
};
