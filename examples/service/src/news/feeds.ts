import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/** The categories the API knows; each feed names them its own way. */
export const CATEGORIES = [
  { slug: 'world', name: 'World' },
  { slug: 'business', name: 'Business' },
  { slug: 'technology', name: 'Technology' },
  { slug: 'science', name: 'Science' },
  { slug: 'sport', name: 'Sport' },
] as const;
export type Category = (typeof CATEGORIES)[number]['slug'];
export const CATEGORY_SLUGS = CATEGORIES.map((c) => c.slug) as [Category, ...Category[]];

const ALIASES: Record<string, Category> = {
  world: 'world',
  'world news': 'world',
  business: 'business',
  technology: 'technology',
  tech: 'technology',
  science: 'science',
  sport: 'sport',
  sports: 'sport',
};

/** An article as the service stores it, whichever feed it came from. */
export interface FeedArticle {
  /** The canonical URL: one story carried by two feeds has one key. */
  readonly dedupeKey: string;
  readonly title: string;
  readonly summary: string;
  readonly url: string;
  readonly imageUrl: string | null;
  readonly category: Category;
  readonly source: string;
  readonly publishedAt: Date;
}

export const FEEDS_DIR = new URL('../../feeds/', import.meta.url);

/** Feed 1: a news API in the NewsAPI style (JSON, ISO dates, an image per article, tracking parameters on links). */
const NewswireFeed = z.object({
  status: z.literal('ok'),
  articles: z.array(
    z.object({
      source: z.object({ name: z.string() }),
      title: z.string().min(1),
      description: z.string().nullable(),
      url: z.url(),
      urlToImage: z.url().nullable(),
      category: z.string(),
      publishedAt: z.iso.datetime(),
    }),
  ),
});

/** Feed 2: an RSS digest converted to JSON (RFC 822 dates, HTML in descriptions, no images, mixed-case hosts). */
const DigestFeed = z.object({
  rss: z.object({
    channel: z.object({
      title: z.string(),
      item: z.array(
        z.object({
          title: z.string().min(1),
          link: z.url(),
          description: z.string(),
          category: z.string(),
          pubDate: z.string().refine((d) => !Number.isNaN(Date.parse(d)), 'expected an RFC 822 date'),
        }),
      ),
    }),
  }),
});

/** The link without tracking parameters or fragment: what the API hands out. */
export function cleanUrl(raw: string): string {
  const url = new URL(raw);
  url.hash = '';
  for (const name of [...url.searchParams.keys()]) {
    if (/^(utm_|fbclid$|gclid$|ref$)/i.test(name)) url.searchParams.delete(name);
  }
  return url.href;
}

/**
 * The clean link with https, a lower-case host without `www.` and no trailing slash: the forms the two feeds use for
 * the same story all map to one key.
 */
export function canonicalUrl(raw: string): string {
  const url = new URL(cleanUrl(raw));
  url.protocol = 'https:';
  url.hostname = url.hostname.toLowerCase().replace(/^www\./, '');
  url.pathname = url.pathname.replace(/\/+$/, '') || '/';
  return url.href;
}

function category(raw: string): Category | undefined {
  return ALIASES[raw.trim().toLowerCase()];
}

function stripHtml(html: string): string {
  return html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&amp;/g, '&')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();
}

export function parseNewswire(data: unknown): FeedArticle[] {
  const feed = NewswireFeed.parse(data);
  return feed.articles.flatMap((a) => {
    const cat = category(a.category);
    if (cat === undefined) return [];
    return [
      {
        dedupeKey: canonicalUrl(a.url),
        title: a.title.trim(),
        summary: stripHtml(a.description ?? ''),
        url: cleanUrl(a.url),
        imageUrl: a.urlToImage,
        category: cat,
        source: a.source.name,
        publishedAt: new Date(a.publishedAt),
      },
    ];
  });
}

export function parseDigest(data: unknown): FeedArticle[] {
  const feed = DigestFeed.parse(data);
  return feed.rss.channel.item.flatMap((item) => {
    const cat = category(item.category);
    if (cat === undefined) return [];
    return [
      {
        dedupeKey: canonicalUrl(item.link),
        // The digest marks running stories; the key is the URL, so the marker would only make titles differ.
        title: item.title.replace(/\s+—\s+live updates$/i, '').trim(),
        summary: stripHtml(item.description),
        url: cleanUrl(item.link),
        imageUrl: null,
        category: cat,
        source: feed.rss.channel.title,
        publishedAt: new Date(item.pubDate),
      },
    ];
  });
}

/**
 * One article per canonical URL. Feeds are given in order of preference: the first feed's fields win, and a later
 * feed only fills what the first lacks (the digest never has images; the newswire does).
 */
export function dedupe(feeds: readonly (readonly FeedArticle[])[]): FeedArticle[] {
  const byKey = new Map<string, FeedArticle>();
  for (const articles of feeds) {
    for (const article of articles) {
      const seen = byKey.get(article.dedupeKey);
      if (seen === undefined) byKey.set(article.dedupeKey, article);
      else if (seen.imageUrl === null && article.imageUrl !== null) {
        byKey.set(article.dedupeKey, { ...seen, imageUrl: article.imageUrl });
      }
    }
  }
  return [...byKey.values()];
}

/** Reads both bundled feeds (they stand in for two news APIs; no network). */
export async function collectFeeds(dir: URL = FEEDS_DIR): Promise<{ articles: FeedArticle[]; fetched: number }> {
  const read = async (name: string): Promise<unknown> => JSON.parse(await readFile(new URL(name, dir), 'utf8'));
  const newswire = parseNewswire(await read('newswire-api.json'));
  const digest = parseDigest(await read('harbour-digest-rss.json'));
  return { articles: dedupe([newswire, digest]), fetched: newswire.length + digest.length };
}
