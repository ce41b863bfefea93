import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { openDb } from '../db/index.js';
import type { Db } from '../db/index.js';
import { migrate } from '../db/migrate.js';
import fp from 'fastify-plugin';
import { withQueryScope } from '../db/query-scope.js';
import type { QueryScope } from '../db/query-scope.js';

declare module 'fastify' {
  interface FastifyInstance {
    db: Db;
  }
  interface FastifyRequest {
    /** Database queries made while answering this request; sent back as `x-db-queries`. */
    queryScope: QueryScope | undefined;
  }
}

export interface DbPluginOptions {
  readonly config: Config['database'];
  /** An open database to use instead (not closed with the app): lets tests run two instances on one database. */
  readonly db?: Db | undefined;
}

/**
 * The database as `app.db` for every route (fastify-plugin: not encapsulated), migrated at start, closed on close
 * unless it was given; and `x-db-queries` on every answer.
 */
export const dbPlugin = fp<DbPluginOptions>(
  async (app, { config, db: given }) => {
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
    // The counter exists from the first hook on, so every answer carries the header: also those given before a handler
    // runs (a 404, a 405, a body the parser refused, a wrong internal key), which made no query.
    app.addHook('onRequest', async (request) => {
      request.queryScope = { queries: 0 };
    });
    // The scope is entered in preHandler: the body has been parsed by then, and the handler is called from `done`, so
    // everything the handler awaits (cache loaders included) runs inside it.
    app.addHook('preHandler', (request, _reply, done) => {
      const scope: QueryScope = request.queryScope ?? { queries: 0 };
      request.queryScope = scope;
      withQueryScope(scope, done);
    });
    app.addHook('onSend', async (request, reply, payload) => {
      if (request.queryScope !== undefined) void reply.header('x-db-queries', String(request.queryScope.queries));
      return payload;
    });
  },
  { name: 'db', fastify: '5.x' },
);
