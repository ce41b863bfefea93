/**
 * The snippets of docs/from-the-seeds.md and README.ko.md (examples/seeds/*.ts), run against real redis-server
 * processes, each asserting what its snippet claims; and a check that every snippet shown in the two documents is the
 * file's text, byte for byte, so neither can change without the other.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Cache } from '../../src/index.js';
import { createEvictHandler } from '../../src/http/index.js';
import { deadUrl, startRedis, stopAllRedis } from './helpers/redis-server.js';
import type { RedisProcess } from './helpers/redis-server.js';
import { uniquePrefix, waitFor } from './helpers/support.js';
import { createUserCache, quickStart } from '../../../../examples/seeds/quickstart.js';
import type { User } from '../../../../examples/seeds/quickstart.js';
import { createProductCache, getProduct } from '../../../../examples/seeds/get-with-fallback.js';
import { createServiceCache, operations, ProductService } from '../../../../examples/seeds/product-service.js';
import type { Product } from '../../../../examples/seeds/product-service.js';
import { countView, createViewCounter } from '../../../../examples/seeds/view-counter.js';
import { newsPage, warmNewsLists } from '../../../../examples/seeds/news-warming.js';
import type { Article } from '../../../../examples/seeds/news-warming.js';
import { runTrendBatch } from '../../../../examples/seeds/trend-batch.js';

const ROOT = new URL('../../../../', import.meta.url);
const SEEDS = new URL('examples/seeds/', ROOT);

let redis: RedisProcess;
const caches: Cache[] = [];
const servers: Server[] = [];

function track<T extends Cache>(cache: T): T {
  caches.push(cache);
  return cache;
}

function listen(server: Server): Promise<string> {
  servers.push(server);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

afterAll(async () => {
  await stopAllRedis();
});

describe('the documents show the snippet files verbatim', () => {
  const SNIPPET = /^\[`?(examples\/seeds\/[\w-]+\.ts)`?\]\([^)]*\):\n\n```ts\n([\s\S]*?)```$/gm;

  function snippets(doc: string): Map<string, string[]> {
    const text = readFileSync(new URL(doc, ROOT), 'utf8');
    const found = new Map<string, string[]>();
    for (const [, path, code] of text.matchAll(SNIPPET)) {
      if (path === undefined || code === undefined) continue;
      found.set(path, [...(found.get(path) ?? []), code]);
    }
    return found;
  }

  it('every snippet in docs/from-the-seeds.md and README.ko.md equals its file', () => {
    const shown = [...snippets('docs/from-the-seeds.md'), ...snippets('README.ko.md')];
    expect(shown.length).toBeGreaterThanOrEqual(6);
    for (const [path, codes] of shown) {
      const file = readFileSync(new URL(path, ROOT), 'utf8');
      for (const code of codes) expect(code, path).toBe(file);
    }
  });

  it('docs/from-the-seeds.md shows every file in examples/seeds, and README.ko.md shows the quick start', () => {
    const files = readdirSync(SEEDS)
      .filter((name) => name.endsWith('.ts'))
      .map((name) => `examples/seeds/${name}`);
    const inGuide = snippets('docs/from-the-seeds.md');
    for (const file of files.filter((f) => !f.endsWith('/quickstart.ts'))) expect([...inGuide.keys()]).toContain(file);
    expect([...snippets('README.ko.md').keys()]).toContain('examples/seeds/quickstart.ts');
  });

  it('README.md links the Korean README from its top', () => {
    const head = readFileSync(new URL('README.md', ROOT), 'utf8').split('\n').slice(0, 3).join('\n');
    expect(head).toContain('한국어: [README.ko.md](README.ko.md)');
  });
});

describe('quick start (README.ko.md)', () => {
  it('100 concurrent callers make one query, the next read is from memory, and the tag invalidation empties Redis', async () => {
    const cache = track(createUserCache(redis.url));
    let queries = 0;
    const db = {
      find: async (id: number): Promise<User | undefined> => {
        queries++;
        await new Promise((resolve) => setTimeout(resolve, 20));
        return { id, name: 'Ada', since: new Date('2020-01-01T00:00:00Z') };
      },
    };
    const { user, source, afterInvalidation } = await quickStart(cache, db);
    expect(queries).toBe(1);
    expect(user).toEqual({ id: 42, name: 'Ada', since: new Date('2020-01-01T00:00:00Z') });
    expect(source).toBe('memory');
    expect(afterInvalidation).toBeUndefined();
    expect(await redis.cli('EXISTS', 'shop:user:42')).toBe('0');
  });

  it('a second instance reads the entry from Redis with its Date revived', async () => {
    const first = track(createUserCache(redis.url));
    const second = track(createUserCache(redis.url));
    const since = new Date('2021-05-05T00:00:00Z');
    await first.getOrSet('user:7', () => ({ id: 7, name: 'Grace', since }));
    const read = await second.getOrSetWithMeta<User>('user:7', () => {
      throw new Error('the loader must not run: Redis has the entry');
    });
    expect(read.source).toBe('redis');
    expect(read.value.since).toBeInstanceOf(Date);
    expect(read.value.since.getTime()).toBe(since.getTime());
    await first.delete('user:7');
  });
});

describe('(a) get_with_fallback + circuit breaker + Slack cooldown', () => {
  it('with Redis stalled every read is answered by the database, the breaker opens, and Slack gets at most 6 keys and one breaker message', async () => {
    const stalled = await startRedis();
    const messages: { text: string; kind: string }[] = [];
    const receiver = createServer((req, res) => {
      void readBody(req).then((body) => {
        const payload = JSON.parse(body) as { text: string; blocks: { elements?: { text: string }[] }[] };
        const context = payload.blocks[1]?.elements?.[0]?.text ?? '';
        messages.push({ text: payload.text, kind: context.split(' · ')[1] ?? '' });
        res.writeHead(200).end('ok');
      });
    });
    const slackUrl = await listen(receiver);
    const cache = createProductCache(stalled.url, slackUrl);
    let queries = 0;
    const db = {
      find: async (id: number) => {
        queries++;
        return { id, name: `product ${id}` };
      },
    };
    try {
      expect(await cache.ready('2s')).toBe(true);
      await stalled.pause(4000);
      for (let id = 1; id <= 12; id++) expect(await getProduct(cache, db, id)).toEqual({ id, name: `product ${id}` });
      expect(queries).toBe(12);
      expect(cache.stats().breaker?.state).toBe('open');
      await waitFor('the breaker-open message', () => messages.some((m) => m.kind === 'breaker-open'));
      const keyed = messages.filter((m) => m.kind === 'redis-error' && m.text.includes('on key'));
      expect(keyed.length).toBeGreaterThanOrEqual(1);
      expect(keyed.length).toBeLessThanOrEqual(6);
      const keys = keyed.map((m) => /`(product:\d+)`/.exec(m.text)?.[1]);
      expect(new Set(keys).size).toBe(keys.length); // one message per key: the cooldown holds the repeats back
      expect(messages.filter((m) => m.kind === 'breaker-open')).toHaveLength(1);
      const alerts = cache.stats().alerts;
      expect((alerts?.suppressed ?? 0) + (alerts?.deduplicated ?? 0)).toBeGreaterThan(0);
      // While the breaker is open, a read does not wait for the stalled Redis at all.
      const start = performance.now();
      expect(await getProduct(cache, db, 99)).toEqual({ id: 99, name: 'product 99' });
      expect(performance.now() - start).toBeLessThan(90);
    } finally {
      await stalled.stop();
      await cache.close();
    }
  });
});

describe('(b) spakky-redis @cacheable / @cache_evict, tags, lock, metrics, health, env config', () => {
  function productDb() {
    const names = new Map<number, string>([
      [1, 'Kimchi'],
      [2, 'Tteok'],
      [3, 'Bibimbap'],
    ]);
    const calls = new Map<number, number>();
    return {
      calls,
      find: async (id: number): Promise<Product> => {
        calls.set(id, (calls.get(id) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 30));
        return { id, name: names.get(id) ?? `product ${id}` };
      },
      rename: async (id: number, name: string) => {
        if (name === '') throw new Error('a product needs a name');
        names.set(id, name);
      },
    };
  }

  function env(prefix: string): NodeJS.ProcessEnv {
    return { TIERCACHE_REDIS_URL: redis.url, TIERCACHE_PREFIX: prefix, TIERCACHE_TTL: '10m' };
  }

  it('concurrent calls on two instances load once (single-flight and the stampede lock), and @CacheEvict drops the copy on both', async () => {
    const prefix = uniquePrefix('seeds-svc');
    const db = productDb();
    const a = new ProductService(track(createServiceCache(env(prefix))), db);
    const b = new ProductService(track(createServiceCache(env(prefix))), db);
    await Promise.all([a.cache.ready('2s'), b.cache.ready('2s')]);
    const found = await Promise.all([
      ...Array.from({ length: 20 }, () => a.find(1)),
      ...Array.from({ length: 20 }, () => b.find(1)),
    ]);
    expect(found.every((p) => p.name === 'Kimchi')).toBe(true);
    expect(db.calls.get(1)).toBe(1);
    expect(a.cache.stats().lock.acquired + b.cache.stats().lock.acquired).toBe(1);

    await a.rename(1, 'Kimchi jjigae');
    expect((await a.find(1)).name).toBe('Kimchi jjigae');
    await waitFor('the other instance to drop its copy', async () => (await b.find(1)).name === 'Kimchi jjigae');
    expect(db.calls.get(1)).toBe(2);
  });

  it('@CacheEvict with tags invalidates every product, and a failed update evicts nothing', async () => {
    const prefix = uniquePrefix('seeds-tags');
    const db = productDb();
    const service = new ProductService(track(createServiceCache(env(prefix))), db);
    await service.find(2);
    await service.find(3);
    await service.renameAll(
      new Map([
        [2, 'Tteokbokki'],
        [3, 'Dolsot bibimbap'],
      ]),
    );
    expect((await service.find(2)).name).toBe('Tteokbokki');
    expect((await service.find(3)).name).toBe('Dolsot bibimbap');
    expect(db.calls.get(2)).toBe(2);
    expect(db.calls.get(3)).toBe(2);

    await expect(service.rename(2, '')).rejects.toThrow('a product needs a name');
    expect((await service.find(2)).name).toBe('Tteokbokki');
    expect(db.calls.get(2)).toBe(2);
  });

  it('metrics, stats and health report the hits and a connected Redis', async () => {
    const prefix = uniquePrefix('seeds-ops');
    const service = new ProductService(track(createServiceCache(env(prefix))), productDb());
    await service.cache.ready('2s');
    await service.find(1);
    await service.find(1);
    const ops = operations(service.cache);
    expect(ops.stats().hits.memory).toBe(1);
    expect(ops.stats().loader.calls).toBe(1);
    await waitFor('health to be ok', () => ops.health().status === 'ok');
    expect(ops.health().redis.up).toBe(true);
    const text = await ops.metrics();
    expect(text).toMatch(/^tiercache_hits_total\{source="memory"\} 1$/m);
    expect(text).toMatch(/^tiercache_loader_calls_total 1$/m);
  });

  it('a misspelt environment variable is refused by name with a suggestion', () => {
    expect(() => createServiceCache({ TIERCACHE_GRCE: '1m' })).toThrow(
      /TIERCACHE_GRCE.*did you mean `TIERCACHE_GRACE`/s,
    );
    expect(() => createServiceCache({ TIERCACHE_TTL: '-5' })).toThrow(/TIERCACHE_TTL/);
  });
});

describe('(c) the view counter flushed every x-th view', () => {
  it('answers the live total, flushes every 16 views, and after close the database has every view exactly once', async () => {
    const cache = track(createCache({ prefix: uniquePrefix('seeds-views'), redis: redis.url }));
    const totals = new Map<string, number>([['7', 100]]);
    const applied: string[] = [];
    const db = {
      applyViews: async (deltas: ReadonlyMap<string, number>, batchId: string) => {
        if (applied.includes(batchId)) return;
        applied.push(batchId);
        for (const [id, delta] of deltas) totals.set(id, (totals.get(id) ?? 0) + delta);
      },
      viewCount: async (id: string) => totals.get(id) ?? 0,
    };
    const views = createViewCounter(cache, db);
    const answers: number[] = [];
    for (let i = 0; i < 20; i++) answers.push(await countView(views, 7));
    await waitFor('a flush after 16 views', () => applied.length >= 1);
    expect(totals.get('7')).toBeGreaterThanOrEqual(116); // 16 views or the few more counted while it started
    expect(totals.get('7')).toBeLessThanOrEqual(120);
    for (let i = 0; i < 20; i++) answers.push(await countView(views, 7));
    expect(answers[0]).toBe(101); // seeded from the database's 100
    expect(answers).toEqual(Array.from({ length: 40 }, (_, i) => 101 + i));
    expect(await views.get('7')).toBe(140);
    await cache.close();
    expect(totals.get('7')).toBe(140);
    expect(new Set(applied).size).toBe(applied.length);
    expect(applied.length).toBeGreaterThanOrEqual(2);
  });
});

describe('(d) the CQRS worker warms the lists, the API falls back to Postgres with meta.source', () => {
  const at = new Date('2026-11-30T09:00:00Z');
  const articles: Article[] = [
    { id: 1, category: 'sport', title: 'K League final', publishedAt: at },
    { id: 2, category: 'sport', title: 'KBO draft', publishedAt: at },
    { id: 3, category: 'tech', title: 'A new chip', publishedAt: at },
  ];

  it('the API reads what the worker warmed from Redis, and a list the worker did not write from the database', async () => {
    const prefix = uniquePrefix('seeds-news');
    const worker = track(createCache({ prefix, redis: redis.url }));
    const api = track(createCache({ prefix, redis: redis.url }));
    let queries = 0;
    const db = {
      latest: async (category: string) => {
        queries++;
        return articles.filter((a) => a.category === category);
      },
    };
    expect(await warmNewsLists(worker, articles)).toEqual({ written: 3, failed: 0 });

    const sport = await newsPage(api, db, 'sport');
    expect(sport.meta.source).toBe('redis');
    expect(sport.articles.map((a) => a.id)).toEqual([1, 2]);
    expect(sport.articles[0]?.publishedAt).toBeInstanceOf(Date);
    expect((await newsPage(api, db, 'all')).articles).toHaveLength(3);
    expect(queries).toBe(0);

    expect((await newsPage(api, db, 'culture')).meta.source).toBe('origin');
    expect((await newsPage(api, db, 'culture')).meta.source).toBe('memory');
    expect(queries).toBe(1);
  });

  it('a second warming replaces the API instance memory copy', async () => {
    const prefix = uniquePrefix('seeds-rewarm');
    const worker = track(createCache({ prefix, redis: redis.url }));
    const api = track(createCache({ prefix, redis: redis.url }));
    await Promise.all([worker.ready('2s'), api.ready('2s')]);
    const db = { latest: async () => [] };
    await warmNewsLists(worker, articles);
    expect((await newsPage(api, db, 'tech')).articles).toHaveLength(1);
    // The warm's own invalidations reach the API asynchronously (tracking): a read they overtake keeps no copy, so
    // the copy settles in memory once they have arrived.
    await waitFor(
      'the API to keep the tech list in memory',
      async () => (await newsPage(api, db, 'tech')).meta.source === 'memory',
    );
    await warmNewsLists(worker, [...articles, { id: 4, category: 'tech', title: 'Quantum', publishedAt: at }]);
    await waitFor(
      'the API to see the new tech list',
      async () => (await newsPage(api, db, 'tech')).articles.length === 2,
    );
  });
});

describe('(e) the trend batch evicts through the internal endpoint, best-effort', () => {
  const INTERNAL_KEY = 'seeds-internal-key';

  async function api(): Promise<{ cache: Cache; url: string }> {
    const cache = track(createCache({ prefix: uniquePrefix('seeds-trends'), redis: redis.url }));
    const evict = createEvictHandler({ cache, keys: INTERNAL_KEY, logger: { warn: () => undefined } });
    const url = await listen(createServer((req, res) => void evict(req, res)));
    return { cache, url: `${url}/internal/cache` };
  }

  it('with the right key the API drops trends:top after the upsert', async () => {
    const { cache, url } = await api();
    await cache.set('trends:top', [7, 3, 1], { ttl: '6h' });
    let upserted = false;
    const outcome = await runTrendBatch({
      evictUrl: url,
      internalKey: INTERNAL_KEY,
      upsertRanking: async () => {
        upserted = true;
      },
    });
    expect(upserted).toBe(true);
    expect(outcome).toEqual({ ok: true, status: 200 });
    expect(await cache.get('trends:top')).toBeUndefined();
  });

  it('with a wrong key the batch still succeeds, reports a 401, and the copy stays', async () => {
    const { cache, url } = await api();
    await cache.set('trends:top', [7, 3, 1], { ttl: '6h' });
    const outcome = await runTrendBatch({ evictUrl: url, internalKey: 'wrong', upsertRanking: async () => undefined });
    expect(outcome.ok).toBe(false);
    expect(outcome.status).toBe(401);
    expect(await cache.get('trends:top')).toEqual([7, 3, 1]);
  });

  it('with the API down or no URL configured the batch resolves without throwing', async () => {
    const down = await runTrendBatch({
      evictUrl: `${(await deadUrl()).replace('redis:', 'http:')}/internal/cache`,
      internalKey: INTERNAL_KEY,
      upsertRanking: async () => undefined,
    });
    expect(down.ok).toBe(false);
    expect(down.status).toBeUndefined();
    const disabled = await runTrendBatch({
      evictUrl: undefined,
      internalKey: undefined,
      upsertRanking: async () => undefined,
    });
    expect(disabled).toEqual({ ok: false, error: 'disabled' });
  });
});
