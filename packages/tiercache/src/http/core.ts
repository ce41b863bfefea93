/**
 * The part of the evict endpoint that does not know about HTTP servers: options, the shared-key check, the body
 * contract and the eviction itself. The plain Node handler and the Fastify plugin are thin adapters over it, so both
 * answer every request the same way.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { CacheError, ConfigurationError, InvalidKeyError, describeValue } from '../errors.js';
import { positiveInteger, warnLogger } from '../options.js';

/** What the endpoint needs from a cache. Structural, so a `Cache` (or a namespace of one) fits as it is. */
export interface EvictableCache {
  deleteMany(keys: readonly string[]): Promise<number>;
  clear(): Promise<void>;
  invalidateTags?(tags: readonly string[]): Promise<void>;
}

export interface EvictLogger {
  warn(message: string): void;
}

export interface EvictHandlerOptions {
  /** The cache (or namespace) whose keys the endpoint evicts. */
  readonly cache: EvictableCache;
  /**
   * The shared key, or two of them while rotating (old and new): a request carrying either is accepted. Empty keys are
   * refused.
   */
  readonly keys: string | readonly string[];
  /**
   * The request header that carries the key (case-insensitive).
   * @default 'x-internal-key'
   */
  readonly header?: string;
  /**
   * Largest request body, in bytes; a larger one is answered 413 without being read to the end.
   * @default 65_536 (64 KiB)
   */
  readonly maxBodyBytes?: number;
  /**
   * Most entries in `keys` (and, separately, in `tags`) of one request.
   * @default 1000
   */
  readonly maxItems?: number;
  /** Where refused requests and failed evictions are reported. The key is never part of a message. */
  readonly logger?: EvictLogger;
  /**
   * Builds the JSON body of every refusal and failure (401, 405, 413, 400, 503, 500), so the endpoint answers in the
   * host application's error shape. Statuses and messages stay the endpoint's.
   * @default ({ message }) => ({ error: message })
   */
  readonly errorBody?: (failure: EvictFailure) => unknown;
}

/** What went wrong, handed to `errorBody`. */
export interface EvictFailure {
  readonly status: number;
  readonly message: string;
}

export const EVICT_DEFAULTS = {
  header: 'x-internal-key',
  /** bytes */
  maxBodyBytes: 64 * 1024,
  maxItems: 1000,
  /** Longest accepted shared key, in characters: a bound on the work an attacker can make the hash do. */
  maxSharedKeyLength: 4096,
  /** Longest tag, in characters (the same bound `set` applies). */
  maxTagLength: 256,
} as const;

/** What a valid request asks for. */
export interface EvictRequest {
  readonly keys: readonly string[];
  readonly tags: readonly string[];
  readonly all: boolean;
}

/** What a successful request answers: how many keys existed, how many tags were invalidated, whether all was cleared. */
export interface EvictResult {
  readonly evicted: { readonly keys: number; readonly tags: number; readonly all: boolean };
}

/** A status and the JSON body to send with it. */
export interface EvictResponse {
  readonly status: number;
  readonly body: EvictResult | { readonly error: string };
}

export interface EvictCore {
  readonly header: string;
  readonly maxBodyBytes: number;
  /** True when `value` (a header as Node hands it over) equals one of the accepted keys. Constant time. */
  authorized(value: string | readonly string[] | undefined): boolean;
  /** Parses, validates and executes a body given as text; never throws. */
  evictText(text: string | undefined): Promise<EvictResponse>;
  /** The JSON body to send for a response: the result, or the error as `errorBody` shapes it. Never throws. */
  render(response: EvictResponse): unknown;
  warn(message: string): void;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** The hash of a key nobody can send (a header value is one line), so a missing key costs the same as a wrong one. */
const NO_KEY = sha256('\n');

export function error(status: number, message: string): EvictResponse {
  return { status, body: { error: message } };
}

/** Validates the options once, at construction, so a misconfigured endpoint fails at startup rather than per call. */
export function createEvictCore(options: EvictHandlerOptions): EvictCore {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`Expected the evict endpoint options to be an object, got ${describeValue(options)}`);
  }
  const { cache } = options;
  if (
    typeof cache !== 'object' ||
    cache === null ||
    typeof cache.deleteMany !== 'function' ||
    typeof cache.clear !== 'function'
  ) {
    throw new ConfigurationError(
      `Expected \`cache\` to be a cache with deleteMany() and clear(), got ${describeValue(cache)}`,
    );
  }

  const rawKeys: unknown = options.keys;
  const keys: unknown[] = Array.isArray(rawKeys) ? rawKeys : [rawKeys];
  if (
    keys.length === 0 ||
    keys.length > 2 ||
    !keys.every((k) => typeof k === 'string' && k.length > 0 && k.length <= EVICT_DEFAULTS.maxSharedKeyLength)
  ) {
    // The rejected value is not shown: it may be a real key.
    throw new ConfigurationError(
      `Expected \`keys\` to be one or two non-empty strings of at most ${EVICT_DEFAULTS.maxSharedKeyLength} characters (two only while rotating)`,
    );
  }
  // Hashed once here; each request then costs one hash of what it sent plus one compare per accepted key.
  const accepted = (keys as string[]).map(sha256);

  const header = options.header ?? EVICT_DEFAULTS.header;
  if (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(header)) {
    throw new ConfigurationError(`Expected \`header\` to be an HTTP header name, got ${describeValue(header)}`);
  }
  const maxBodyBytes = positiveInteger('maxBodyBytes', options.maxBodyBytes ?? EVICT_DEFAULTS.maxBodyBytes);
  const maxItems = positiveInteger('maxItems', options.maxItems ?? EVICT_DEFAULTS.maxItems);
  const logger = options.logger === undefined ? undefined : warnLogger('logger', options.logger);

  const errorBody = options.errorBody;
  if (errorBody !== undefined && typeof errorBody !== 'function') {
    throw new ConfigurationError(`Expected \`errorBody\` to be a function, got ${describeValue(errorBody)}`);
  }

  const warn = (message: string): void => {
    try {
      logger?.warn(`tiercache/http: ${message}`);
    } catch {
      // A broken logger must not turn a refused request into a 500.
    }
  };

  return {
    header: header.toLowerCase(),
    maxBodyBytes,
    authorized(value) {
      const given = typeof value === 'string' && value.length > 0 ? sha256(value) : NO_KEY;
      let ok = 0;
      // Every accepted key is compared, match or not, so the time does not tell which one (or whether any) matched.
      for (const key of accepted) ok |= timingSafeEqual(given, key) ? 1 : 0;
      return ok === 1;
    },
    async evictText(text) {
      const parsed = parseEvictBody(text, maxItems);
      if ('status' in parsed) return parsed;
      return execute(cache, parsed, warn);
    },
    render(response) {
      const { body } = response;
      if (errorBody === undefined || !('error' in body)) return body;
      try {
        return errorBody({ status: response.status, message: body.error });
      } catch (cause) {
        warn(`errorBody failed: ${cause instanceof Error ? cause.message : String(cause)}`);
        return body;
      }
    },
    warn,
  };
}

const FIELDS = new Set(['keys', 'tags', 'all']);

/**
 * The body contract: a JSON object with at least one of `keys` (strings), `tags` (strings), `all` (boolean) and
 * nothing else. Unknown fields are refused rather than ignored, so `{ "key": [...] }` is a 400 and not a silent no-op;
 * that also refuses `__proto__`/`constructor` keys, which JSON.parse keeps as own properties (it never assigns them
 * to a prototype) and which are never copied anywhere.
 */
export function parseEvictBody(text: string | undefined, maxItems: number): EvictRequest | EvictResponse {
  if (text === undefined || text.trim() === '') {
    return error(400, 'Expected a JSON body { keys?: string[], tags?: string[], all?: boolean }, got an empty body');
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return error(400, 'Expected a JSON body, got malformed JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return error(400, 'Expected the body to be a JSON object { keys?, tags?, all? }');
  }
  const fields = Object.keys(data);
  const unknown = fields.find((field) => !FIELDS.has(field));
  if (unknown !== undefined) {
    return error(400, `Unknown field ${JSON.stringify(unknown.slice(0, 64))}; expected keys, tags or all`);
  }
  if (fields.length === 0) return error(400, 'Expected at least one of keys, tags or all');
  const record = data as { keys?: unknown; tags?: unknown; all?: unknown };

  const keys = stringList('keys', record.keys, maxItems, Number.POSITIVE_INFINITY);
  if (!Array.isArray(keys)) return keys as EvictResponse;
  const tags = stringList('tags', record.tags, maxItems, EVICT_DEFAULTS.maxTagLength);
  if (!Array.isArray(tags)) return tags as EvictResponse;
  if (record.all !== undefined && typeof record.all !== 'boolean') {
    return error(400, 'Expected `all` to be a boolean');
  }
  return { keys, tags, all: record.all === true };
}

function stringList(
  name: string,
  value: unknown,
  maxItems: number,
  maxLength: number,
): readonly string[] | EvictResponse {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return error(400, `Expected \`${name}\` to be an array of strings`);
  if (value.length > maxItems) {
    return error(400, `Expected at most ${maxItems} ${name} in one request, got ${value.length}`);
  }
  for (const item of value) {
    if (typeof item !== 'string' || item.length === 0 || item.length > maxLength) {
      const bound = Number.isFinite(maxLength) ? ` of at most ${maxLength} characters` : '';
      return error(400, `Expected every entry of \`${name}\` to be a non-empty string${bound}`);
    }
  }
  return value as string[];
}

/**
 * Keys, then tags, then all: each step is idempotent, so a client that sees a 503 halfway can send the same body again.
 * A key the cache refuses (too long) is the client's error; anything else (closed cache, Redis failure with
 * `writeErrors: 'throw'`) means the eviction may not have happened: 503, so the client retries.
 */
async function execute(
  cache: EvictableCache,
  request: EvictRequest,
  warn: (message: string) => void,
): Promise<EvictResponse> {
  if (request.tags.length > 0 && typeof cache.invalidateTags !== 'function') {
    return error(400, 'This cache does not support tag invalidation (it has no invalidateTags); send keys or all');
  }
  try {
    const keys = request.keys.length > 0 ? await cache.deleteMany(request.keys) : 0;
    if (request.tags.length > 0) await cache.invalidateTags?.(request.tags);
    if (request.all) await cache.clear();
    return { status: 200, body: { evicted: { keys, tags: request.tags.length, all: request.all } } };
  } catch (cause) {
    if (cause instanceof InvalidKeyError || cause instanceof ConfigurationError) return error(400, cause.message);
    const reason = cause instanceof CacheError ? cause.code : cause instanceof Error ? cause.name : typeof cause;
    warn(`eviction failed (${reason}): ${cause instanceof Error ? cause.message : String(cause)}`);
    return error(503, 'The eviction could not be completed; it is safe to retry');
  }
}
