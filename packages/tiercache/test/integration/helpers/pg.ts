/** Postgres for the write-strategy tests: the machine's shared server (127.0.0.1:5432, database `test`), tables
 * with a unique suffix per test file, reached directly or through a TCP proxy the test controls. */
import pg from 'pg';

export const PG_PORT = 5432;

export function pgPool(port = PG_PORT): pg.Pool {
  const pool = new pg.Pool({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'test',
    max: 4,
    connectionTimeoutMillis: 1000,
    query_timeout: 5000,
  });
  // A connection the proxy resets is an error of the pool's idle client: the next query sees it.
  pool.on('error', () => undefined);
  return pool;
}

export async function createTables(pool: pg.Pool, suffix: string): Promise<void> {
  await pool.query(`CREATE TABLE IF NOT EXISTS counters_${suffix} (id text PRIMARY KEY, total bigint NOT NULL)`);
  await pool.query(`CREATE TABLE IF NOT EXISTS counter_batches_${suffix} (batch_id text PRIMARY KEY)`);
  await pool.query(`CREATE TABLE IF NOT EXISTS kv_${suffix} (key text PRIMARY KEY, value bigint NOT NULL)`);
}

export async function dropTables(pool: pg.Pool, suffix: string): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS counters_${suffix}, counter_batches_${suffix}, kv_${suffix}`);
}

/** The idempotent flush of docs/write-strategies.md: a batch id recorded once, the deltas applied with it. */
export async function flushCounter(
  client: pg.Pool,
  table: string,
  deltas: ReadonlyMap<string, number>,
  batchId: string,
  beforeCommit?: () => Promise<void>,
): Promise<void> {
  const conn = await client.connect();
  // A connection reset by the test's proxy while checked out is an 'error' event: the query in flight rejects anyway.
  const ignore = (): void => undefined;
  conn.on('error', ignore);
  try {
    await conn.query('BEGIN');
    const fresh = await conn.query(
      `INSERT INTO counter_batches_${table} (batch_id) VALUES ($1) ON CONFLICT DO NOTHING`,
      [batchId],
    );
    if (fresh.rowCount === 1) {
      await conn.query(
        `INSERT INTO counters_${table} (id, total) SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (id) DO UPDATE SET total = counters_${table}.total + excluded.total`,
        [[...deltas.keys()], [...deltas.values()]],
      );
    }
    await beforeCommit?.();
    await conn.query('COMMIT');
  } catch (error) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    conn.off('error', ignore);
    conn.release();
  }
}

/** The write-behind writer: the latest value per key, newer queue ids winning. */
export async function upsert(
  client: pg.Pool,
  table: string,
  batch: readonly { key: string; value: number; id: string }[],
): Promise<void> {
  await client.query(
    `INSERT INTO kv_${table} (key, value) SELECT * FROM unnest($1::text[], $2::bigint[])
     ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    [batch.map((item) => item.key), batch.map((item) => item.value)],
  );
}
