/**
 * The bus counters on the `tiercache:counter` channel, against a real redis-server: one instance publishes a tag
 * invalidation, another receives it; each increment the stats show was published on the channel.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CHANNELS } from 'tiercache';
import type { CounterMessage } from 'tiercache';
import { uniquePrefix, waitFor } from './helpers/support.js';
import { useRedis } from './helpers/fixture.js';

const fixture = useRedis();
const { open } = fixture;

const seen: CounterMessage[] = [];
const listener = (message: unknown): void => void seen.push(message as CounterMessage);
subscribe(CHANNELS.counter, listener);
afterEach(() => {
  seen.length = 0;
});
afterAll(() => unsubscribe(CHANNELS.counter, listener));

describe('bus counters on tiercache:counter', () => {
  it('publishes the messages one instance sends and the ones another receives', async () => {
    const prefix = uniquePrefix('obs-bus');
    const a = await open(prefix, { bus: { tracking: false } });
    const b = await open(prefix, { bus: { tracking: false } });
    await b.set('user:1', 'old', { tags: ['users'] });
    await a.invalidateTags(['users']);
    await waitFor('b to receive the invalidation', () => (b.stats().bus?.received ?? 0) > 0);
    const sum = (counter: CounterMessage['counter']): number =>
      seen.filter((m) => m.prefix === prefix && m.counter === counter).reduce((n, m) => n + m.by, 0);
    expect(sum('busPublished')).toBe((a.stats().bus?.published ?? 0) + (b.stats().bus?.published ?? 0));
    expect(sum('busPublished')).toBeGreaterThanOrEqual(1);
    expect(sum('busReceived')).toBe((a.stats().bus?.received ?? 0) + (b.stats().bus?.received ?? 0));
    expect(await b.get('user:1')).toBeUndefined();
  });
});
