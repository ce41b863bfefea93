import type { Cache, MsetEntry } from 'tiercache';
import type { Db } from '../db/index.js';
import { keys, ttl } from '../keys.js';
import { CATEGORIES, collectFeeds, FEEDS_DIR } from './feeds.js';
import { categoryCounts, latestArticles, upsertArticles } from './repo.js';

/** Longest cached list; older pages come from the database. */
export const LIST_LIMIT = 500;

export interface NewsWorkerResult {
  readonly fetched: number;
  readonly unique: number;
  readonly inserted: number;
  readonly updated: number;
  readonly warmed: number;
  /** Entries that reached memory only (Redis unreachable) or could not be cached. */
  readonly warmFailed: number;
}

/**
 * The write side of the news CQRS split: collect both feeds, dedupe, upsert into the database, then warm every list
 * the API serves (`news:list:all`, `news:list:<category>`, each article, the category counts) in one `mset` round
 * trip. The API never builds lists itself; it reads these or falls back to the database.
 */
export async function runNewsWorker(db: Db, cache: Cache, feedsDir: URL = FEEDS_DIR): Promise<NewsWorkerResult> {
  const { articles, fetched } = await collectFeeds(feedsDir);
  const { inserted, updated } = await upsertArticles(db, articles);
  const latest = await latestArticles(db, LIST_LIMIT * CATEGORIES.length);
  const counts = await categoryCounts(db);

  const entries: MsetEntry[] = [
    { key: keys.newsList(undefined), value: latest.slice(0, LIST_LIMIT), ttl: ttl.newsList },
  ];
  for (const { slug } of CATEGORIES) {
    const list = latest.filter((a) => a.category === slug).slice(0, LIST_LIMIT);
    entries.push({ key: keys.newsList(slug), value: list, ttl: ttl.newsList });
  }
  entries.push({ key: keys.newsCategories, value: counts, ttl: ttl.newsList });
  for (const article of latest.slice(0, LIST_LIMIT)) {
    entries.push({ key: keys.newsArticle(article.id), value: article, ttl: ttl.newsArticle });
  }
  // Warmed in pipelined batches (one round trip and one invalidation message per batch). With Redis away this fills
  // this instance's memory tier only, and the entries count as failed.
  const warmed = await cache.warm(entries, { batchSize: 500 });
  return { fetched, unique: articles.length, inserted, updated, warmed: warmed.written, warmFailed: warmed.failed };
}
