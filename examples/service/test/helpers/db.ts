import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDb } from '../../src/db/index.js';
import { migrate } from '../../src/db/migrate.js';

export const POSTGRES_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Creating a PGlite database (initdb in WASM) takes 10 s or more on this machine; copying one takes a fraction of a
 * second. So one migrated and seeded template is made per version of the migrations (and per day, since the seeded
 * page views are relative to the time of seeding) and each test gets its own copy in a temp dir.
 */
async function template(): Promise<string> {
  const dir = new URL('../../src/db/migrations/', import.meta.url);
  const hash = createHash('sha256');
  for (const file of (await readdir(dir)).sort()) hash.update(file).update(await readFile(new URL(file, dir)));
  const day = new Date().toISOString().slice(0, 10);
  const path = join(tmpdir(), `tiercache-svc-pglite-${hash.digest('hex').slice(0, 12)}-${day}`);
  if (existsSync(path)) return path;
  const building = await mkdtemp(join(tmpdir(), 'tiercache-svc-pglite-build-'));
  const db = await openDb({ kind: 'pglite', dir: building });
  await migrate(db);
  await db.close();
  try {
    await rename(building, path);
  } catch {
    // Another run finished first: use its template.
    await rm(building, { recursive: true, force: true });
  }
  return path;
}

/** A fresh, migrated PGlite data directory of the test's own; `remove` deletes it. */
export async function pgliteDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const source = await template();
  const dir = await mkdtemp(join(tmpdir(), 'svc-pglite-'));
  await cp(source, dir, { recursive: true });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A schema of the test's own on the local PostgreSQL server; `drop` removes it and everything in it. */
export function postgresSchema(): { schema: string; drop: () => Promise<void> } {
  const schema = `svc_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  return {
    schema,
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
