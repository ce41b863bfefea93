import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, INTERNAL_KEY, startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { freePort } from './helpers/net.js';
import { findPython } from './helpers/python.js';

const run = promisify(execFile);
const BATCH = fileURLToPath(new URL('../../../interop/python/examples/trend_batch.py', import.meta.url));

interface BatchResult {
  ranked: number;
  eviction: { ok: boolean; status: number | null; error: string | null };
}

/**
 * interop/python/examples/trend_batch.py, the seed's trend batch in Python, against the running service: it ranks,
 * writes the ranking, and evicts `trends:top` through DELETE /internal/cache — and never fails because of the
 * eviction.
 */
describe('the Python trend batch', () => {
  let python: string;
  let t: TestApp;
  let dir: string;

  beforeAll(async () => {
    python = await findPython();
    dir = await mkdtemp(join(tmpdir(), 'py-trends-'));
    const now = Date.now();
    const views = [
      ...Array.from({ length: 30 }, (_, i) => ({
        product_id: 47,
        viewed_at: new Date(now - i * 60_000).toISOString(),
      })),
      ...Array.from({ length: 5 }, (_, i) => ({
        product_id: 3,
        viewed_at: new Date(now - i * 3_600_000).toISOString(),
      })),
      { product_id: 9, viewed_at: new Date(now - 8 * 86_400_000).toISOString() },
    ];
    await writeFile(join(dir, 'views.json'), JSON.stringify(views));
    // No Redis: the cached copy of /trends lives in this instance's memory, which the endpoint drops.
    t = await startApp({
      database: { kind: 'pglite' },
      env: { REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
      waitForRedis: false,
      listen: true,
    });
  });
  afterAll(async () => {
    await t?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function batch(env: Record<string, string>): Promise<{ result: BatchResult; stderr: string; ms: number }> {
    const started = Date.now();
    // execFile rejects on a non-zero exit: the batch must exit 0 in every case here.
    const { stdout, stderr } = await run(
      python,
      [BATCH, '--views', join(dir, 'views.json'), '--out', join(dir, 'trends.json'), '--json'],
      { env: { PATH: process.env['PATH'] ?? '', PYTHONDONTWRITEBYTECODE: '1', ...env }, timeout: 20_000 },
    );
    return { result: JSON.parse(stdout) as BatchResult, stderr, ms: Date.now() - started };
  }

  async function cachedTrends(): Promise<void> {
    await get(t.app, '/trends');
    expect((await get<{ meta: { source: string } }>(t.app, '/trends')).body.meta.source).toBe('memory');
  }

  it('is refused with 401 for a wrong key, says so once, and still succeeds; the cached copy stays', async () => {
    await cachedTrends();
    const { result, stderr } = await batch({ TRENDS_EVICT_URL: `${t.url}/internal/cache`, INTERNAL_KEY: 'wrong-key' });
    expect(result).toEqual({
      ranked: 2,
      eviction: { ok: false, status: 401, error: 'Missing or wrong key in the x-internal-key header' },
    });
    expect(stderr.match(/failed \(HTTP 401\)/g)).toHaveLength(1);
    expect(stderr).not.toContain('wrong-key');
    expect((await get<{ meta: { source: string } }>(t.app, '/trends')).body.meta.source).toBe('memory');
  });

  it('evicts the cached copy with the right key, so the next GET /trends goes to the database', async () => {
    await cachedTrends();
    const { result, stderr } = await batch({ TRENDS_EVICT_URL: `${t.url}/internal/cache`, INTERNAL_KEY });
    expect(result).toEqual({ ranked: 2, eviction: { ok: true, status: 200, error: null } });
    expect(stderr).toContain('trends: 2 products ranked; cached copy evicted');
    expect((await get<{ meta: { source: string } }>(t.app, '/trends')).body.meta.source).toBe('origin');

    const written = JSON.parse(await readFile(join(dir, 'trends.json'), 'utf8')) as {
      items: { rank: number; productId: number; views: number }[];
    };
    expect(written.items.map((i) => [i.rank, i.productId, i.views])).toEqual([
      [1, 47, 30],
      [2, 3, 5],
    ]);
  });

  it('raises nothing and exits 0 when the service is down, within its timeout', async () => {
    const { result, stderr, ms } = await batch({
      TRENDS_EVICT_URL: `http://127.0.0.1:${await freePort()}/internal/cache`,
      INTERNAL_KEY,
    });
    expect(result).toEqual({ ranked: 2, eviction: { ok: false, status: null, error: 'ECONNREFUSED' } });
    expect(stderr).toContain('eviction failed');
    expect(stderr).not.toContain('Traceback');
    expect(ms).toBeLessThan(10_000);
  });

  it('skips the eviction with one line when no URL is configured, or a URL comes without a key', async () => {
    const unset = await batch({});
    expect(unset.result.eviction).toEqual({ ok: false, status: null, error: 'disabled' });
    expect(unset.stderr).toContain('eviction skipped (TRENDS_EVICT_URL unset)');
    const keyless = await batch({ TRENDS_EVICT_URL: `${t.url}/internal/cache` });
    expect(keyless.result.ranked).toBe(2);
    expect(keyless.stderr).toContain('eviction misconfigured');
  });
});
