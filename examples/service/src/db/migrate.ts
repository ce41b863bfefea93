import { readdir, readFile } from 'node:fs/promises';
import type { Db } from './index.js';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

/** Any constant shared by every instance: serialises migrations when several instances start at once. */
const MIGRATION_LOCK = 727_001;

/**
 * Applies the numbered `.sql` files in `migrations/` that have not run yet, each in its own transaction. The same files
 * run on PGlite and on PostgreSQL, so the seed data is identical on both.
 */
export async function migrate(db: Db): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  return db.transaction(async (tx) => {
    if (db.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await tx.query<{ name: string }>('SELECT name FROM schema_migrations')).map((r) => r.name));
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.exec(await readFile(new URL(file, MIGRATIONS_DIR), 'utf8'));
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
      applied.push(file);
    }
    return applied;
  });
}
