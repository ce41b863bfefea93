/**
 * Replay of invalidations queued while Redis was unreachable, through the whole cache over the in-memory shared tier
 * (no I/O): the next Redis call waits for the replay, a replay that meets an outage fails that call once (no second
 * attempt), and a replayed command that Redis refuses for itself is skipped instead of blocking every later call.
 */
import { describe, expect, it } from 'vitest';
import { createCache } from '../../src/index.js';
import { RedisReplyError } from '../../src/errors.js';
import { ChaosRemoteTier, InMemoryRemoteTier } from '../../src/testing/index.js';

/** A shared tier whose tag invalidations Redis refuses (a tag key overwritten with a string: WRONGTYPE) while `refuse`. */
class RefusingTags extends InMemoryRemoteTier {
  refuse = false;

  override invalidateTags(tagKeys: readonly string[], lockKeyOf: (key: string) => string): Promise<number> {
    if (this.refuse) {
      const cause = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
      cause.name = 'ReplyError';
      return Promise.reject(new RedisReplyError(`Redis refused the command: ${cause.message}`, { cause }));
    }
    return super.invalidateTags(tagKeys, lockKeyOf);
  }
}

describe('replay of invalidations after an outage', () => {
  it('runs before the next Redis read, so that read does not bring back a value deleted during the outage', async () => {
    const chaos = new ChaosRemoteTier(new InMemoryRemoteTier());
    const cache = createCache({ prefix: 'app', redis: chaos, breaker: false });
    await cache.set('k', 'old', { tags: ['t'] });
    await cache.set('g', 'old', { tags: ['t'] });
    chaos.alwaysThrow();
    await cache.delete('k');
    await cache.invalidateTags(['t']);
    expect(cache.stats().bus).toMatchObject({ replayPending: 2, replayed: 0 });
    chaos.heal();

    expect(await cache.mget(['k', 'g'])).toEqual([undefined, undefined]);
    expect(await cache.get('k')).toBeUndefined();
    expect(await chaos.inner.get('app:k')).toBeUndefined();
    expect(await chaos.inner.get('app:g')).toBeUndefined();
    expect(cache.stats().bus).toMatchObject({ replayPending: 0, replayed: 2 });
    await cache.close();
  });

  it('a call that meets the replay failing on an outage fails with it, without a second attempt of its own', async () => {
    const chaos = new ChaosRemoteTier(new InMemoryRemoteTier());
    const cache = createCache({ prefix: 'app', redis: chaos, breaker: false });
    chaos.alwaysThrow();
    await cache.delete('k');
    chaos.resetCounts();

    expect(await cache.get('other')).toBeUndefined();
    expect(chaos.counts.byOperation).toMatchObject({ deleteMany: 1, get: 0 });
    expect(cache.stats().bus?.replayPending).toBe(1);
    expect(cache.stats().redis.errors).toBeGreaterThanOrEqual(2);

    chaos.heal();
    expect(await cache.get('other')).toBeUndefined();
    expect(cache.stats().bus).toMatchObject({ replayPending: 0, replayed: 1 });
    await cache.close();
  });

  it('skips a replayed command Redis refuses for itself, replays the rest, and holds up no later call', async () => {
    const tier = new RefusingTags();
    const chaos = new ChaosRemoteTier(tier);
    // Without memory, so every read below goes to the shared tier.
    const cache = createCache({ prefix: 'app', redis: chaos, breaker: false, memory: false });
    await cache.set('k', 'old');
    chaos.alwaysThrow();
    await cache.invalidateTags(['t']);
    await cache.delete('k');
    chaos.heal();
    tier.refuse = true;

    await cache.set('after', 'written after the outage');
    expect(await tier.get('app:after')).toBeDefined();
    expect(await tier.get('app:k')).toBeUndefined();
    expect(cache.stats().bus).toMatchObject({ replayPending: 0 });
    chaos.resetCounts();
    expect(await cache.get('after')).toBe('written after the outage');
    expect(chaos.counts.byOperation.invalidateTags).toBe(0);
    await cache.close();
  });
});
