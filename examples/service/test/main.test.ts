import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb } from '../src/db/index.js';
import { pgliteDir } from './helpers/db.js';
import { eventually, freePort } from './helpers/net.js';
import { RedisServer } from './helpers/redis.js';

const SERVICE_DIR = fileURLToPath(new URL('..', import.meta.url));

describe('main.ts, the process npm start runs', () => {
  let redis: RedisServer;
  let data: { dir: string; remove: () => Promise<void> };

  beforeAll(async () => {
    redis = await RedisServer.start();
    data = await pgliteDir();
  });
  afterAll(async () => {
    await data?.remove();
    await redis?.stop();
  });

  it('serves, then on SIGTERM stops its jobs, closes cache and database, and exits 0', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: SERVICE_DIR,
      env: {
        ...process.env,
        PORT: String(port),
        PGLITE_DIR: data.dir,
        REDIS_URL: redis.url,
        CACHE_PREFIX: `svc-main-${process.pid}:`,
        WORKER_INTERVAL: '1s',
        TRENDS_INTERVAL: '1s',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const waitFor = (what: string, check: () => boolean | Promise<boolean>, ms: number) =>
      eventually(what, check, ms).catch((error: unknown) => {
        throw new Error(`${String(error)}\n--- service output ---\n${output}`);
      });
    try {
      await waitFor(
        'the service to answer',
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
          return res?.ok === true;
        },
        30_000,
      );
      // The in-process batch calls this service's own evict endpoint with the development key.
      await waitFor(
        'the first trends batch',
        () => output.includes('trends: 10 products ranked; cached copy evicted'),
        20_000,
      );
      await waitFor('the first worker run', () => output.includes('news worker: 68 fetched'), 20_000);
      expect(output).toContain(
        'INTERNAL_KEY is unset: DELETE /internal/cache accepts the development key dev-internal-key-change-me',
      );
      // The start-up line says where it listens and, in development, which key the internal endpoint takes.
      expect(output).toMatch(
        /tiercache reference service on http:\/\/127\.0\.0\.1:\d+ — dashboard: \S+\/dashboard — internal key \(development\): dev-internal-key-change-me/,
      );
      // PGlite serves one process: a second one (`npm run worker` next to the service) is refused, not let in.
      await expect(openDb({ kind: 'pglite', dir: data.dir })).rejects.toThrow(/in use by process/);

      const started = Date.now();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(output).toContain('SIGTERM: closing');
      // The database lock is released on close, so the next start (or `npm run worker`) may open it.
      expect(existsSync(join(data.dir, 'tiercache-demo.lock'))).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
