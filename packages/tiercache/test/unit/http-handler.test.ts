import { createServer, request } from 'node:http';
import type { OutgoingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Cache } from '../../src/index.js';
import { ConfigurationError } from '../../src/errors.js';
import { createEvictHandler } from '../../src/http/index.js';
import type { EvictHandlerOptions, EvictableCache } from '../../src/http/index.js';

const KEY = 'k3y-0f-the-api-2026-rotation-a';
const NEXT_KEY = 'k3y-0f-the-api-2026-rotation-b';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: unknown;
}

/**
 * A raw request, so tests control headers, chunking and body size exactly. Node's client sends a DELETE body with no
 * framing unless told, so the length (or chunked encoding) is set here.
 */
function send(
  port: number,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer; chunks?: Buffer[] } = {},
): Promise<Reply> {
  const headers: OutgoingHttpHeaders = { ...options.headers };
  if (options.chunks) headers['transfer-encoding'] = 'chunked';
  else if (options.body !== undefined) headers['content-length'] ??= Buffer.byteLength(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/internal/cache',
        method: options.method ?? 'DELETE',
        headers,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else req.end(options.body);
  });
}

/** `key: null` sends no key header at all. */
function json(body: unknown, key: string | null = KEY): { headers: OutgoingHttpHeaders; body: string } {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return {
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { 'x-internal-key': key }) },
    body: text,
  };
}

const servers: Server[] = [];
const caches: Cache[] = [];
const logged: string[] = [];
const logger = { warn: (message: string) => logged.push(message) };

async function serve(options: Partial<EvictHandlerOptions> & { cache: EvictableCache }): Promise<number> {
  const handler = createEvictHandler({ keys: [KEY, NEXT_KEY], logger, ...options });
  const server = createServer((req, res) => void handler(req, res));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function memoryCache(options: Parameters<typeof createCache>[0] = {}): Cache {
  const cache = createCache(options);
  caches.push(cache);
  return cache;
}

async function seeded(keys = ['a', 'b', 'c']): Promise<Cache> {
  const cache = memoryCache();
  for (const key of keys) await cache.set(key, `value of ${key}`);
  return cache;
}

async function present(cache: Cache, keys: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const key of keys) if (await cache.has(key)) out.push(key);
  return out;
}

beforeEach(() => {
  logged.length = 0;
});

afterEach(async () => {
  // Whatever a test did, neither key may ever reach a log line.
  for (const line of logged) {
    expect(line).not.toContain(KEY);
    expect(line).not.toContain(NEXT_KEY);
  }
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
  await Promise.all(caches.splice(0).map((cache) => cache.close()));
});

afterAll(() => {
  expect(Object.prototype).not.toHaveProperty('polluted');
});

describe('createEvictHandler: the shared key', () => {
  it('evicts the listed keys with the right key and answers how many existed', async () => {
    const cache = await seeded();
    const port = await serve({ cache });
    const reply = await send(port, json({ keys: ['a', 'b', 'never-set'] }));
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ evicted: { keys: 2, tags: 0, all: false } });
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('no-store');
    expect(await present(cache, ['a', 'b', 'c'])).toEqual(['c']);
  });

  it('accepts the second key of a rotation pair as well as the first', async () => {
    const cache = await seeded();
    const port = await serve({ cache });
    expect((await send(port, json({ keys: ['a'] }, NEXT_KEY))).status).toBe(200);
    expect((await send(port, json({ keys: ['b'] }, KEY))).status).toBe(200);
    expect(await present(cache, ['a', 'b', 'c'])).toEqual(['c']);
  });

  it('accepts a single key given as a string', async () => {
    const cache = await seeded();
    const port = await serve({ cache, keys: KEY });
    expect((await send(port, json({ keys: ['a'] }, NEXT_KEY))).status).toBe(401);
    expect((await send(port, json({ keys: ['a'] }, KEY))).status).toBe(200);
  });

  const refused: [string, string | null][] = [
    ['a missing key', null],
    ['an empty key', ''],
    ['a wrong key of the same length', KEY.replace(/a$/, 'z')],
    ['a shorter key (a prefix of the right one)', KEY.slice(0, -1)],
    ['a longer key (the right one and more)', `${KEY}x`],
    ['the right key in another case', KEY.toUpperCase()],
    ['the right key with a trailing space inside quotes', `"${KEY}"`],
    ['a very long key', 'x'.repeat(8000)],
  ];
  for (const [what, key] of refused) {
    it(`answers 401 to ${what} and evicts nothing`, async () => {
      const cache = await seeded();
      const port = await serve({ cache });
      const reply = await send(port, json({ keys: ['a', 'b'], all: true }, key));
      expect(reply.status).toBe(401);
      expect(reply.json).toEqual({ error: 'Missing or wrong key in the x-internal-key header' });
      expect(reply.text).not.toContain(KEY);
      expect(await present(cache, ['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
      expect(logged.some((line) => line.includes('refused an eviction'))).toBe(true);
    });
  }

  it('answers 401 when the key is sent twice, even if one copy is right', async () => {
    const cache = await seeded();
    const port = await serve({ cache });
    const reply = await send(port, {
      headers: { 'content-type': 'application/json', 'x-internal-key': [KEY, KEY] },
      body: JSON.stringify({ keys: ['a'] }),
    });
    expect(reply.status).toBe(401);
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('reads the key from a configured header, case-insensitively', async () => {
    const cache = await seeded();
    const port = await serve({ cache, header: 'X-Cache-Token' });
    expect((await send(port, json({ keys: ['a'] }))).status).toBe(401);
    const reply = await send(port, {
      headers: { 'content-type': 'application/json', 'x-cache-token': KEY },
      body: '{"keys":["a"]}',
    });
    expect(reply.status).toBe(200);
    expect(await present(cache, ['a'])).toEqual([]);
  });

  it('checks the key before reading the body, so an unauthenticated oversize body gets 401', async () => {
    const cache = await seeded();
    const port = await serve({ cache, maxBodyBytes: 100 });
    const reply = await send(port, json({ keys: ['a'.repeat(500)] }, 'wrong'));
    expect(reply.status).toBe(401);
  });
});

describe('createEvictHandler: the request', () => {
  it('answers 405 with an Allow header to any method but DELETE', async () => {
    const cache = await seeded();
    const port = await serve({ cache });
    for (const method of ['GET', 'POST', 'PUT', 'PATCH']) {
      const reply = await send(port, { method, ...json({ keys: ['a'] }) });
      expect(reply.status, method).toBe(405);
      expect(reply.headers['allow']).toBe('DELETE');
    }
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('answers 413 to a declared Content-Length over the limit, without reading it, and evicts nothing', async () => {
    const cache = await seeded();
    const port = await serve({ cache, maxBodyBytes: 1024 });
    const body = JSON.stringify({ keys: ['a'], pad: 'x'.repeat(2000) });
    const reply = await send(port, json(body));
    expect(reply.status).toBe(413);
    expect(reply.json).toEqual({ error: 'The body exceeds 1024 bytes' });
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('answers 413 to a chunked body as soon as it crosses the limit, and the client reads the answer', async () => {
    const cache = await seeded();
    const port = await serve({ cache, maxBodyBytes: 64 * 1024 });
    // 200 KiB in 4 KiB chunks without a Content-Length: the handler must stop buffering at 64 KiB.
    const chunks = Array.from({ length: 50 }, () => Buffer.alloc(4096, 0x20));
    chunks[0] = Buffer.from('{"keys":["a"]}'.padEnd(4096, ' '));
    const reply = await send(port, { headers: { 'x-internal-key': KEY }, chunks });
    expect(reply.status).toBe(413);
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('closes the connection behind a 413 when the body is far too large to drain', async () => {
    const cache = await seeded();
    const port = await serve({ cache, maxBodyBytes: 1024 });
    const chunks = Array.from({ length: 40 }, () => Buffer.alloc(64 * 1024, 0x20));
    // The client may see the 413 or a reset, depending on how much it had written when the socket closed.
    const outcome = await send(port, { headers: { 'x-internal-key': KEY }, chunks }).then(
      (reply) => reply.status,
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect([413, 'ECONNRESET', 'EPIPE']).toContain(outcome);
    expect(await present(cache, ['a'])).toEqual(['a']);
    // The server is still serving.
    expect((await send(port, json({ keys: ['a'] }))).status).toBe(200);
  });

  it('accepts a body of exactly the limit', async () => {
    const cache = await seeded();
    const port = await serve({ cache, maxBodyBytes: 256 });
    const body = '{"keys":["a"]}'.padEnd(256, ' ');
    const reply = await send(port, json(body));
    expect(reply.status).toBe(200);
    expect(await present(cache, ['a'])).toEqual([]);
  });

  const malformed: [string, string][] = [
    ['an empty body', ''],
    ['malformed JSON', '{"keys": ["a"'],
    ['a JSON array', '["a"]'],
    ['a JSON string', '"a"'],
    ['null', 'null'],
    ['an empty object', '{}'],
    ['an unknown field', '{"key": ["a"]}'],
    ['keys that are not an array', '{"keys": "a"}'],
    ['a key that is not a string', '{"keys": ["b", 1]}'],
    ['an empty key', '{"keys": ["b", ""]}'],
    ['tags that are not strings', '{"tags": [null]}'],
    ['a tag over 256 characters', JSON.stringify({ tags: ['t'.repeat(257)] })],
    ['all that is not a boolean', '{"all": "yes"}'],
    ['more keys than the cap', JSON.stringify({ keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) })],
  ];
  for (const [what, body] of malformed) {
    it(`answers 400 to ${what} and evicts nothing`, async () => {
      const cache = await seeded(['a', 'b']);
      const port = await serve({ cache, maxBodyBytes: 1024 * 1024 });
      const reply = await send(port, json(body));
      expect(reply.status).toBe(400);
      expect(reply.json).toEqual({ error: expect.any(String) });
      expect(await present(cache, ['a', 'b'])).toEqual(['a', 'b']);
    });
  }

  it('refuses hostile __proto__ and constructor bodies without polluting any prototype', async () => {
    const cache = await seeded();
    const port = await serve({ cache });
    for (const body of [
      '{"__proto__": {"polluted": true}, "keys": ["a"]}',
      '{"keys": ["a"], "constructor": {"prototype": {"polluted": true}}}',
      '{"keys": ["a"], "__proto__": {"all": true}}',
    ]) {
      const reply = await send(port, json(body));
      expect(reply.status, body).toBe(400);
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(({} as Record<string, unknown>)['all']).toBeUndefined();
    expect(await present(cache, ['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
  });

  it('answers 200 to an empty list of keys, evicting nothing', async () => {
    const cache = await seeded();
    const port = await serve({ cache });
    const reply = await send(port, json({ keys: [] }));
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ evicted: { keys: 0, tags: 0, all: false } });
  });

  it('honours a lower maxItems', async () => {
    const cache = await seeded();
    const port = await serve({ cache, maxItems: 2 });
    expect((await send(port, json({ keys: ['a', 'b', 'c'] }))).status).toBe(400);
    expect((await send(port, json({ keys: ['a', 'b'] }))).status).toBe(200);
  });

  it('accepts a body whatever its declared content type, like a curl -d default', async () => {
    const cache = await seeded();
    const port = await serve({ cache });
    const reply = await send(port, {
      headers: { 'x-internal-key': KEY, 'content-type': 'application/x-www-form-urlencoded' },
      body: '{"keys":["a"]}',
    });
    expect(reply.status).toBe(200);
  });
});

describe('createEvictHandler: tags and all', () => {
  it('answers 400 to tags when the cache cannot invalidate tags, and evicts none of the keys sent with them', async () => {
    const cache = await seeded();
    const port = await serve({ cache: { deleteMany: (k) => cache.deleteMany(k), clear: () => cache.clear() } });
    const reply = await send(port, json({ keys: ['a'], tags: ['news'] }));
    expect(reply.status).toBe(400);
    expect(reply.json).toEqual({
      error: 'This cache does not support tag invalidation (it has no invalidateTags); send keys or all',
    });
    expect(await present(cache, ['a'])).toEqual(['a']);
  });

  it('passes tags to invalidateTags when the cache has it', async () => {
    const cache = await seeded();
    // A real cache plus tag bookkeeping of its own, standing in for the facade's invalidateTags until it lands.
    const byTag = new Map([['news', ['a', 'b']]]);
    const invalidated: string[][] = [];
    const tagged: EvictableCache = {
      deleteMany: (keys) => cache.deleteMany(keys),
      clear: () => cache.clear(),
      invalidateTags: async (tags) => {
        invalidated.push([...tags]);
        await cache.deleteMany(tags.flatMap((tag) => byTag.get(tag) ?? []));
      },
    };
    const port = await serve({ cache: tagged });
    const reply = await send(port, json({ tags: ['news', 'sports'] }));
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ evicted: { keys: 0, tags: 2, all: false } });
    expect(invalidated).toEqual([['news', 'sports']]);
    expect(await present(cache, ['a', 'b', 'c'])).toEqual(['c']);
  });

  it('clears only the cache it was given: a namespace, not its parent', async () => {
    const root = memoryCache({ prefix: 'app' });
    const users = root.namespace('user');
    const others = root.namespace('users');
    await users.set('1', 'u1');
    await others.set('1', 'us1');
    await root.set('top', 't');
    const port = await serve({ cache: users });
    const reply = await send(port, json({ all: true }));
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ evicted: { keys: 0, tags: 0, all: true } });
    expect(await users.has('1')).toBe(false);
    expect(await others.has('1')).toBe(true);
    expect(await root.has('top')).toBe(true);
  });

  it('answers 400 to a key the cache refuses (too long), evicting nothing', async () => {
    const cache = memoryCache({ maxKeyLength: 8 });
    await cache.set('a', 1);
    const port = await serve({ cache });
    const reply = await send(port, json({ keys: ['a', 'much-too-long-key'] }));
    expect(reply.status).toBe(400);
    expect(await cache.has('a')).toBe(true);
  });

  it('answers 503 with a JSON error when the cache fails, and logs why without the key', async () => {
    const cache = await seeded();
    await cache.close();
    const port = await serve({ cache });
    const reply = await send(port, json({ keys: ['a'] }));
    expect(reply.status).toBe(503);
    expect(reply.json).toEqual({ error: 'The eviction could not be completed; it is safe to retry' });
    expect(logged.some((line) => line.includes('eviction failed (TIERCACHE_CLOSED)'))).toBe(true);
  });

  it('answers 503 when a custom cache rejects with something that is not an Error', async () => {
    const port = await serve({
      cache: { deleteMany: () => Promise.reject('boom' as unknown as Error), clear: () => Promise.resolve() },
    });
    const reply = await send(port, json({ keys: ['a'] }));
    expect(reply.status).toBe(503);
  });
});

describe('createEvictHandler: configuration', () => {
  const cache = { deleteMany: () => Promise.resolve(0), clear: () => Promise.resolve() };
  const invalid: [string, unknown][] = [
    ['an empty key', ''],
    ['an empty list', []],
    ['an empty second key', [KEY, '']],
    ['three keys', [KEY, NEXT_KEY, 'third']],
    ['a key that is not a string', [KEY, 42]],
    ['no keys at all', undefined],
  ];
  for (const [what, keys] of invalid) {
    it(`refuses ${what} with a ConfigurationError that does not show the keys`, () => {
      let thrown: unknown;
      try {
        createEvictHandler({ cache, keys: keys as string });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigurationError);
      expect((thrown as Error).message).not.toContain(KEY);
    });
  }

  it('refuses a cache without deleteMany, a bad header name, and a non-positive body limit', () => {
    expect(() => createEvictHandler({ cache: {} as EvictableCache, keys: KEY })).toThrow(ConfigurationError);
    expect(() => createEvictHandler({ cache, keys: KEY, header: 'x key' })).toThrow(ConfigurationError);
    expect(() => createEvictHandler({ cache, keys: KEY, maxBodyBytes: 0 })).toThrow(ConfigurationError);
    expect(() => createEvictHandler({ cache, keys: KEY, maxItems: 1.5 })).toThrow(ConfigurationError);
  });

  it('answers a 405 in the shape errorBody builds, and the default shape when errorBody throws', async () => {
    const cache = await seeded();
    const shaped = await serve({ cache, errorBody: ({ status, message }) => ({ problem: { status, message } }) });
    const res = await send(shaped, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(JSON.parse(res.text)).toEqual({ problem: { status: 405, message: 'Use DELETE' } });

    const broken = await serve({
      cache,
      errorBody: () => {
        throw new Error('shape bug');
      },
    });
    const fallback = await send(broken, { method: 'POST' });
    expect(JSON.parse(fallback.text)).toEqual({ error: 'Use DELETE' });
    expect(logged.some((line) => line.includes('errorBody failed: shape bug'))).toBe(true);
    logged.length = 0;
  });

  it('keeps answering when the logger throws', async () => {
    const memory = await seeded();
    const port = await serve({
      cache: memory,
      logger: {
        warn: () => {
          throw new Error('logger down');
        },
      },
    });
    expect((await send(port, json({ keys: ['a'] }, 'wrong'))).status).toBe(401);
  });
});
