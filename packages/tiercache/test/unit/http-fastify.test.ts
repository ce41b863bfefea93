import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Cache } from '../../src/index.js';
import { ConfigurationError } from '../../src/errors.js';
import { createEvictHandler, evictPlugin } from '../../src/http/index.js';
import type { EvictPluginOptions } from '../../src/http/index.js';

const KEY = 'fastify-shared-key-0001';
const NEXT_KEY = 'fastify-shared-key-0002';

const apps: FastifyInstance[] = [];
const caches: Cache[] = [];
const servers: Server[] = [];
const logged: string[] = [];

async function seeded(keys = ['a', 'b', 'c']): Promise<Cache> {
  const cache = createCache({});
  caches.push(cache);
  for (const key of keys) await cache.set(key, `value of ${key}`);
  return cache;
}

async function app(options: Partial<EvictPluginOptions> & { cache: EvictPluginOptions['cache'] }) {
  const instance = Fastify();
  apps.push(instance);
  await instance.register(evictPlugin, {
    keys: [KEY, NEXT_KEY],
    logger: { warn: (message) => logged.push(message) },
    ...options,
  });
  await instance.ready();
  return instance;
}

async function present(cache: Cache, keys: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const key of keys) if (await cache.has(key)) out.push(key);
  return out;
}

afterEach(async () => {
  for (const line of logged.splice(0)) {
    expect(line).not.toContain(KEY);
    expect(line).not.toContain(NEXT_KEY);
  }
  await Promise.all(apps.splice(0).map((instance) => instance.close()));
  await Promise.all(servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

describe('evictPlugin', () => {
  it('evicts the listed keys at DELETE /internal/cache with the right key', async () => {
    const cache = await seeded();
    const instance = await app({ cache });
    const reply = await instance.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': KEY },
      payload: { keys: ['a', 'b'] },
    });
    expect(reply.statusCode).toBe(200);
    expect(reply.json()).toEqual({ evicted: { keys: 2, tags: 0, all: false } });
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(await present(cache, ['a', 'b', 'c'])).toEqual(['c']);
  });

  it('accepts the second rotation key and serves a configured path', async () => {
    const cache = await seeded();
    const instance = await app({ cache, path: '/ops/evict' });
    const reply = await instance.inject({
      method: 'DELETE',
      url: '/ops/evict',
      headers: { 'x-internal-key': NEXT_KEY },
      payload: { all: true },
    });
    expect(reply.statusCode).toBe(200);
    expect(await present(cache, ['a', 'b', 'c'])).toEqual([]);
  });

  for (const [what, key] of [
    ['a missing key', undefined],
    ['a wrong key', 'fastify-shared-key-0003'],
    ['a shorter key', KEY.slice(0, 5)],
    ['a longer key', `${KEY}0`],
  ] as const) {
    it(`answers 401 to ${what} and evicts nothing`, async () => {
      const cache = await seeded();
      const instance = await app({ cache });
      const reply = await instance.inject({
        method: 'DELETE',
        url: '/internal/cache',
        headers: key === undefined ? {} : { 'x-internal-key': key },
        payload: { keys: ['a'], all: true },
      });
      expect(reply.statusCode).toBe(401);
      expect(reply.json()).toEqual({ error: 'Missing or wrong key in the x-internal-key header' });
      expect(await present(cache, ['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    });
  }

  it('answers 401, not 413, to an unauthenticated oversize body: the key is checked before the body is read', async () => {
    const cache = await seeded();
    const instance = await app({ cache, maxBodyBytes: 64 });
    const reply = await instance.inject({
      method: 'DELETE',
      url: '/internal/cache',
      payload: { keys: ['a'.repeat(1000)] },
    });
    expect(reply.statusCode).toBe(401);
  });

  it('answers 413 in its own JSON shape to a body over the limit, and evicts nothing', async () => {
    const cache = await seeded();
    const instance = await app({ cache, maxBodyBytes: 1024 });
    const reply = await instance.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': KEY },
      payload: { keys: ['a', 'x'.repeat(2000)] },
    });
    expect(reply.statusCode).toBe(413);
    expect(reply.json()).toEqual({ error: 'The body exceeds 1024 bytes' });
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('answers 413 to an oversize chunked body over a real socket', async () => {
    const cache = await seeded();
    const instance = await app({ cache, maxBodyBytes: 1024 });
    await instance.listen({ port: 0, host: '127.0.0.1' });
    const port = (instance.server.address() as AddressInfo).port;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'DELETE',
          path: '/internal/cache',
          headers: { 'x-internal-key': KEY, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('{"keys":["a"],"pad":"');
      for (let i = 0; i < 8; i++) req.write('x'.repeat(512));
      req.end('"}');
    });
    expect(status).toBe(413);
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('answers tags without invalidateTags with 400', async () => {
    const cache = await seeded();
    const instance = await app({ cache: { deleteMany: (k) => cache.deleteMany(k), clear: () => cache.clear() } });
    const reply = await instance.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': KEY },
      payload: { tags: ['news'] },
    });
    expect(reply.statusCode).toBe(400);
    expect(reply.json()).toEqual({
      error: 'This cache does not support tag invalidation (it has no invalidateTags); send keys or all',
    });
  });

  it('refuses a hostile __proto__ body with 400 and pollutes nothing', async () => {
    const cache = await seeded();
    const instance = await app({ cache });
    const reply = await instance.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': KEY, 'content-type': 'application/json' },
      payload: '{"keys":["a"],"__proto__":{"polluted":true}}',
    });
    expect(reply.statusCode).toBe(400);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('answers every refusal in the shape errorBody builds, with the endpoint status and message', async () => {
    const cache = await seeded();
    const errorBody = ({ status, message }: { status: number; message: string }) => ({
      error: { code: `E${status}`, message },
    });
    const instance = await app({ cache, maxBodyBytes: 1024, errorBody });
    const cases = [
      {
        headers: {},
        payload: { keys: ['a'] },
        status: 401,
        message: 'Missing or wrong key in the x-internal-key header',
      },
      { headers: { 'x-internal-key': KEY }, payload: { key: ['a'] }, status: 400, message: /Unknown field/ },
      { headers: { 'x-internal-key': KEY }, payload: { keys: ['x'.repeat(2000)] }, status: 413, message: /1024 bytes/ },
    ];
    for (const { headers, payload, status, message } of cases) {
      const reply = await instance.inject({ method: 'DELETE', url: '/internal/cache', headers, payload });
      expect(reply.statusCode).toBe(status);
      expect(reply.json()).toEqual({ error: { code: `E${status}`, message: expect.stringMatching(message) } });
    }
    const done = await instance.inject({
      method: 'DELETE',
      url: '/internal/cache',
      headers: { 'x-internal-key': KEY },
      payload: { keys: ['a'] },
    });
    expect(done.json()).toEqual({ evicted: { keys: 1, tags: 0, all: false } });
  });

  it('throws a ConfigurationError at registration for an empty key', async () => {
    const instance = Fastify();
    apps.push(instance);
    const cache = await seeded([]);
    await expect(instance.register(evictPlugin, { cache, keys: '' })).rejects.toBeInstanceOf(ConfigurationError);
  });

  it('leaves the host application its own body parsers and error handler (encapsulation is kept)', async () => {
    const cache = await seeded();
    const instance = Fastify();
    apps.push(instance);
    instance.setErrorHandler((_error, _request, reply) => reply.code(418).send({ host: 'handler' }));
    instance.post('/echo', async (req) => ({ type: typeof req.body, body: req.body }));
    instance.get('/boom', async () => {
      throw new Error('boom');
    });
    await instance.register(evictPlugin, { cache, keys: KEY });
    const echoed = await instance.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
    expect(echoed.json()).toEqual({ type: 'object', body: { a: 1 } });
    const text = await instance.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'text/x-unknown' },
      payload: 'hi',
    });
    expect(text.statusCode).toBe(418);
    expect((await instance.inject({ method: 'GET', url: '/boom' })).json()).toEqual({ host: 'handler' });
  });

  it('answers every body exactly as the plain Node handler does', async () => {
    const cacheForPlugin = await seeded(['a', 'b']);
    const cacheForHandler = await seeded(['a', 'b']);
    const instance = await app({ cache: cacheForPlugin, maxBodyBytes: 4096 });
    const handler = createEvictHandler({ cache: cacheForHandler, keys: [KEY, NEXT_KEY], maxBodyBytes: 4096 });
    const server = createServer((req, res) => void handler(req, res));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;

    const bodies = [
      '',
      'not json',
      '[]',
      '{}',
      '{"keys":"a"}',
      '{"keys":[""]}',
      '{"tags":[1]}',
      '{"all":1}',
      '{"nope":true}',
      '{"keys":["a"],"__proto__":{}}',
      JSON.stringify({ keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }),
      'x'.repeat(5000),
      '{"keys":["b","zz"]}',
      '{"all":true}',
    ];
    for (const body of bodies) {
      const viaPlugin = await instance.inject({
        method: 'DELETE',
        url: '/internal/cache',
        headers: { 'x-internal-key': KEY, 'content-type': 'application/json' },
        payload: body,
      });
      const viaHandler = await fetch(`http://127.0.0.1:${port}/internal/cache`, {
        method: 'DELETE',
        headers: { 'x-internal-key': KEY, 'content-type': 'application/json' },
        body,
      });
      const label = body.slice(0, 40);
      expect(viaPlugin.statusCode, label).toBe(viaHandler.status);
      expect(viaPlugin.json(), label).toEqual(await viaHandler.json());
    }
    expect(await present(cacheForPlugin, ['a', 'b'])).toEqual([]);
  });
});
