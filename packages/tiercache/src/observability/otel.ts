/**
 * `tiercache/otel`: spans for loads and Redis round trips, and metrics, through `@opentelemetry/api` (an optional
 * peer dependency, loaded when this is called: without it the call is a no-op). Spans come from tiercache's
 * diagnostics channels, so nothing is traced unless this is set up; metrics are observed from `stats()` at each
 * collection, plus two histograms recorded per load and per round trip. Attributes name the key group and the
 * source, never the raw key unless `includeKeys` is set.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import type * as OtelApiModule from '@opentelemetry/api';
import type { Attributes, Meter, MeterProvider, Span, Tracer, TracerProvider } from '@opentelemetry/api';
import type { Cache } from '../cache/contract.js';
import { ConfigurationError, describeValue } from '../errors.js';
import { CHANNELS } from './channels.js';
import type { LoadMessage, RedisMessage } from './channels.js';
import { instrumentsOf } from './instruments.js';

type OtelApi = typeof OtelApiModule;

export interface OpenTelemetryOptions {
  /** @default the global tracer provider */
  readonly tracerProvider?: TracerProvider;
  /** @default the global meter provider */
  readonly meterProvider?: MeterProvider;
  /** Put the key (without the prefix) on load spans as `tiercache.key`. Keys can carry user data. @default false */
  readonly includeKeys?: boolean;
  /** Spans for Redis round trips (one per batch). @default true */
  readonly redisSpans?: boolean;
  /** Observable metrics read from `stats()`. @default true */
  readonly metrics?: boolean;
}

const TRACER = 'tiercache';
const require = createRequire(import.meta.url);

/** Loads `@opentelemetry/api` if the application has it; undefined otherwise (then tiercache/otel does nothing). */
function loadApi(): OtelApi | undefined {
  try {
    return require('@opentelemetry/api') as OtelApi;
  } catch {
    return undefined;
  }
}

/**
 * Instruments `cache` (and its namespaces) with OpenTelemetry; returns a function that stops it. Spans:
 * `tiercache.load` (one per loader run, child of the caller's active span) and `tiercache.redis <operation>` (one per
 * round trip). Metrics: `tiercache.reads` {tiercache.source}, `tiercache.loader.calls`, `tiercache.redis.errors`
 * (observable counters), `tiercache.loader.duration` and `tiercache.redis.duration` (histograms, seconds).
 */
export function instrumentOpenTelemetry(cache: Cache, options: OpenTelemetryOptions = {}): () => void {
  const instruments = instrumentsOf(cache);
  if (instruments === undefined) {
    throw new ConfigurationError(`Expected a cache made by createCache, got ${describeValue(cache)}`);
  }
  const api = loadApi();
  if (api === undefined) return () => undefined;
  const prefix = instruments.prefix;
  const tracer: Tracer = (options.tracerProvider ?? api.trace.getTracerProvider()).getTracer(TRACER);
  const meter: Meter = (options.meterProvider ?? api.metrics.getMeterProvider()).getMeter(TRACER);
  const stops: (() => void)[] = [];

  const loaderDuration = meter.createHistogram('tiercache.loader.duration', { unit: 's', description: 'Loader runs' });
  const redisDuration = meter.createHistogram('tiercache.redis.duration', {
    unit: 's',
    description: 'Redis round trips (one per batch)',
  });

  const spans = new WeakMap<LoadMessage, Span>();
  const onLoad = (raw: unknown): void => {
    const message = raw as LoadMessage;
    if (message.prefix !== prefix) return;
    if (message.phase === 'start') {
      const attributes: Attributes = { 'tiercache.key_group': message.group, 'tiercache.prefix': prefix };
      if (options.includeKeys === true) attributes['tiercache.key'] = message.key;
      const active = api.context.active();
      const span = tracer.startSpan('tiercache.load', { attributes }, active);
      spans.set(message, span);
      // The loader runs with the load span current: spans it opens (a database query) are the load's children.
      const current = api.trace.setSpan(active, span);
      message.within ??= (run) => api.context.with(current, run);
      return;
    }
    loaderDuration.record(message.durationMs / 1000, { 'tiercache.key_group': message.group });
    const span = spans.get(message);
    if (span === undefined) return;
    spans.delete(message);
    span.setAttribute('tiercache.source', 'origin');
    if (message.error !== undefined) {
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: String(message.error) });
      if (message.error instanceof Error) span.recordException(message.error);
    }
    span.end();
  };
  subscribe(CHANNELS.load, onLoad);
  stops.push(() => unsubscribe(CHANNELS.load, onLoad));

  const onRedis = (raw: unknown): void => {
    const message = raw as RedisMessage;
    if (message.prefix !== prefix || message.skipped !== undefined) return;
    redisDuration.record(message.durationMs / 1000, { 'tiercache.operation': message.operation });
    if (options.redisSpans === false) return;
    const end = performance.timeOrigin + performance.now();
    const span = tracer.startSpan(`tiercache.redis ${message.operation}`, {
      kind: api.SpanKind.CLIENT,
      startTime: end - message.durationMs,
      attributes: {
        'db.system': 'redis',
        'tiercache.operation': message.operation,
        'tiercache.batch_size': message.size,
        'tiercache.prefix': prefix,
      },
    });
    if (!message.ok) {
      span.setStatus({ code: api.SpanStatusCode.ERROR, message: message.error?.message ?? 'failed' });
      if (message.error !== undefined) span.recordException(message.error);
    }
    span.end(end);
  };
  subscribe(CHANNELS.redis, onRedis);
  stops.push(() => unsubscribe(CHANNELS.redis, onRedis));

  if (options.metrics !== false) {
    const reads = meter.createObservableCounter('tiercache.reads', { description: 'Reads by source (or miss)' });
    const loaderCalls = meter.createObservableCounter('tiercache.loader.calls', { description: 'Loader calls' });
    const redisErrors = meter.createObservableCounter('tiercache.redis.errors', {
      description: 'Redis failures absorbed',
    });
    const memoryEntries = meter.createObservableGauge('tiercache.memory.entries', {
      description: 'Entries in memory',
    });
    const observe = meter.addBatchObservableCallback.bind(meter);
    const callback = (result: Parameters<Parameters<Meter['addBatchObservableCallback']>[0]>[0]): void => {
      const s = cache.stats();
      for (const source of ['memory', 'redis', 'stale'] as const) {
        result.observe(reads, s.hits[source], { 'tiercache.source': source });
      }
      result.observe(reads, s.misses, { 'tiercache.source': 'miss' });
      result.observe(loaderCalls, s.loader.calls);
      result.observe(redisErrors, s.redis.errors);
      result.observe(memoryEntries, s.memory?.entries ?? 0);
    };
    const observables = [reads, loaderCalls, redisErrors, memoryEntries];
    observe(callback, observables);
    stops.push(() => meter.removeBatchObservableCallback(callback, observables));
  }

  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}
