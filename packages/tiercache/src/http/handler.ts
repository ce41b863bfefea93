import type { IncomingMessage, ServerResponse } from 'node:http';
import { createEvictCore, error } from './core.js';
import type { EvictCore, EvictHandlerOptions, EvictResponse } from './core.js';

/** A plain Node request handler: works with `http.createServer`, Express, Koa's `req`/`res`, or any framework. */
export type EvictHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * A refused request may still have its body in flight. Answering and closing at once would make the kernel reset the
 * connection over the unread bytes, and the client would see ECONNRESET instead of the status. So the rest of the
 * body is read and dropped (never buffered) before answering, up to these bounds; past them the answer goes out with
 * `connection: close` and the socket is closed behind it.
 */
const DISCARD_LIMIT_BYTES = 1024 * 1024;
const DISCARD_LIMIT_MS = 1000;

/**
 * Creates the internal evict endpoint as a `(req, res)` handler for `DELETE` with a JSON body
 * `{ keys?: string[], tags?: string[], all?: boolean }`. The order of checks is method (405), key (401), body (413,
 * 400), eviction (200, or 503 when the cache fails), so an unauthenticated request never gets its body read.
 * Throws `ConfigurationError` for invalid options. The returned promise never rejects.
 */
export function createEvictHandler(options: EvictHandlerOptions): EvictHandler {
  const core = createEvictCore(options);
  return async (req, res) => {
    try {
      await handle(core, req, res);
    } catch (cause) {
      core.warn(`unexpected failure: ${cause instanceof Error ? cause.message : String(cause)}`);
      if (!res.headersSent) send(core, res, error(500, 'Internal error'));
      else res.destroy();
    }
  };
}

async function handle(core: EvictCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'DELETE') {
    res.setHeader('allow', 'DELETE');
    await refuse(core, req, res, error(405, 'Use DELETE'));
    return;
  }
  if (!core.authorized(req.headers[core.header])) {
    core.warn(`refused an eviction from ${req.socket.remoteAddress ?? 'unknown'}: missing or wrong key`);
    await refuse(core, req, res, error(401, `Missing or wrong key in the ${core.header} header`));
    return;
  }
  const body = await readBody(req, core.maxBodyBytes);
  if (body === TOO_LARGE) {
    await refuse(core, req, res, error(413, `The body exceeds ${core.maxBodyBytes} bytes`));
    return;
  }
  send(core, res, await core.evictText(body));
}

const TOO_LARGE = Symbol('too large');

/**
 * Reads the body as UTF-8 up to `max` bytes. A declared Content-Length above `max` is refused before reading
 * anything; a chunked body is refused as soon as it crosses `max`, so no more than `max` bytes are ever buffered.
 */
function readBody(req: IncomingMessage, max: number): Promise<string | typeof TOO_LARGE | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve(TOO_LARGE);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        req.pause();
        resolve(TOO_LARGE);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(size === 0 ? undefined : Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (cause: Error): void => {
      cleanup();
      reject(cause);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** Answers a refused request once what is left of its body is dropped (within bounds; see DISCARD_LIMIT_BYTES). */
async function refuse(
  core: EvictCore,
  req: IncomingMessage,
  res: ServerResponse,
  response: EvictResponse,
): Promise<void> {
  const drained = await discard(req);
  send(core, res, response, !drained);
  if (!drained) res.once('finish', () => req.socket.destroy());
}

/** Resolves true once the body has ended, false when it is longer or slower than the discard bounds. */
function discard(req: IncomingMessage): Promise<boolean> {
  if (req.complete) return Promise.resolve(true);
  return new Promise((resolve) => {
    let dropped = 0;
    const done = (drained: boolean): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onError);
      if (!drained) req.pause();
      resolve(drained);
    };
    const onData = (chunk: Buffer): void => {
      dropped += chunk.length;
      if (dropped > DISCARD_LIMIT_BYTES) done(false);
    };
    const onEnd = (): void => done(true);
    const onError = (): void => done(false);
    const timer = setTimeout(() => done(false), DISCARD_LIMIT_MS);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onError);
    req.resume();
  });
}

function send(core: EvictCore, res: ServerResponse, response: EvictResponse, close = false): void {
  const payload = JSON.stringify(core.render(response));
  res.statusCode = response.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.setHeader('cache-control', 'no-store');
  if (close) res.setHeader('connection', 'close');
  res.end(payload);
}
