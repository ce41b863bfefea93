import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CacheTimeoutError, ConfigurationError, ConnectionError } from '../../src/errors.js';
import { isOutageError } from '../../src/resilience/breaker.js';
import { ChaosRemoteTier, InMemoryRemoteTier } from '../../src/testing/index.js';
import type { ChaosOptions } from '../../src/testing/index.js';

function setup(options?: ChaosOptions): { inner: InMemoryRemoteTier; chaos: ChaosRemoteTier } {
  const inner = new InMemoryRemoteTier();
  return { inner, chaos: new ChaosRemoteTier(inner, options) };
}

/** Settles a promise into something a test can look at without awaiting it. */
function track<T>(promise: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } {
  const box: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { state: 'pending' };
  promise.then(
    (value) => Object.assign(box, { state: 'resolved', value }),
    (error: unknown) => Object.assign(box, { state: 'rejected', error }),
  );
  return box;
}

/** Which of `n` get calls the wrapper failed, as a string of 0/1. */
async function failurePattern(chaos: ChaosRemoteTier, n: number): Promise<string> {
  const outcomes = await Promise.allSettled(Array.from({ length: n }, () => chaos.get('k')));
  return outcomes.map((o) => (o.status === 'rejected' ? '1' : '0')).join('');
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('ChaosRemoteTier when healthy', () => {
  it('passes every operation through to the inner tier and counts it', async () => {
    const { inner, chaos } = setup();
    await chaos.set('a', 'A', 1000);
    await chaos.setMany([{ key: 'b', value: 'B', ttlMs: 1000 }]);
    expect(await chaos.get('a')).toBe('A');
    expect(await chaos.getMany(['a', 'b', 'c'])).toStrictEqual(['A', 'B', undefined]);
    expect(await chaos.acquireLock('lock', 't', 1000)).toBe(true);
    expect(await chaos.extendLock('lock', 't', 1000)).toBe(true);
    await chaos.releaseLock('lock', 't');
    await chaos.set('a:lock', 'token', 1000);
    expect(await chaos.deleteMany(['a'], ['a:lock'])).toBe(1);
    expect(await chaos.deleteByPrefix('b')).toBe(1);
    expect(inner.size).toBe(0);
    await chaos.setMany([{ key: 'c', value: 'C', ttlMs: 1000, tagKeys: ['tag'] }]);
    expect(await chaos.invalidateTags(['tag'], (key) => `${key}:lock`)).toBe(1);
    const heard: string[] = [];
    inner.subscribe('channel', (message) => heard.push(message));
    await chaos.publish('channel', 'hello');
    expect(heard).toStrictEqual(['hello']);
    expect(inner.size).toBe(0);
    expect(chaos.available).toBe(true);
    const counts = chaos.counts;
    expect(counts).toMatchObject({ calls: 13, forwarded: 13, injected: 0, timeouts: 0, pending: 0 });
    expect(counts.byOperation).toMatchObject({
      get: 1,
      getMany: 1,
      set: 2,
      setMany: 2,
      deleteMany: 1,
      invalidateTags: 1,
      publish: 1,
      setLoaded: 0,
    });
    chaos.resetCounts();
    expect(chaos.counts).toMatchObject({ calls: 0, forwarded: 0, byOperation: { get: 0 } });
  });

  it('refuses an inner tier that is not one, a bad seed and a bad timeout', () => {
    expect(() => new ChaosRemoteTier({} as InMemoryRemoteTier)).toThrow(ConfigurationError);
    expect(() => new ChaosRemoteTier(new InMemoryRemoteTier(), { seed: 1.5 })).toThrow('Expected `seed`');
    expect(() => new ChaosRemoteTier(new InMemoryRemoteTier(), { timeoutMs: 0 })).toThrow(
      'Expected `timeoutMs` to be a positive duration',
    );
  });
});

describe('ChaosRemoteTier errors', () => {
  it('fails every call with a connection error that counts as an outage, and never reaches the inner tier', async () => {
    const { inner, chaos } = setup();
    chaos.alwaysThrow();
    const failed = chaos.set('k', 'v', 1000);
    await expect(failed).rejects.toThrow(ConnectionError);
    expect(isOutageError(await failed.catch((error: unknown) => error))).toBe(true);
    await expect(chaos.get('k')).rejects.toThrow('injected by ChaosRemoteTier (get)');
    expect(inner.size).toBe(0);
    expect(chaos.counts).toMatchObject({ calls: 2, forwarded: 0, injected: 2 });
  });

  it('throws the error it is given, or one made per call by a factory', async () => {
    const { chaos } = setup();
    const boom = new Error('boom');
    chaos.alwaysThrow(boom);
    await expect(chaos.get('k')).rejects.toBe(boom);
    chaos.alwaysThrow((operation) => new CacheTimeoutError(`slow ${operation}`));
    await expect(chaos.deleteMany(['k'])).rejects.toThrow('slow deleteMany');
  });

  it('fails a seeded, repeatable fraction of calls with maybeThrow', async () => {
    const first = setup({ seed: 42 }).chaos.maybeThrow(0.3);
    const second = setup({ seed: 42 }).chaos.maybeThrow(0.3);
    const other = setup({ seed: 7 }).chaos.maybeThrow(0.3);
    const pattern = await failurePattern(first, 1000);
    expect(await failurePattern(second, 1000)).toBe(pattern);
    expect(await failurePattern(other, 1000)).not.toBe(pattern);
    const failures = [...pattern].filter((c) => c === '1').length;
    expect(failures).toBeGreaterThan(250);
    expect(failures).toBeLessThan(350);
  });

  it('never fails at probability 0 and always fails at 1, and refuses probabilities outside 0–1', async () => {
    const { chaos } = setup();
    expect(await failurePattern(chaos.maybeThrow(0), 50)).toBe('0'.repeat(50));
    expect(await failurePattern(chaos.maybeThrow(1), 50)).toBe('1'.repeat(50));
    expect(() => chaos.maybeThrow(1.5)).toThrow('Expected `probability` to be a number from 0 to 1, got `1.5`');
    expect(() => chaos.maybeThrow(Number.NaN)).toThrow(ConfigurationError);
  });

  it('passes calls through again after heal', async () => {
    const { chaos } = setup();
    chaos.alwaysThrow();
    await expect(chaos.get('k')).rejects.toThrow(ConnectionError);
    chaos.heal();
    await chaos.set('k', 'v', 1000);
    expect(await chaos.get('k')).toBe('v');
  });
});

describe('ChaosRemoteTier latency and blackhole', () => {
  it('delays every call by exactly the delay', async () => {
    const { chaos } = setup();
    await chaos.set('k', 'v', 60_000);
    chaos.delay(50);
    const read = track(chaos.get('k'));
    await vi.advanceTimersByTimeAsync(49);
    expect(read.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(read).toMatchObject({ state: 'resolved', value: 'v' });
  });

  it('raises an injected error only after the delay', async () => {
    const { chaos } = setup();
    chaos.delay('20ms').alwaysThrow();
    const read = track(chaos.get('k'));
    await vi.advanceTimersByTimeAsync(19);
    expect(read.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(read.state).toBe('rejected');
  });

  it('holds blackholed calls however long it takes, until heal lets them through', async () => {
    const { inner, chaos } = setup();
    chaos.blackhole();
    const write = track(chaos.set('k', 'v', 3_600_000));
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(write.state).toBe('pending');
    expect(chaos.counts.pending).toBe(1);
    expect(inner.size).toBe(0);
    chaos.heal();
    await vi.advanceTimersByTimeAsync(0);
    expect(write.state).toBe('resolved');
    expect(await inner.get('k')).toBe('v');
    expect(chaos.counts.pending).toBe(0);
  });

  it('rejects a blackholed call with CacheTimeoutError at exactly timeoutMs, and heal does not run it later', async () => {
    const { inner, chaos } = setup({ timeoutMs: 100 });
    chaos.blackhole();
    const write = track(chaos.set('k', 'v', 60_000));
    await vi.advanceTimersByTimeAsync(99);
    expect(write.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(write.state).toBe('rejected');
    expect(write.error).toBeInstanceOf(CacheTimeoutError);
    expect(isOutageError(write.error)).toBe(true);
    expect(chaos.counts).toMatchObject({ timeouts: 1, pending: 0 });
    chaos.heal();
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('times out a call whose delay exceeds timeoutMs without reaching the inner tier', async () => {
    const { inner, chaos } = setup({ timeoutMs: '30ms' });
    chaos.delay(1000);
    const write = track(chaos.set('k', 'v', 60_000));
    await vi.advanceTimersByTimeAsync(30);
    expect(write.error).toBeInstanceOf(CacheTimeoutError);
    await vi.advanceTimersByTimeAsync(1000);
    expect(inner.size).toBe(0);
    expect(chaos.counts.forwarded).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps the fate a call started with: faults set later apply to later calls only', async () => {
    const { chaos } = setup();
    await chaos.set('k', 'v', 60_000);
    chaos.delay(10);
    const before = track(chaos.get('k'));
    chaos.alwaysThrow();
    await vi.advanceTimersByTimeAsync(10);
    expect(before).toMatchObject({ state: 'resolved', value: 'v' });
    const after = track(chaos.get('k'));
    await vi.advanceTimersByTimeAsync(10);
    expect(after.error).toBeInstanceOf(ConnectionError);
  });

  it('lets a call through that was headed for the blackhole when heal comes during its delay', async () => {
    const { chaos } = setup();
    await chaos.set('k', 'v', 60_000);
    chaos.delay(10).blackhole();
    const read = track(chaos.get('k'));
    chaos.heal();
    await vi.advanceTimersByTimeAsync(10);
    expect(read).toMatchObject({ state: 'resolved', value: 'v' });
  });
});

describe('ChaosRemoteTier disconnect and close', () => {
  it('reports unavailable and fails calls at once while disconnected, until heal', async () => {
    const { chaos } = setup();
    chaos.delay(1000).disconnect();
    expect(chaos.available).toBe(false);
    const read = track(chaos.get('k'));
    await vi.advanceTimersByTimeAsync(0);
    expect(read.state).toBe('rejected');
    expect(read.error).toBeInstanceOf(ConnectionError);
    chaos.heal();
    expect(chaos.available).toBe(true);
    expect(await chaos.get('k')).toBeUndefined();
  });

  it('fails held and delayed calls on close and leaves no timer behind', async () => {
    const { inner, chaos } = setup({ timeoutMs: 60_000 });
    chaos.blackhole();
    const held = track(chaos.get('k'));
    chaos.delay(5000);
    const delayed = track(chaos.get('k'));
    await vi.advanceTimersByTimeAsync(0);
    await chaos.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(held.state).toBe('rejected');
    expect(delayed.state).toBe('rejected');
    expect(String(held.error)).toContain('Connection is closed.');
    expect(vi.getTimerCount()).toBe(0);
    expect(inner.available).toBe(false);
    expect(chaos.available).toBe(false);
  });

  it('drops a result that arrives after the timeout without an unhandled rejection', async () => {
    const slow = new InMemoryRemoteTier();
    let rejectInner: (error: Error) => void = () => {};
    slow.get = () =>
      new Promise<string | undefined>((_, reject) => {
        rejectInner = reject;
      });
    const chaos = new ChaosRemoteTier(slow, { timeoutMs: 10 });
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      const read = track(chaos.get('k'));
      await vi.advanceTimersByTimeAsync(10);
      expect(read.error).toBeInstanceOf(CacheTimeoutError);
      rejectInner(new Error('late failure'));
      vi.useRealTimers();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });
});
