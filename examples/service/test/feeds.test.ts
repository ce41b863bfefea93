import { describe, expect, it } from 'vitest';
import { canonicalUrl, collectFeeds, dedupe, parseDigest, parseNewswire } from '../src/news/feeds.js';

describe('the two bundled feeds', () => {
  it('map one story carried by both feeds to one article, keeping the newswire image', async () => {
    const { articles, fetched } = await collectFeeds();
    expect(fetched).toBe(68);
    expect(articles).toHaveLength(60);
    expect(new Set(articles.map((a) => a.dedupeKey)).size).toBe(60);
    expect(articles.filter((a) => a.imageUrl !== null)).toHaveLength(36);
    expect(articles.some((a) => a.title.endsWith('live updates'))).toBe(false);
    expect(articles.every((a) => !a.summary.includes('<'))).toBe(true);
  });

  it('canonicalise the forms the feeds use for one link', () => {
    const forms = [
      'https://www.fullback.example/sport/2026/11/17/chess?utm_source=wire&utm_medium=api',
      'http://WWW.fullback.example/sport/2026/11/17/chess/',
      'https://fullback.example/sport/2026/11/17/chess#comments',
    ];
    expect(new Set(forms.map(canonicalUrl))).toEqual(new Set(['https://fullback.example/sport/2026/11/17/chess']));
    expect(canonicalUrl('https://x.example/a?id=7&utm_campaign=z')).toBe('https://x.example/a?id=7');
  });

  it('refuse a feed of the wrong shape rather than store half of it', () => {
    expect(() => parseNewswire({ status: 'ok', articles: [{ title: 'no url' }] })).toThrow();
    expect(() => parseDigest({ channel: {} })).toThrow();
  });

  it('let the first feed win a conflict and fill only what it lacks from the second', () => {
    const base = {
      dedupeKey: 'k',
      summary: '',
      url: 'https://a.example/k',
      category: 'world' as const,
      source: 's',
      publishedAt: new Date(0),
    };
    const [merged] = dedupe([
      [{ ...base, title: 'first', imageUrl: null }],
      [{ ...base, title: 'second', imageUrl: 'https://img.example/k.jpg' }],
    ]);
    expect(merged).toMatchObject({ title: 'first', imageUrl: 'https://img.example/k.jpg' });
  });
});
