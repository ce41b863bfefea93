import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { openDb } from '../db/index.js';
import type { Db } from '../db/index.js';
import { migrate } from '../db/migrate.js';
import { withQueryScope } from '../db/query-scope.js';
import type { QueryScope } from '../db/query-scope.js';
import { shared } from './shared.js';

declare module 'fastify' {
  interface FastifyInstance {
    db: Db;
  }
  interface FastifyRequest {
    /** Database queries made while answering this request; sent back as `x-db-queries`. */
    queryScope: QueryScope | undefined;
  }
}

export interface DbPluginOptions extends Record<string, unknown> {
  readonly config: Config['database'];
  /** An open database to use instead (not closed with the app): lets tests run two instances on one database. */
  readonly db?: Db | undefined;
}

export const dbPlugin = shared<DbPluginOptions>('db', async (app, { config, db: given }) => {
  if (given === undefined && config.kind === 'pglite' && !existsSync(join(config.dir, 'PG_VERSION'))) {
    app.log.info(`creating the embedded PGlite database in ${config.dir} (first start only, takes a few seconds)`);
  }
  const db = given ?? (await openDb(config));
  try {
    const applied = await migrate(db);
    if (applied.length > 0) app.log.info(`database migrations applied: ${applied.join(', ')}`);
  } catch (error) {
    if (given === undefined) await db.close();
    throw error;
  }
  app.decorate('db', db);
  if (given === undefined) app.addHook('onClose', () => db.close());

  app.decorateRequest('queryScope', undefined);
  // preHandler rather than onRequest: the body has been parsed by then, and the handler is called from `done`, so
  // everything the handler awaits (cache loaders included) runs inside this scope.
  app.addHook('preHandler', (request, _reply, done) => {
    const scope: QueryScope = { queries: 0 };
    request.queryScope = scope;
    withQueryScope(scope, done);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.queryScope !== undefined) void reply.header('x-db-queries', String(request.queryScope.queries));
    return payload;
  });
});
