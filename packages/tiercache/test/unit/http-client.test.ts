import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import type { Cache } from '../../src/index.js';
import { ConfigurationError } from '../../src/errors.js';
import { createEvictHandler, createInvalidationClient } from '../../src/http/index.js';

const KEY = 'client-shared-key-7f3a';

const closers: (() => Promise<void>)[] = [];
const warned: string[] = [];
const informed: string[] = [];
const logger = { warn: (m: string) => warned.push(m), info: (m: string) => informed.push(m) };

beforeEach(() => {
  warned.length = 0;
  informed.length = 0;
});

afterEach(async () => {
  for (const line of [...warned, ...informed]) expect(line).not.toContain(KEY);
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen(server: Server | TcpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** An HTTP server that answers with the handler (or `respond`), counting requests. */
async function httpServer(
  respond: (req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>,
): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const server = createServer((req, res) => void respond(req, res, ++n));
  const port = await listen(server);
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}/internal/cache`, requests: () => n };
}

async function evictServer(cache: Cache) {
  const handler = createEvictHandler({ cache, keys: KEY });
  return httpServer((req, res) => handler(req, res));
}

/** Accepts connections and never answers: a hung API. */
async function blackhole(): Promise<{ url: string; accepted: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createTcpServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume();
  });
  const port = await listen(server);
  closers.push(
    () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}/internal/cache`, accepted: () => accepted };
}

/** A port with nothing listening: bind, read the port, close. */
async function deadUrl(): Promise<string> {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/internal/cache`;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work();
  return { value, ms: performance.now() - start };
}

async function seeded(): Promise<Cache> {
  const cache = createCache({});
  closers.push(() => cache.close());
  await cache.set('a', 1);
  await cache.set('b', 2);
  return cache;
}

describe('createInvalidationClient', () => {
  it('evicts through the endpoint and resolves { ok: true, status: 200 }', async () => {
    const cache = await seeded();
    const { url } = await evictServer(cache);
    const client = createInvalidationClient({ url, key: KEY, logger });
    expect(client.enabled).toBe(true);
    expect(await client.evict({ keys: ['a'] })).toEqual({ ok: true, status: 200 });
    expect(await cache.has('a')).toBe(false);
    expect(await cache.has('b')).toBe(true);
    expect(warned).toEqual([]);
  });

  it('resolves { ok: false, status: 401 } with the server message for a wrong key, without retrying', async () => {
    const cache = await seeded();
    const handler = createEvictHandler({ cache, keys: KEY });
    const server = await httpServer((req, res) => handler(req, res));
    const client = createInvalidationClient({ url: server.url, key: 'not-the-key', retries: 3, logger });
    expect(await client.evict({ keys: ['a'] })).toEqual({
      ok: false,
      status: 401,
      error: 'Missing or wrong key in the x-internal-key header',
    });
    expect(server.requests()).toBe(1);
    expect(await cache.has('a')).toBe(true);
  });

  it('reads the message of an endpoint that answers in an { error: { code, message } } shape', async () => {
    const cache = await seeded();
    const handler = createEvictHandler({
      cache,
      keys: KEY,
      errorBody: ({ message }) => ({ error: { code: 'UNAUTHORIZED', message } }),
    });
    const server = await httpServer((req, res) => handler(req, res));
    const client = createInvalidationClient({ url: server.url, key: 'not-the-key', logger });
    expect(await client.evict({ keys: ['a'] })).toEqual({
      ok: false,
      status: 401,
      error: 'Missing or wrong key in the x-internal-key header',
    });
  });

  it('sends the key in a configured header', async () => {
    const cache = await seeded();
    const handler = createEvictHandler({ cache, keys: KEY, header: 'x-evict-token' });
    const server = await httpServer((req, res) => handler(req, res));
    const client = createInvalidationClient({ url: server.url, key: KEY, header: 'X-Evict-Token', logger });
    expect(await client.evict({ all: true })).toEqual({ ok: true, status: 200 });
    expect(await cache.has('b')).toBe(false);
  });

  it('resolves { ok: false } quickly against a dead port, within its timeout, after its retries', async () => {
    const client = createInvalidationClient({ url: await deadUrl(), key: KEY, timeout: '2s', retries: 2, logger });
    const { value, ms } = await timed(() => client.evict({ keys: ['a'] }));
    expect(value).toEqual({ ok: false, error: 'ECONNREFUSED' });
    expect(ms).toBeLessThan(2000);
    expect(warned).toHaveLength(1);
  });

  it('resolves { ok: false, error: "timeout" } within its timeout against a server that never answers', async () => {
    const hung = await blackhole();
    const client = createInvalidationClient({ url: hung.url, key: KEY, timeout: 400, retries: 1, logger });
    const { value, ms } = await timed(() => client.evict({ keys: ['a'] }));
    expect(value).toEqual({ ok: false, error: 'timeout' });
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(400 + 250);
    expect(hung.accepted()).toBe(1);
  });

  it('retries a 5xx with backoff and reports success when a later attempt succeeds', async () => {
    const cache = await seeded();
    const handler = createEvictHandler({ cache, keys: KEY });
    const server = await httpServer(async (req, res, n) => {
      if (n === 1) {
        res.statusCode = 503;
        res.end('{"error":"restarting"}');
        return;
      }
      await handler(req, res);
    });
    const client = createInvalidationClient({ url: server.url, key: KEY, retries: 1, logger });
    expect(await client.evict({ keys: ['a'] })).toEqual({ ok: true, status: 200 });
    expect(server.requests()).toBe(2);
    expect(warned).toEqual([]);
  });

  it('gives up after its retries on a persistent 5xx and reports the last status', async () => {
    const server = await httpServer((_req, res) => {
      res.statusCode = 502;
      res.end('bad gateway');
    });
    const client = createInvalidationClient({ url: server.url, key: KEY, retries: 2, logger });
    expect(await client.evict({ keys: ['a'] })).toEqual({ ok: false, status: 502, error: 'bad gateway' });
    expect(server.requests()).toBe(3);
  });

  it('does not retry at all with retries: 0', async () => {
    const server = await httpServer((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const client = createInvalidationClient({ url: server.url, key: KEY, retries: 0, logger });
    expect(await client.evict({ keys: ['a'] })).toEqual({ ok: false, status: 500 });
    expect(server.requests()).toBe(1);
  });

  it('warns once per failure streak, says when it works again, and warns again on the next streak', async () => {
    let up = false;
    const cache = await seeded();
    const handler = createEvictHandler({ cache, keys: KEY });
    const server = await httpServer(async (req, res) => {
      if (up) return handler(req, res);
      res.statusCode = 503;
      res.end();
    });
    const client = createInvalidationClient({ url: `${server.url}?token=q-secret`, key: KEY, retries: 0, logger });
    for (let i = 0; i < 5; i++) expect((await client.evict({ keys: ['a'] })).ok).toBe(false);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('cache invalidation at http://127.0.0.1:');
    expect(warned[0]).toContain('HTTP 503');
    expect(warned[0]).not.toContain('q-secret');
    up = true;
    expect((await client.evict({ keys: ['a'] })).ok).toBe(true);
    expect((await client.evict({ keys: ['b'] })).ok).toBe(true);
    expect(informed).toHaveLength(1);
    expect(informed[0]).toContain('works again after 5 failed calls');
    up = false;
    for (let i = 0; i < 3; i++) await client.evict({ keys: ['a'] });
    expect(warned).toHaveLength(2);
  });

  it('is disabled without a URL: sends nothing, resolves { ok: false, error: "disabled" }, logs one line once', async () => {
    for (const url of [undefined, '']) {
      warned.length = 0;
      const client = createInvalidationClient({ url, key: undefined, logger });
      expect(client.enabled).toBe(false);
      for (let i = 0; i < 3; i++) expect(await client.evict({ keys: ['a'] })).toEqual({ ok: false, error: 'disabled' });
      expect(warned).toHaveLength(1);
      expect(warned[0]).toContain('disabled');
    }
  });

  it('never rejects, even for a body that cannot be encoded or a logger that throws', async () => {
    const throwing = {
      warn: () => {
        throw new Error('logger down');
      },
    };
    const client = createInvalidationClient({ url: await deadUrl(), key: KEY, logger: throwing });
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect((await client.evict(cyclic as never)).ok).toBe(false);
    expect(await client.evict({ keys: ['a'] })).toEqual({ ok: false, error: 'ECONNREFUSED' });
    const disabled = createInvalidationClient({ logger: throwing });
    expect(await disabled.evict({ all: true })).toEqual({ ok: false, error: 'disabled' });
  });

  it('refuses options that can never work at construction, without echoing the URL or the key', () => {
    const attempts: [string, () => unknown][] = [
      ['a URL without a key', () => createInvalidationClient({ url: 'http://127.0.0.1:1/x' })],
      ['a malformed URL', () => createInvalidationClient({ url: 'not a url with secret-bits', key: KEY })],
      ['a non-HTTP URL', () => createInvalidationClient({ url: 'ftp://host/secret-bits', key: KEY })],
      ['a negative timeout', () => createInvalidationClient({ url: 'http://h/', key: KEY, timeout: -1 })],
      ['a timeout string that is not a duration', () => createInvalidationClient({ timeout: 'soon' })],
      ['too many retries', () => createInvalidationClient({ url: 'http://h/', key: KEY, retries: 50 })],
      ['fractional retries', () => createInvalidationClient({ url: 'http://h/', key: KEY, retries: 1.5 })],
      ['a bad header name', () => createInvalidationClient({ url: 'http://h/', key: KEY, header: 'a b' })],
    ];
    for (const [what, build] of attempts) {
      let thrown: unknown;
      try {
        build();
      } catch (error) {
        thrown = error;
      }
      expect(thrown, what).toBeInstanceOf(ConfigurationError);
      expect((thrown as Error).message, what).not.toContain('secret-bits');
      expect((thrown as Error).message, what).not.toContain(KEY);
    }
  });
});
