/**
 * tiercache/otel with the OpenTelemetry SDK's in-memory span exporter: the spans a load and a Redis round trip make,
 * their attributes, parents and status; metrics through a recording meter.
 */
import { ROOT_CONTEXT, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Meter, MeterProvider, Observable } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCache } from 'tiercache';
import { instrumentOpenTelemetry } from 'tiercache/otel';
import { FakeClock, InMemoryRemoteTier } from 'tiercache/testing';

const cleanup: (() => unknown)[] = [];
beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
afterAll(() => {
  context.disable();
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function setup(options: { includeKeys?: boolean } = {}) {
  const clock = new FakeClock();
  const cache = createCache({ prefix: 'otel', clock, redis: new InMemoryRemoteTier({ clock }) });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const stop = instrumentOpenTelemetry(cache, { tracerProvider, metrics: false, ...options });
  cleanup.push(() => cache.close(), stop);
  return { cache, clock, exporter, tracerProvider };
}

describe('tiercache/otel', () => {
  it('makes a load span per loader run with its key group, and the raw key only when asked', async () => {
    const { cache, clock, exporter } = setup();
    await cache.getOrSet('user:42', () => {
      clock.advance(5);
      return 'ada';
    });
    await cache.getOrSet('user:42', () => 'not again');
    const loads = exporter.getFinishedSpans().filter((s) => s.name === 'tiercache.load');
    expect(loads).toHaveLength(1);
    expect(loads[0]?.attributes).toStrictEqual({
      'tiercache.key_group': 'user',
      'tiercache.prefix': 'otel:',
      'tiercache.source': 'origin',
    });
    const keyed = setup({ includeKeys: true });
    await keyed.cache.getOrSet('user:7', () => 1);
    expect(keyed.exporter.getFinishedSpans().find((s) => s.name === 'tiercache.load')?.attributes).toMatchObject({
      'tiercache.key': 'user:7',
    });
  });

  it('parents a load span on the caller’s active span and marks a failed loader as an error', async () => {
    const { cache, exporter, tracerProvider } = setup();
    const parent = tracerProvider.getTracer('app').startSpan('GET /users/1');
    await context.with(trace.setSpan(ROOT_CONTEXT, parent), async () => {
      await expect(
        cache.getOrSet('user:1', () => {
          throw new Error('origin down');
        }),
      ).rejects.toThrow('origin down');
    });
    parent.end();
    const load = exporter.getFinishedSpans().find((s) => s.name === 'tiercache.load');
    expect(load?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(load?.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'Error: origin down' });
    expect(load?.events.map((e) => e.name)).toContain('exception');
  });

  it('runs the loader with the load span current, so the spans it opens are children of the load', async () => {
    const { cache, exporter, tracerProvider } = setup();
    await cache.getOrSet('user:3', () => {
      const query = tracerProvider.getTracer('db').startSpan('SELECT user');
      query.end();
      return 'ada';
    });
    const spans = exporter.getFinishedSpans();
    const load = spans.find((s) => s.name === 'tiercache.load');
    const query = spans.find((s) => s.name === 'SELECT user');
    expect(query?.parentSpanContext?.spanId).toBe(load?.spanContext().spanId);
    expect(query?.spanContext().traceId).toBe(load?.spanContext().traceId);
  });

  it('makes one client span per Redis round trip with the batch size', async () => {
    const { cache, exporter } = setup();
    await Promise.all([cache.get('a:1'), cache.get('a:2'), cache.get('a:3')]);
    const gets = exporter.getFinishedSpans().filter((s) => s.name === 'tiercache.redis get');
    expect(gets).toHaveLength(1);
    expect(gets[0]?.attributes).toMatchObject({ 'db.system': 'redis', 'tiercache.batch_size': 3 });
  });

  it('stops making spans once stopped, and ignores other caches', async () => {
    const { cache, exporter } = setup();
    const other = createCache({ prefix: 'elsewhere' });
    cleanup.push(() => other.close());
    await other.getOrSet('x:1', () => 1);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    const stop = instrumentOpenTelemetry(cache, {
      tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
      metrics: false,
    });
    stop();
    await cache.getOrSet('x:2', () => 2);
    expect(exporter.getFinishedSpans().filter((s) => s.name === 'tiercache.load')).toHaveLength(1);
  });

  it('observes stats() as metrics at each collection', async () => {
    const { cache } = setup();
    const observed = new Map<string, number>();
    let callback: ((result: { observe(o: Observable, v: number, a?: Attributes): void }) => void) | undefined;
    const names = new WeakMap<object, string>();
    const instrument = (name: string) => {
      const o = { addCallback: () => undefined, removeCallback: () => undefined };
      names.set(o, name);
      return o;
    };
    const meter = {
      createHistogram: () => ({ record: () => undefined }),
      createObservableCounter: instrument,
      createObservableGauge: instrument,
      addBatchObservableCallback: (fn: typeof callback) => void (callback = fn),
      removeBatchObservableCallback: () => (callback = undefined),
    } as unknown as Meter;
    const meterProvider: MeterProvider = { getMeter: () => meter };
    cleanup.push(instrumentOpenTelemetry(cache, { meterProvider }));
    await cache.getOrSet('user:1', () => 1);
    await cache.get('user:1');
    callback?.({
      observe: (o, v, a) => observed.set(`${names.get(o)}${a ? JSON.stringify(a) : ''}`, v),
    });
    expect(observed.get('tiercache.reads{"tiercache.source":"memory"}')).toBe(1);
    expect(observed.get('tiercache.reads{"tiercache.source":"miss"}')).toBe(1);
    expect(observed.get('tiercache.loader.calls')).toBe(1);
  });
});
