import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { Config } from '../../src/config.js';
import type { Db } from '../../src/db/index.js';
import { pgliteDir, POSTGRES_URL, postgresSchema } from './db.js';

export const INTERNAL_KEY = 'test-internal-key-0123456789';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
}

/** pino levels */
export const WARN = 40;

export interface TestApp {
  readonly app: FastifyInstance;
  readonly config: Config;
  /** Every line the app logged, parsed. */
  readonly logs: LogLine[];
  /** Set when `listen` was asked for. */
  readonly url: string | undefined;
  close(): Promise<void>;
}

export type DatabaseChoice =
  | { readonly kind: 'pglite' }
  | { readonly kind: 'postgres'; readonly schema?: string }
  | { readonly kind: 'shared'; readonly db: Db };

export interface StartOptions {
  readonly database: DatabaseChoice;
  readonly env?: Record<string, string>;
  readonly jobs?: boolean;
  readonly listen?: boolean;
  /** Wait until the cache's Redis connection is ready (default true when REDIS_URL is given). */
  readonly waitForRedis?: boolean;
}

/** The service as `main.ts` builds it, on a database and a Redis of the test's own, with its log captured. */
export async function startApp(options: StartOptions): Promise<TestApp> {
  const cleanups: (() => Promise<void>)[] = [];
  const env: Record<string, string> = {
    LOG_LEVEL: 'info',
    INTERNAL_KEY,
    CACHE_PREFIX: `svc-test-${randomBytes(4).toString('hex')}:`,
    WORKER_INTERVAL: '0',
    TRENDS_INTERVAL: '0',
    ...options.env,
  };
  let shared: Db | undefined;
  if (options.database.kind === 'pglite') {
    const { dir, remove } = await pgliteDir();
    env['PGLITE_DIR'] = dir;
    cleanups.push(remove);
  } else if (options.database.kind === 'postgres') {
    env['DATABASE_URL'] = POSTGRES_URL;
    if (options.database.schema !== undefined) env['DATABASE_SCHEMA'] = options.database.schema;
    else {
      const { schema, drop } = postgresSchema();
      env['DATABASE_SCHEMA'] = schema;
      cleanups.push(drop);
    }
  } else {
    shared = options.database.db;
  }
  const config = loadConfig(env);

  const logs: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  const app = await buildApp({
    config,
    logger: { level: 'info', stream },
    jobs: options.jobs ?? false,
    ...(shared === undefined ? {} : { db: shared }),
  });
  let url: string | undefined;
  try {
    if (options.listen) url = await app.listen({ port: 0, host: '127.0.0.1' });
    else await app.ready();
    if ((options.waitForRedis ?? env['REDIS_URL'] !== undefined) && !(await app.cache.ready('5s'))) {
      throw new Error(`the app's cache did not connect to ${env['REDIS_URL']}`);
    }
  } catch (error) {
    await app.close();
    for (const cleanup of cleanups.reverse()) await cleanup();
    throw error;
  }
  return {
    app,
    config,
    logs,
    url,
    async close() {
      await app.close();
      for (const cleanup of cleanups.reverse()) await cleanup();
    },
  };
}

/** `app.inject` for a GET, returning status, JSON body and the query count header. */
export async function get<T = Record<string, unknown>>(
  app: FastifyInstance,
  url: string,
): Promise<{ status: number; body: T; queries: number | undefined }> {
  const res = await app.inject({ method: 'GET', url });
  const header = res.headers['x-db-queries'];
  return {
    status: res.statusCode,
    body: res.json<T>(),
    queries: header === undefined ? undefined : Number(header),
  };
}
