import type { FastifyPluginAsync } from 'fastify';
import { evictPlugin } from 'tiercache/http';
import { DEV_INTERNAL_KEY } from '../config.js';
import type { Config } from '../config.js';
import { errorBody } from '../errors.js';

export interface OpsOptions {
  readonly config: Config;
}

export const opsRoutes: FastifyPluginAsync<OpsOptions> = async (app, { config }) => {
  const startedAt = Date.now();
  /**
   * `degraded` while Redis is away (or the breaker is open): the service still answers every route, from memory and
   * the database. 503 only when the database itself does not answer.
   */
  app.get('/health', async (_request, reply) => {
    const started = performance.now();
    let dbOk = true;
    try {
      await app.db.query('SELECT 1');
    } catch {
      dbOk = false;
    }
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    const cache = app.cacheStatus();
    const ok = dbOk && (config.cacheDisabled || cache.shared);
    void reply.code(dbOk ? 200 : 503).header('cache-control', 'no-store');
    return {
      status: ok ? 'ok' : 'degraded',
      db: { ok: dbOk, kind: app.db.kind, latencyMs },
      cache: { redis: cache.redis, breaker: cache.breaker, disabled: config.cacheDisabled },
    };
  });

  app.get('/stats', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
    return {
      ...app.cache.stats(),
      service: {
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        dbQueries: app.db.totalQueries,
        db: app.db.kind,
        redisTarget: config.redisTarget,
        prefix: app.cache.prefix,
        cacheDisabled: config.cacheDisabled,
        /** p50/p99 in ms over the last 5 s (ops/metrics.ts); `latency` above runs since start. */
        latency: app.latency(),
      },
    };
  });

  // The write strategies at a glance (dashboard "Write strategies" panel): the order queue and the view counter.
  app.get('/ops/strategies', async (_request, reply) => {
    void reply.header('cache-control', 'no-store');
    const [orders, unflushedViews] = await Promise.all([app.orders.stats(), app.views.unflushed()]);
    return {
      queues: { orders },
      counters: {
        'product-views': { unflushed: unflushedViews, offline: app.views.offline, flushes: app.viewFlushes() },
      },
    };
  });

  if (config.internalKeyIsDefault) {
    app.log.warn(
      `INTERNAL_KEY is unset: DELETE /internal/cache accepts the development key ${DEV_INTERNAL_KEY} ` +
        '(x-internal-key header); set INTERNAL_KEY (16+ characters) anywhere but on your own machine',
    );
  }
  await app.register(evictPlugin, {
    cache: app.cache,
    keys: [config.internalKey],
    path: '/internal/cache',
    header: 'x-internal-key',
    logger: { warn: (message) => app.log.warn(message) },
    // The service's error shape, like every other answer (the endpoint keeps its statuses and messages).
    errorBody: ({ status, message }) => errorBody(status, message),
  });
};
