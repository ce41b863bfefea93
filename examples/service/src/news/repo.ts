import type { Queryable } from '../db/index.js';
import type { Category, FeedArticle } from './feeds.js';

/** An article as the API answers it (and as the cached lists hold it). */
export interface Article {
  readonly id: number;
  readonly title: string;
  readonly summary: string;
  readonly url: string;
  readonly imageUrl: string | null;
  readonly category: string;
  readonly source: string;
  readonly publishedAt: string;
}

interface ArticleRow {
  id: number;
  title: string;
  summary: string;
  url: string;
  image_url: string | null;
  category: string;
  source: string;
  published_at: Date | string;
}

const COLUMNS = 'id, title, summary, url, image_url, category, source, published_at';

function toArticle(row: ArticleRow): Article {
  return {
    id: row.id,
    title: row.title,
    summary: row.summary,
    url: row.url,
    imageUrl: row.image_url,
    category: row.category,
    source: row.source,
    publishedAt: new Date(row.published_at).toISOString(),
  };
}

/**
 * One statement for the whole batch. A row that exists is updated only when something changed, and an image found
 * earlier is kept when a later run only sees the story without one.
 */
export async function upsertArticles(
  db: Queryable,
  articles: readonly FeedArticle[],
): Promise<{ inserted: number; updated: number }> {
  if (articles.length === 0) return { inserted: 0, updated: 0 };
  const params: unknown[] = [];
  const tuples = articles.map((a) => {
    const base = params.length;
    params.push(a.dedupeKey, a.title, a.summary, a.url, a.imageUrl, a.category, a.source, a.publishedAt.toISOString());
    return `(${Array.from({ length: 8 }, (_, i) => `$${base + i + 1}`).join(', ')})`;
  });
  const rows = await db.query<{ inserted: boolean }>(
    `INSERT INTO articles AS a (dedupe_key, title, summary, url, image_url, category, source, published_at)
     VALUES ${tuples.join(',\n')}
     ON CONFLICT (dedupe_key) DO UPDATE SET
       title = EXCLUDED.title, summary = EXCLUDED.summary, url = EXCLUDED.url,
       image_url = COALESCE(EXCLUDED.image_url, a.image_url), category = EXCLUDED.category,
       source = EXCLUDED.source, published_at = EXCLUDED.published_at, updated_at = now()
     WHERE (a.title, a.summary, a.url, a.image_url, a.category, a.source, a.published_at)
       IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.summary, EXCLUDED.url, COALESCE(EXCLUDED.image_url, a.image_url),
                         EXCLUDED.category, EXCLUDED.source, EXCLUDED.published_at)
     RETURNING (xmax = 0) AS inserted`,
    params,
  );
  const inserted = rows.filter((r) => r.inserted).length;
  return { inserted, updated: rows.length - inserted };
}

/** The newest articles, newest first, for the cached lists. */
export async function latestArticles(db: Queryable, limit: number): Promise<Article[]> {
  const rows = await db.query<ArticleRow>(
    `SELECT ${COLUMNS} FROM articles ORDER BY published_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return rows.map(toArticle);
}

/** A position in the feed: the last article of the previous page (feeds are ordered by time, then id, descending). */
export interface Cursor {
  readonly publishedAt: string;
  readonly id: number;
}

/** One page straight from the database (keyset pagination: cheap at any depth). One query. */
export async function articlePage(
  db: Queryable,
  category: Category | undefined,
  after: Cursor | undefined,
  limit: number,
): Promise<Article[]> {
  const rows = await db.query<ArticleRow>(
    `SELECT ${COLUMNS} FROM articles
      WHERE ($1::text IS NULL OR category = $1)
        AND ($2::timestamptz IS NULL OR (published_at, id) < ($2::timestamptz, $3::integer))
      ORDER BY published_at DESC, id DESC
      LIMIT $4`,
    [category ?? null, after?.publishedAt ?? null, after?.id ?? 0, limit],
  );
  return rows.map(toArticle);
}

export async function articleById(db: Queryable, id: number): Promise<Article | null> {
  const [row] = await db.query<ArticleRow>(`SELECT ${COLUMNS} FROM articles WHERE id = $1`, [id]);
  return row === undefined ? null : toArticle(row);
}

export interface CategoryCount {
  readonly slug: string;
  readonly count: number;
  readonly latest: string | null;
}

export async function categoryCounts(db: Queryable): Promise<CategoryCount[]> {
  const rows = await db.query<{ category: string; count: number; latest: Date | string }>(
    'SELECT category, count(*)::int AS count, max(published_at) AS latest FROM articles GROUP BY category',
  );
  return rows.map((r) => ({ slug: r.category, count: r.count, latest: new Date(r.latest).toISOString() }));
}
