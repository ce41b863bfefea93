import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_KEY, startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { freePort } from './helpers/net.js';

/**
 * Every error the service answers, through `app.inject()`: one body shape, `{ error: { code, message } }` with nothing
 * else in it, and `x-db-queries` on each answer — whoever produced it (a route, the body parser, the router, the evict
 * endpoint). The app runs on PGlite with Redis at a port nobody listens on: none of these depend on Redis.
 */

let t: TestApp;
beforeAll(async () => {
  t = await startApp({
    database: { kind: 'pglite' },
    env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
    waitForRedis: false,
  });
});
afterAll(async () => {
  await t.close();
});

/** The one error shape, the status and the query-count header of an answer. */
function expectError(res: LightMyRequestResponse, status: number, code: string, message: string | RegExp): void {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<{ error: { code: string; message: string } }>();
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.code).toBe(code);
  if (typeof message === 'string') expect(body.error.message).toBe(message);
  else expect(body.error.message).toMatch(message);
  expect(res.headers['x-db-queries'], 'x-db-queries').toMatch(/^\d+$/);
}

const ID_MESSAGE = /^id: expected a whole number from 1 to 2147483647 written without sign or leading zeros, got "/;

describe('error answers', () => {
  it('answers 404 NOT_FOUND for a product that does not exist, after the one query that looked for it', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/products/999' });
    expectError(res, 404, 'NOT_FOUND', 'No product 999');
    expect(res.headers['x-db-queries']).toBe('1');
  });

  it('answers 404 NOT_FOUND for an unknown path, with no query and without echoing the query string', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/nothing/here?secret=1' });
    expectError(res, 404, 'NOT_FOUND', 'No route GET /nothing/here');
    expect(res.headers['x-db-queries']).toBe('0');
  });

  it('answers 405 METHOD_NOT_ALLOWED with an allow header to a known path asked with another method', async () => {
    const post = await t.app.inject({ method: 'POST', url: '/products/7', payload: { name: 'x' } });
    expectError(post, 405, 'METHOD_NOT_ALLOWED', 'POST is not allowed here; use GET or HEAD or PUT');
    expect(post.headers['allow']).toBe('GET, HEAD, PUT');
    expect(post.headers['x-db-queries']).toBe('0');

    const evict = await t.app.inject({ method: 'POST', url: '/internal/cache', payload: 'not even json' });
    expectError(evict, 405, 'METHOD_NOT_ALLOWED', /use DELETE$/);
    expect(evict.headers['allow']).toBe('DELETE');

    const news = await t.app.inject({ method: 'DELETE', url: '/news' });
    expectError(news, 405, 'METHOD_NOT_ALLOWED', /use GET or HEAD$/);
  });

  it('answers one 400 BAD_REQUEST message to every id that is not written as a plain positive number', async () => {
    for (const id of ['1e1', '007', '-1', '0', '+7', '7.0', '0x10', 'abc', '2147483648', '99999999999999999999999']) {
      const res = await t.app.inject({ method: 'GET', url: `/products/${id}` });
      expectError(res, 400, 'BAD_REQUEST', ID_MESSAGE);
      expect(res.json<{ error: { message: string } }>().error.message).toContain(`got "${id}"`);
      expect(res.headers['x-db-queries'], id).toBe('0');
    }
    expectError(await t.app.inject({ method: 'GET', url: '/news/010' }), 400, 'BAD_REQUEST', ID_MESSAGE);
    expectError(
      await t.app.inject({ method: 'PUT', url: '/products/1e1', payload: { stock: 1 } }),
      400,
      'BAD_REQUEST',
      ID_MESSAGE,
    );
    expect((await t.app.inject({ method: 'GET', url: '/products/2147483647' })).statusCode).toBe(404);
  });

  it('answers 400 BAD_REQUEST to malformed JSON, in words that do not name Fastify', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/products/7',
      headers: { 'content-type': 'application/json' },
      payload: '{"stock":',
    });
    expectError(res, 400, 'BAD_REQUEST', 'Expected a JSON body, got malformed JSON');
    expect(res.headers['x-db-queries']).toBe('0');
  });

  it('answers 415 UNSUPPORTED_MEDIA_TYPE to a body that is not JSON', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/products/7',
      headers: { 'content-type': 'application/xml' },
      payload: '<stock>1</stock>',
    });
    expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Expected content-type application/json');
  });

  it('answers 413 PAYLOAD_TOO_LARGE to a body over the 64 KiB limit', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/products/7',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ description: 'x'.repeat(70_000) }),
    });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE', /./);
  });

  it('answers 400 BAD_REQUEST naming the field for a body the route refuses', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/products/7', payload: { priceCents: -1 } });
    expectError(res, 400, 'BAD_REQUEST', /^priceCents: /);
  });

  it('answers the evict endpoint refusals in the same shape: 401 for a wrong key, 400 for a bad body', async () => {
    const refused = await t.app.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': 'not-the-key' },
      payload: { keys: ['product:1'] },
    });
    expectError(refused, 401, 'UNAUTHORIZED', 'Missing or wrong key in the x-internal-key header');
    expect(refused.headers['x-db-queries']).toBe('0');

    const malformed = await t.app.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': INTERNAL_KEY, 'content-type': 'application/json' },
      payload: '{"keys":',
    });
    expectError(malformed, 400, 'BAD_REQUEST', 'Expected a JSON body, got malformed JSON');

    const unknown = await t.app.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': INTERNAL_KEY },
      payload: { key: ['product:1'] },
    });
    expectError(unknown, 400, 'BAD_REQUEST', /^Unknown field "key"/);
  });
});

describe('without Redis', () => {
  it('evicts the memory copy through the endpoint, counts it, and the next read goes to the database', async () => {
    await t.app.inject({ method: 'GET', url: '/products/20' });
    const hit = await t.app.inject({ method: 'GET', url: '/products/20' });
    expect(hit.json<{ meta: { source: string } }>().meta.source).toBe('memory');

    const done = await t.app.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': INTERNAL_KEY },
      payload: { keys: ['product:20', 'product:21'] },
    });
    expect(done.statusCode).toBe(200);
    expect(done.headers['x-db-queries']).toBe('0');
    // One of the two keys had a copy (in memory: there is no Redis), so one key was evicted.
    expect(done.json()).toEqual({ evicted: { keys: 1, tags: 0, all: false } });

    const after = await t.app.inject({ method: 'GET', url: '/products/20' });
    expect(after.json<{ meta: { source: string } }>().meta.source).toBe('origin');
    expect(after.headers['x-db-queries']).toBe('4');
  });
});

describe('query parameters', () => {
  it('treats empty parameters as unset, so the documented template /news?category=&cursor=&limit= works', async () => {
    for (const url of ['/news?category=&cursor=&limit=', '/news?limit=', '/news?category=']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.json<{ page: { limit: number } }>().page.limit, url).toBe(10);
    }
    expectError(await t.app.inject({ method: 'GET', url: '/news?limit=0' }), 400, 'BAD_REQUEST', /^limit: /);
  });
});
