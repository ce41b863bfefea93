/**
 * `tiercache/http`: the internal evict endpoint (a plain Node handler and a Fastify plugin over the same core) and the
 * best-effort client batch jobs call it with. Nothing here loads fastify at run time.
 */
export { EVICT_DEFAULTS } from './core.js';
export type {
  EvictFailure,
  EvictHandlerOptions,
  EvictLogger,
  EvictRequest,
  EvictResponse,
  EvictResult,
  EvictableCache,
} from './core.js';
export { createEvictHandler } from './handler.js';
export type { EvictHandler } from './handler.js';
export { evictPlugin } from './fastify.js';
export type { EvictPluginOptions } from './fastify.js';
export { CLIENT_DEFAULTS, createInvalidationClient } from './client.js';
export type { EvictBody, InvalidationClient, InvalidationClientOptions } from './client.js';
export type { OutboundLogger, PostOutcome } from './post.js';
