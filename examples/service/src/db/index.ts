import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Config } from '../config.js';
import { countQuery } from './query-scope.js';

/** What repositories need: parameterised queries and multi-statement scripts, inside or outside a transaction. */
export interface Queryable {
  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Queries made since the database was opened, for /stats. */
  readonly totalQueries: number;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export type DbConfig = Config['database'];

/** One interface over embedded PGlite and a PostgreSQL server, so the same SQL and the same tests run on both. */
export async function openDb(config: DbConfig): Promise<Db> {
  return config.kind === 'pglite' ? openPglite(config.dir) : openPostgres(config.url, config.schema);
}

export class DatabaseInUseError extends Error {
  readonly code = 'DB_IN_USE';
  override readonly name = 'DatabaseInUseError';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite is Postgres inside this process: two processes on one data directory would corrupt it, and PGlite leaves no
 * lock of its own. So `npm run worker` next to a running service fails with a clear message instead.
 */
async function lockDir(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, 'tiercache-demo.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' });
      return () => unlink(file).catch(() => undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(await readFile(file, 'utf8').catch(() => ''));
      if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new DatabaseInUseError(
          `The embedded database in ${dir} is in use by process ${holder} (PGlite serves one process). Stop it, or set DATABASE_URL to a PostgreSQL server shared by both.`,
        );
      }
      // Left by a process that is gone: take it over.
      await unlink(file).catch(() => undefined);
    }
  }
  throw new DatabaseInUseError(`Could not lock the embedded database in ${dir}`);
}

async function openPglite(dir: string): Promise<Db> {
  await mkdir(dir, { recursive: true });
  const unlock = await lockDir(dir);
  let lite: PGlite;
  try {
    lite = await PGlite.create(dir);
  } catch (error) {
    await unlock();
    throw error;
  }
  let total = 0;
  const wrap = (q: Pick<PGlite, 'query' | 'exec'>): Queryable => ({
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      total++;
      countQuery();
      return (await q.query<T>(sql, [...params])).rows;
    },
    async exec(sql: string): Promise<void> {
      total++;
      countQuery();
      await q.exec(sql);
    },
  });
  const root = wrap(lite);
  return {
    kind: 'pglite',
    get totalQueries() {
      return total;
    },
    query: root.query,
    exec: root.exec,
    transaction: (fn) => lite.transaction((tx) => fn(wrap(tx))),
    async close() {
      try {
        await lite.close();
      } finally {
        await unlock();
      }
    },
  };
}

async function openPostgres(url: string, schema: string | undefined): Promise<Db> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 5000,
    // A per-run schema keeps tests (and several demos on one server) apart without separate databases.
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', () => {});
  if (schema !== undefined) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  let total = 0;
  const wrap = (q: pg.Pool | pg.PoolClient): Queryable => ({
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      total++;
      countQuery();
      return (await q.query(sql, [...params])).rows as T[];
    },
    async exec(sql: string): Promise<void> {
      total++;
      countQuery();
      // Without parameters pg uses the simple protocol, which accepts several statements.
      await q.query(sql);
    },
  });
  const root = wrap(pool);
  return {
    kind: 'postgres',
    get totalQueries() {
      return total;
    },
    query: root.query,
    exec: root.exec,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
