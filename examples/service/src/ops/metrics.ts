/**
 * Latency as the dashboard shows it, and `GET /metrics` for Prometheus. The cache's own histograms (stats().latency)
 * run since start; a live chart needs "the last few seconds", so this plugin keeps windows of recent samples: request
 * durations from an onResponse hook, Redis round trips and loader runs from tiercache's diagnostics channels (which
 * only publish because this subscribes).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Registry, collectDefaultMetrics, Histogram as PromHistogram } from 'prom-client';
import { CHANNELS } from 'tiercache';
import type { LoadMessage, RedisMessage } from 'tiercache';
import { registerPrometheus } from 'tiercache/prometheus';

/** Recent samples (at most `capacity`, no older than `windowMs`), with percentiles over them. */
export class LatencyWindow {
  readonly #values: Float64Array;
  readonly #times: Float64Array;
  #next = 0;
  #size = 0;
  readonly #windowMs: number;

  constructor(windowMs = 5_000, capacity = 4096) {
    this.#values = new Float64Array(capacity);
    this.#times = new Float64Array(capacity);
    this.#windowMs = windowMs;
  }

  record(ms: number, now = performance.now()): void {
    this.#values[this.#next] = ms;
    this.#times[this.#next] = now;
    this.#next = (this.#next + 1) % this.#values.length;
    if (this.#size < this.#values.length) this.#size++;
  }

  /** p50/p99 in ms over the window (null when it is empty), and how many samples it holds. */
  snapshot(now = performance.now()): { p50: number | null; p99: number | null; count: number } {
    const recent: number[] = [];
    for (let i = 0; i < this.#size; i++) {
      if (now - (this.#times[i] as number) <= this.#windowMs) recent.push(this.#values[i] as number);
    }
    if (recent.length === 0) return { p50: null, p99: null, count: 0 };
    recent.sort((a, b) => a - b);
    const at = (q: number): number => {
      const value = recent[Math.min(recent.length - 1, Math.ceil(q * recent.length) - 1)] as number;
      return Math.round(value * 1000) / 1000;
    };
    return { p50: at(0.5), p99: at(0.99), count: recent.length };
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Request, Redis and loader latency over the last 5 s (for /stats and the dashboard). */
    latency(): Record<'request' | 'redis' | 'loader', ReturnType<LatencyWindow['snapshot']>>;
  }
}

const plugin: FastifyPluginAsync = async (app) => {
  const windows = { request: new LatencyWindow(), redis: new LatencyWindow(), loader: new LatencyWindow() };
  const prefix = app.cache.prefix;
  const onRedis = (message: unknown): void => {
    const m = message as RedisMessage;
    if (m.prefix === prefix && m.skipped === undefined) windows.redis.record(m.durationMs);
  };
  const onLoad = (message: unknown): void => {
    const m = message as LoadMessage;
    if (m.prefix === prefix && m.phase === 'end') windows.loader.record(m.durationMs);
  };
  subscribe(CHANNELS.redis, onRedis);
  subscribe(CHANNELS.load, onLoad);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const unregister = registerPrometheus(app.cache, { registry });
  const requests = new PromHistogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests served, by route and status class.',
    labelNames: ['route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  app.addHook('onResponse', async (request, reply) => {
    const ms = reply.elapsedTime;
    const route = request.routeOptions.url ?? 'unmatched';
    // The dashboard's own polls would drown the figure: they are not the service's traffic.
    if (route === '/stats' || route === '/metrics' || route.startsWith('/dashboard')) return;
    windows.request.record(ms);
    requests.observe({ route, status: `${Math.floor(reply.statusCode / 100)}xx` }, ms / 1000);
  });

  app.decorate('latency', () => ({
    request: windows.request.snapshot(),
    redis: windows.redis.snapshot(),
    loader: windows.loader.snapshot(),
  }));

  app.get('/metrics', async (_request, reply) => {
    void reply.header('cache-control', 'no-store').type(registry.contentType);
    return registry.metrics();
  });

  app.addHook('onClose', async () => {
    unsubscribe(CHANNELS.redis, onRedis);
    unsubscribe(CHANNELS.load, onLoad);
    unregister();
    registry.clear();
  });
};

export const metricsPlugin = fp(plugin, { name: 'metrics', dependencies: ['cache'] });
