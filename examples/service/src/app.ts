import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import type { Db } from './db/index.js';
import { errorBody, errorHandler } from './errors.js';
import { scheduleJobs } from './jobs.js';
import { newsRoutes } from './news/routes.js';
import { dashboardRoutes } from './ops/dashboard.js';
import { metricsPlugin } from './ops/metrics.js';
import { opsRoutes } from './ops/routes.js';
import { cachePlugin } from './plugins/cache.js';
import { dbPlugin } from './plugins/db.js';
import { methodNotAllowed } from './plugins/methods.js';
import { strategiesPlugin } from './plugins/strategies.js';
import { productRoutes } from './products/routes.js';
import { trendsRoutes } from './trends/routes.js';

/**
 * Request lines at debug level: at info they would drown the lines that matter (Redis gone, Redis back, jobs) once the
 * dashboard polls every second. `LOG_LEVEL=debug` shows them.
 */
class QuietRequests extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }
  override requestCompleted(error: Error | null, _request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ res: reply, err: error }, 'request errored');
    else reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

export interface BuildAppOptions {
  readonly config: Config;
  /** Fastify's logger option; defaults to pino at `config.logLevel`. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Run the news worker and the trends batch on their intervals. @default true */
  readonly jobs?: boolean;
  /** An open database to share (tests run two instances on one); the app then does not close it. */
  readonly db?: Db;
}

/**
 * The whole service without a listening socket: tests drive it with `app.inject()`, `main.ts` adds `listen` and the
 * signal handling. The database and the cache are plugins, closed by `app.close()` after the jobs have stopped.
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    logController: new QuietRequests(),
    bodyLimit: 64 * 1024,
    // The first start with PGlite creates and seeds the database inside the db plugin, which can take over 10 s.
    pluginTimeout: 120_000,
  });
  // One error body everywhere, `{ error: { code, message } }` (errors.ts): route and body-parser errors, unknown paths,
  // known paths asked with another method (405), and the evict endpoint (ops/routes.ts).
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url;
    void reply.code(404).send(errorBody(404, `No route ${request.method} ${path.slice(0, 200)}`));
  });
  const answerOtherMethods = methodNotAllowed(app);

  await app.register(dbPlugin, { config: config.database, db: options.db });
  await app.register(cachePlugin, { config });
  await app.register(metricsPlugin);
  await app.register(strategiesPlugin, { config });
  await app.register(productRoutes);
  await app.register(newsRoutes);
  await app.register(trendsRoutes);
  await app.register(opsRoutes, { config });
  await app.register(dashboardRoutes);
  app.get('/', async (_request, reply) => reply.redirect('/dashboard'));
  answerOtherMethods();
  if (options.jobs !== false) scheduleJobs(app, config);
  return app;
}
