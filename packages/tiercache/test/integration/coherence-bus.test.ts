/**
 * The bus and the subscriber connection under abuse: payloads published by anyone on the bus channel, the subscriber
 * connection killed in the middle of a stream of invalidations (pub/sub is at-most-once), and a subscriber that stays
 * connected but hears nothing.
 */
import { describe, expect, it } from 'vitest';
import type { CacheOptions } from 'tiercache';
import { createCache } from 'tiercache';
import { rawClient, sleep, uniquePrefix, waitFor } from './helpers/support.js';
import { useRedis } from './helpers/fixture.js';

const fixture = useRedis();
const { open } = fixture;

/** The names and descriptors of Object.prototype, to compare before and after. */
function prototypeSnapshot(): string {
  return JSON.stringify(
    Object.getOwnPropertyNames(Object.prototype)
      .sort()
      .map((name) => [name, typeof Object.getOwnPropertyDescriptor(Object.prototype, name)?.value]),
  );
}

describe('hostile payloads on the bus channel', () => {
  it('are dropped and counted; the process stays up, Object.prototype is unchanged and the bus still works', async () => {
    const prefix = uniquePrefix('hostile');
    const a = await open(prefix, { bus: { tracking: false } });
    await a.set('k', 'kept', { tags: ['t'] });
    const channel = `${prefix}__bus`;
    const key = `${prefix}k`;
    const prototypeBefore = prototypeSnapshot();
    const valid = { v: 1, from: 'someone-else' };
    const payloads: (string | Buffer)[] = [
      '',
      'garbage',
      '{',
      'null',
      'true',
      '42',
      '"a string"',
      '[]',
      JSON.stringify([valid]),
      JSON.stringify({}),
      // Wrong version, missing or wrong-typed fields.
      JSON.stringify({ ...valid, v: 2, keys: [key] }),
      JSON.stringify({ ...valid, v: '1', keys: [key] }),
      JSON.stringify({ v: 1, keys: [key] }),
      JSON.stringify({ v: 1, from: 7, keys: [key] }),
      JSON.stringify({ v: 1, from: '', keys: [key] }),
      JSON.stringify({ v: 1, from: 'x'.repeat(65), keys: [key] }),
      JSON.stringify({ ...valid, keys: key }),
      JSON.stringify({ ...valid, keys: [] }),
      JSON.stringify({ ...valid, keys: [''] }),
      JSON.stringify({ ...valid, keys: [42] }),
      JSON.stringify({ ...valid, keys: [key, null] }),
      JSON.stringify({ ...valid, keys: [{ toString: key }] }),
      JSON.stringify({ ...valid, keys: Array.from({ length: 1001 }, () => key) }),
      JSON.stringify({ ...valid, keys: ['x'.repeat(5000)] }),
      JSON.stringify({ ...valid, keys: [key], extra: 1 }),
      JSON.stringify({ ...valid, prefix, tags: 't' }),
      JSON.stringify({ ...valid, prefix, tags: [] }),
      JSON.stringify({ ...valid, prefix: 5, tags: ['t'] }),
      JSON.stringify({ ...valid, prefix, tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }),
      JSON.stringify({ ...valid, prefix, tags: ['x'.repeat(257)] }),
      JSON.stringify({ ...valid, clear: '' }),
      JSON.stringify({ ...valid, clear: 0 }),
      JSON.stringify({ ...valid, clear: [prefix] }),
      JSON.stringify({ ...valid, keys: [key], clear: prefix }),
      // Oversize: more than 1 MiB, however well-formed.
      JSON.stringify({ ...valid, keys: [key], pad: 'x'.repeat(1024 * 1024) }),
      JSON.stringify({ ...valid, clear: `${prefix}${'x'.repeat(1024 * 1024)}` }),
      // Prototype pollution attempts, as JSON.parse sees them (an own "__proto__" key) and as a nested path.
      '{"__proto__":{"polluted":true}}',
      `{"v":1,"from":"evil","keys":["${key}"],"__proto__":{"polluted":true}}`,
      `{"__proto__":{"v":1,"from":"evil","keys":["${key}"]}}`,
      `{"v":1,"from":"evil","__proto__":{"keys":["${key}"]}}`,
      `{"v":1,"from":"evil","clear":"${prefix}","constructor":{"prototype":{"polluted":true}}}`,
      JSON.stringify({ ...valid, keys: ['__proto__'], constructor: { prototype: { polluted: true } } }),
      // Deep nesting and binary garbage.
      `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x22, 0xc3, 0x28]),
    ];
    for (const payload of payloads) await fixture.raw.publish(channel, payload);
    await waitFor('every payload to be dropped', () => a.stats().bus?.dropped === payloads.length, {
      timeoutMs: 10_000,
    });

    const stats = a.stats().bus;
    expect(stats).toMatchObject({ dropped: payloads.length, received: 0 });
    expect(prototypeSnapshot()).toBe(prototypeBefore);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // Nothing was invalidated by any of them: the copy is still served from memory.
    expect(await a.getWithMeta('k')).toMatchObject({ value: 'kept', source: 'memory' });

    // The subscriber still applies a well-formed message from anyone who may publish (so the test could fail).
    await fixture.raw.publish(channel, JSON.stringify({ ...valid, keys: [key] }));
    await waitFor('the valid message to drop the copy', async () => (await a.getWithMeta('k'))?.source !== 'memory');
    expect(a.stats().bus).toMatchObject({ received: 1, dropped: payloads.length });
  });

  it('a well-formed message for another prefix, even one sharing this prefix’s text, touches nothing', async () => {
    const a = await open('app:user', { bus: { tracking: false } });
    await a.set('1', 'kept', { tags: ['t'] });
    const from = 'someone-else';
    for (const message of [
      { v: 1, from, keys: ['app:users:1', 'app:user1', 'app:1'] },
      { v: 1, from, prefix: 'app:users:', tags: ['t'] },
      { v: 1, from, prefix: 'app:', tags: ['t'] },
      { v: 1, from, clear: 'app:users:' },
      { v: 1, from, clear: 'app:' },
    ]) {
      await fixture.raw.publish('app:user:__bus', JSON.stringify(message));
    }
    await waitFor('the messages to arrive', () => a.stats().bus?.received === 5);
    expect(await a.getWithMeta('1')).toMatchObject({ value: 'kept', source: 'memory' });
  });
});

describe('the subscriber connection killed during a stream of invalidations', () => {
  for (const tracking of [true, false]) {
    it(`leaves 0 stale memory copies after it resubscribes (CLIENT KILL TYPE pubsub, tracking ${tracking ? 'on' : 'off'})`, async () => {
      const prefix = uniquePrefix('kill');
      const options: CacheOptions = { bus: { tracking }, timeouts: { redisMs: 1000 } };
      const a = await open(prefix, options);
      const b = await open(prefix, options);
      await waitFor('both to listen', () => [a, b].every((c) => c.stats().bus?.tracking === tracking));
      const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
      // B writes them itself, so it holds every key in memory (no invalidation of these writes comes back to it).
      await b.mset(keys.map((key) => ({ key, value: 'old', tags: [`t${key}`] })));
      expect(await b.mget(keys)).toEqual(keys.map(() => 'old'));
      expect(b.stats().memory?.entries).toBe(100);
      const resetsBefore = b.stats().bus?.resets ?? 0;

      // 100 invalidations by A (deletes, sets and tag invalidations), while B keeps reading and refilling its memory,
      // and the subscriber connections are killed three times along the way.
      let reading = true;
      const reader = (async () => {
        while (reading) {
          await b.mget(keys);
          await sleep(1);
        }
      })();
      for (const [i, key] of keys.entries()) {
        if (i % 30 === 10) await fixture.redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
        if (i % 3 === 0) await a.delete(key);
        else if (i % 3 === 1) await a.set(key, 'new');
        else await a.invalidateTags([`t${key}`]);
      }
      reading = false;
      await reader;
      await waitFor('B to resubscribe', () => (b.stats().bus?.resets ?? 0) > resetsBefore, { timeoutMs: 10_000 });
      await waitFor('tracking to be back on in both', () => [a, b].every((c) => c.stats().bus?.tracking === tracking));
      // Let the last messages arrive.
      await sleep(100);

      const expected = keys.map((_, i) => (i % 3 === 1 ? 'new' : undefined));
      // What B serves from memory now, key by key, must be what A last wrote.
      const served = await b.mget(keys);
      expect(served.map((value, i) => (value === expected[i] ? 'ok' : `${keys[i]}: ${String(value)}`))).toEqual(
        keys.map(() => 'ok'),
      );
      expect(await a.mget(keys)).toEqual(expected);
    });
  }
});

describe('a subscriber that is connected but hears nothing', () => {
  it('flushes memory within about twice the heartbeat, and refills once Redis answers again', async () => {
    const heartbeatMs = 150;
    const prefix = uniquePrefix('silent');
    const b = await open(prefix, { bus: { heartbeatMs }, timeouts: { redisMs: 50 } });
    await waitFor('B to track', () => b.stats().bus?.tracking === true);
    await b.set('k', 'cached');
    expect(await b.getWithMeta('k')).toMatchObject({ source: 'memory' });
    const resetsBefore = b.stats().bus?.resets ?? 0;

    // Every connection stays open, and the server answers nothing for 1.5 s: a blackholed subscriber.
    const start = performance.now();
    await fixture.redis.pause(1500);
    await waitFor('the flush', () => (b.stats().bus?.resets ?? 0) > resetsBefore, { timeoutMs: 1400, intervalMs: 5 });
    const flushedAfter = performance.now() - start;
    console.log(
      `silent subscriber: memory flushed ${Math.round(flushedAfter)} ms into the stall (heartbeat ${heartbeatMs} ms)`,
    );
    expect(b.stats().memory?.entries).toBe(0);
    // Twice the heartbeat, plus timer slack on a busy machine.
    expect(flushedAfter).toBeLessThan(2 * heartbeatMs + 150);

    await waitFor('Redis to answer again', async () => (await b.get('k')) === 'cached', { timeoutMs: 10_000 });
    expect(await b.getWithMeta('k')).toMatchObject({ value: 'cached', source: 'memory' });
  });
});

describe('what bounds a lost invalidation', () => {
  it('memory.maxTtl: with the bus off, another instance’s change reaches B once B’s copy reaches maxTtl', async () => {
    const prefix = uniquePrefix('max-ttl');
    const a = await open(prefix, { bus: false });
    const b = await open(prefix, { bus: false, memory: { maxTtl: 300 } });
    await a.set('k', 'old', { ttl: '1h' });
    expect(await b.get('k')).toBe('old');
    const cachedAt = performance.now();
    await a.set('k', 'new', { ttl: '1h' });
    // Nothing tells B: it serves its copy, but not past maxTtl.
    expect(await b.getWithMeta('k')).toMatchObject({ value: 'old', source: 'memory' });
    await waitFor('B to read the new value', async () => (await b.get('k')) === 'new', {
      timeoutMs: 2000,
      intervalMs: 10,
    });
    const servedOldFor = performance.now() - cachedAt;
    expect(servedOldFor).toBeGreaterThanOrEqual(250);
    expect(servedOldFor).toBeLessThan(1000);
  });
});

describe('tracking that could not be switched on', () => {
  it('is retried on the next heartbeat, and memory read while it was off is flushed once it is on', async () => {
    const prefix = uniquePrefix('tracking-retry');
    // B's Redis user may not run CLIENT TRACKING (an ACL here; a timed-out command does the same).
    await fixture.raw.call('ACL', 'SETUSER', 'coherence', 'on', '>secret', '~*', '&*', '+@all', '-client|tracking');
    try {
      const a = await open(prefix);
      const b = await open(prefix, {
        redis: `redis://coherence:secret@127.0.0.1:${fixture.redis.port}`,
        bus: { heartbeatMs: 200 },
      });
      await waitFor('A to track', () => a.stats().bus?.tracking === true);
      await waitFor('B to fail to', () => b.stats().redis.connectionErrors > 0);
      expect(b.stats().bus?.tracking).toBe(false);

      await a.set('k', 'old');
      await waitFor('B to hold k in memory', async () => (await b.getWithMeta('k'))?.source === 'memory');
      // A relies on tracking and publishes no key message; B, not tracking, does not hear of this write.
      await a.set('k', 'new');
      await sleep(100);
      expect(await b.getWithMeta('k')).toMatchObject({ value: 'old', source: 'memory' });

      await fixture.raw.call('ACL', 'SETUSER', 'coherence', '+client|tracking');
      await waitFor('B to track', () => b.stats().bus?.tracking === true, { timeoutMs: 5000 });
      expect(await b.get('k')).toBe('new');
      await a.set('k', 'newer');
      await waitFor('B to hear of the next write', async () => (await b.get('k')) === 'newer', { timeoutMs: 2000 });
    } finally {
      await fixture.raw.call('ACL', 'DELUSER', 'coherence');
    }
  });
});

describe('tracking that comes on late (a start-up slower than the first reads)', () => {
  it('ready() resolves once other instances’ writes reach this memory tier (tracking on), not just once connected', async () => {
    const cache = fixture.track(createCache({ prefix: uniquePrefix('ready-tracking'), redis: fixture.redis.url }));
    expect(await cache.ready('5s')).toBe(true);
    expect(cache.stats().bus?.tracking).toBe(true);
  });

  it('checks the copies kept before it against Redis: a changed one is dropped, an unchanged one stays', async () => {
    const prefix = uniquePrefix('late-tracking');
    const a = await open(prefix);
    await waitFor('A to track', () => a.stats().bus?.tracking === true);
    await a.set('changed', 'v1');
    await a.set('same', 'kept');

    // B's data connection holds its tracking pipeline until the gate opens: a start-up whose CLIENT TRACKING is slow.
    const client = await rawClient(fixture.redis.port);
    let open_: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open_ = resolve));
    const pipeline = client.pipeline.bind(client);
    client.pipeline = ((...args: Parameters<typeof client.pipeline>) => {
      const p = pipeline(...args);
      const exec = p.exec.bind(p);
      p.exec = (async () => {
        await gate;
        return exec();
      }) as typeof p.exec;
      return p;
    }) as typeof client.pipeline;
    const b = fixture.track(createCache({ prefix, redis: client }));
    expect(await b.get('changed')).toBe('v1');
    expect(await b.get('same')).toBe('kept');
    expect(await b.getWithMeta('changed')).toMatchObject({ source: 'memory' });
    expect(b.stats().bus?.tracking).toBe(false);

    // A tracks, so it publishes no key message: nothing can tell B yet.
    await a.set('changed', 'v2');
    await sleep(50);
    expect(await b.getWithMeta('changed')).toMatchObject({ value: 'v1', source: 'memory' });

    const resetsBefore = b.stats().bus?.resets ?? 0;
    open_();
    await waitFor('B to track', () => b.stats().bus?.tracking === true);
    await waitFor('B to drop its changed copy', async () => (await b.get('changed')) === 'v2');
    expect(await b.getWithMeta('same')).toMatchObject({ value: 'kept', source: 'memory' });
    // A start-up, not a lost connection: no reset counted.
    expect(b.stats().bus?.resets ?? 0).toBe(resetsBefore);
  });
});
