/**
 * GET /metrics (Prometheus text from the service's registry, tiercache's metrics included) and the latency figures
 * /stats adds for the dashboard, caused by requests the test makes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatencyWindow } from '../src/ops/metrics.js';
import { get, startApp } from './helpers/app.js';
import type { TestApp } from './helpers/app.js';
import { RedisServer } from './helpers/redis.js';

/** The value of one sample line (`name{labels} value`), or undefined when the line is not there. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const escaped = (name + (labels === '' ? '' : `{${labels}}`)).replace(/[{}.]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return match === null ? undefined : Number(match[1]);
}

describe('LatencyWindow', () => {
  it('reads p50 and p99 over the samples of its window only', () => {
    const window = new LatencyWindow(1000);
    for (let i = 1; i <= 100; i++) window.record(i, 0);
    expect(window.snapshot(500)).toStrictEqual({ p50: 50, p99: 99, count: 100 });
    window.record(7, 1800);
    expect(window.snapshot(2000)).toStrictEqual({ p50: 7, p99: 7, count: 1 });
    expect(window.snapshot(5000)).toStrictEqual({ p50: null, p99: null, count: 0 });
  });
});

describe('GET /metrics and latency in /stats', () => {
  let redis: RedisServer;
  let t: TestApp;
  beforeAll(async () => {
    redis = await RedisServer.start();
    t = await startApp({ database: { kind: 'pglite' }, env: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
  });

  it('serves Prometheus text with the cache metrics and the requests made', async () => {
    for (let i = 0; i < 3; i++) expect((await get(t.app, '/products/1')).status).toBe(200);
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.body;
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$|^\S+(\{[^}]*\})? (\+Inf|NaN)$/);
    }
    const stats = t.app.cache.stats();
    expect(sample(text, 'tiercache_hits_total', 'source="memory"')).toBe(stats.hits.memory);
    expect(stats.hits.memory).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'tiercache_loader_calls_total')).toBe(stats.loader.calls);
    expect(sample(text, 'tiercache_redis_duration_seconds_count')).toBe(stats.latency.redis.count);
    expect(stats.latency.redis.count).toBeGreaterThan(0);
    expect(sample(text, 'http_request_duration_seconds_count', 'route="/products/:id",status="2xx"')).toBe(3);
  });

  it('reports request, Redis and loader p50/p99 of the last seconds in /stats', async () => {
    await get(t.app, '/products/2');
    await get(t.app, '/products/2');
    const { body } = await get<{ service: { latency: Record<string, { p50: number | null; count: number }> } }>(
      t.app,
      '/stats',
    );
    const { request, redis: trips, loader } = body.service.latency;
    expect(request?.count).toBeGreaterThanOrEqual(2);
    expect(request?.p50).toBeGreaterThan(0);
    expect(trips?.count).toBeGreaterThan(0);
    expect(loader?.count).toBeGreaterThanOrEqual(1);
  });
});
