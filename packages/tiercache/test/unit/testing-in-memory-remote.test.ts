import { describe, expect, it } from 'vitest';
import { createEntry, encodeEntry } from '../../src/entry.js';
import { ConnectionError, RedisReplyError } from '../../src/errors.js';
import { isOutageError } from '../../src/resilience/breaker.js';
import { FakeClock, InMemoryRemoteTier } from '../../src/testing/index.js';

function setup(): { clock: FakeClock; tier: InMemoryRemoteTier } {
  const clock = new FakeClock();
  return { clock, tier: new InMemoryRemoteTier({ clock }) };
}

/** An encoded envelope created at `createdAt`, as the cache stores it. */
function envelope(value: unknown, createdAt: number): string {
  return encodeEntry(createEntry(value, createdAt, 60_000, 0, []));
}

describe('InMemoryRemoteTier storage', () => {
  it('keeps a key until exactly its PX time, against the injected clock', async () => {
    const { clock, tier } = setup();
    await tier.set('k', 'v', 100);
    expect(tier.pttl('k')).toBe(100);
    clock.advance(99);
    expect(await tier.get('k')).toBe('v');
    expect(tier.pttl('k')).toBe(1);
    clock.advance(1);
    expect(await tier.get('k')).toBeUndefined();
    expect(tier.pttl('k')).toBe(-2);
  });

  it('reads many keys in order, with undefined for missing and expired ones', async () => {
    const { clock, tier } = setup();
    await tier.setMany([
      { key: 'a', value: 'A', ttlMs: 1000 },
      { key: 'b', value: 'B', ttlMs: 10 },
    ]);
    clock.advance(10);
    expect(await tier.getMany(['a', 'missing', 'b'])).toStrictEqual(['A', undefined, undefined]);
    expect(tier.keys()).toStrictEqual(['a']);
    expect(tier.size).toBe(1);
  });

  it('refuses a TTL Redis would refuse, as a reply error that does not count as an outage, writing nothing', async () => {
    const { tier } = setup();
    const failed = tier.setMany([
      { key: 'a', value: 'A', ttlMs: 1000 },
      { key: 'b', value: 'B', ttlMs: 0 },
    ]);
    await expect(failed).rejects.toThrow(RedisReplyError);
    await expect(failed).rejects.toThrow("Redis refused the command: ERR invalid expire time in 'set' command");
    expect(isOutageError(await failed.catch((error: unknown) => error))).toBe(false);
    await expect(tier.set('c', 'C', 1.5)).rejects.toThrow('ERR invalid expire time');
    expect(tier.size).toBe(0);
  });

  it('counts only live keys among those it deletes', async () => {
    const { clock, tier } = setup();
    await tier.set('live', '1', 1000);
    await tier.set('expired', '2', 1);
    clock.advance(1);
    expect(await tier.deleteMany(['live', 'expired', 'missing'])).toBe(1);
    expect(await tier.get('live')).toBeUndefined();
  });

  it('deletes by a literal prefix, so app:user: leaves app:users: and glob characters alone', async () => {
    const { tier } = setup();
    for (const key of ['app:user:1', 'app:user:2', 'app:users:1', 'app:user*:1', 'other:user:1']) {
      await tier.set(key, 'v', 1000);
    }
    expect(await tier.deleteByPrefix('app:user:')).toBe(2);
    expect(tier.keys()).toStrictEqual(['app:users:1', 'app:user*:1', 'other:user:1']);
    expect(await tier.deleteByPrefix('app:user*')).toBe(1);
    expect(tier.keys()).toStrictEqual(['app:users:1', 'other:user:1']);
  });

  it('fails every call with a connection error once closed', async () => {
    const { tier } = setup();
    await tier.set('k', 'v', 1000);
    await tier.close();
    expect(tier.available).toBe(false);
    await expect(tier.get('k')).rejects.toThrow(ConnectionError);
    await expect(tier.set('k', 'v', 1000)).rejects.toThrow('Connection is closed.');
  });
});

describe('InMemoryRemoteTier locks', () => {
  it('grants a lock to one owner at a time until it expires', async () => {
    const { clock, tier } = setup();
    expect(await tier.acquireLock('lock', 'A', 100)).toBe(true);
    expect(await tier.acquireLock('lock', 'B', 100)).toBe(false);
    clock.advance(100);
    expect(await tier.acquireLock('lock', 'B', 100)).toBe(true);
  });

  it('extends and releases a lock only for the token that holds it', async () => {
    const { clock, tier } = setup();
    await tier.acquireLock('lock', 'A', 100);
    expect(await tier.extendLock('lock', 'B', 1000)).toBe(false);
    expect(await tier.extendLock('lock', 'A', 1000)).toBe(true);
    expect(tier.pttl('lock')).toBe(1000);
    await tier.releaseLock('lock', 'B');
    expect(await tier.get('lock')).toBe('A');
    clock.advance(1000);
    // A's lock expired and B took it: A's late release must not delete B's lock.
    expect(await tier.acquireLock('lock', 'B', 1000)).toBe(true);
    await tier.releaseLock('lock', 'A');
    expect(await tier.get('lock')).toBe('B');
    await tier.releaseLock('lock', 'B');
    expect(await tier.get('lock')).toBeUndefined();
  });
});

describe('InMemoryRemoteTier setLoaded', () => {
  const base = { key: 'data', lockKey: 'lock', ttlMs: 1000, channel: 'loaded' };

  it('writes, releases the lock and publishes the key while the token holds the lock', async () => {
    const { clock, tier } = setup();
    const heard: string[] = [];
    tier.subscribe('loaded', (message) => heard.push(message));
    await tier.acquireLock('lock', 'T', 500);
    const value = envelope('fresh', clock.now());
    const written = tier.setLoaded({ ...base, value, createdAt: clock.now(), token: 'T' });
    // Not delivered inside the call: a subscriber connection receives it later.
    expect(heard).toStrictEqual([]);
    expect(await written).toBe(true);
    expect(heard).toStrictEqual(['data']);
    expect(await tier.get('data')).toBe(value);
    expect(await tier.get('lock')).toBeUndefined();
  });

  it('writes nothing when the token no longer holds the lock', async () => {
    const { clock, tier } = setup();
    await tier.acquireLock('lock', 'other', 500);
    const value = envelope('late', clock.now());
    expect(await tier.setLoaded({ ...base, value, createdAt: clock.now(), token: 'T' })).toBe(false);
    expect(await tier.get('data')).toBeUndefined();
    expect(await tier.get('lock')).toBe('other');
  });

  it('does not let an older load overwrite a newer write, and still releases its lock', async () => {
    const { clock, tier } = setup();
    const loadStarted = clock.now();
    await tier.acquireLock('lock', 'T', 5000);
    clock.advance(10);
    const newer = envelope('written meanwhile', clock.now());
    await tier.set('data', newer, 1000);
    expect(
      await tier.setLoaded({ ...base, value: envelope('old', loadStarted), createdAt: loadStarted, token: 'T' }),
    ).toBe(false);
    expect(await tier.get('data')).toBe(newer);
    expect(await tier.get('lock')).toBeUndefined();
  });

  it('writes without a lock when no token is given, and publishes to nobody when no one listens', async () => {
    const { clock, tier } = setup();
    const value = envelope('v', clock.now());
    expect(await tier.setLoaded({ ...base, value, createdAt: clock.now(), token: '' })).toBe(true);
    expect(await tier.get('data')).toBe(value);
    expect(tier.deliver('nobody', 'x')).toBe(0);
  });

  it('stops delivering to a subscriber once disposed', async () => {
    const { tier } = setup();
    const heard: string[] = [];
    const dispose = tier.subscribe('c', (message) => heard.push(message));
    expect(tier.deliver('c', 'one')).toBe(1);
    dispose();
    expect(tier.deliver('c', 'two')).toBe(0);
    await Promise.resolve();
    expect(heard).toStrictEqual(['one']);
  });
});

describe('InMemoryRemoteTier tags, batches and pub/sub', () => {
  it('unlinks the extra keys of a delete without counting them', async () => {
    const { tier } = setup();
    await tier.set('a', '1', 1000);
    await tier.set('a:lock', 'token', 1000);
    expect(await tier.deleteMany(['a', 'b'], ['a:lock', 'b:lock'])).toBe(1);
    expect(tier.size).toBe(0);
  });

  it('invalidates the live members of tag sets with their locks, once, and drops the sets', async () => {
    const { clock, tier } = setup();
    await tier.setMany([
      { key: 'p:1', value: 'one', ttlMs: 1000, tagKeys: ['p:__tag:red'] },
      { key: 'p:2', value: 'two', ttlMs: 1000, tagKeys: ['p:__tag:red', 'p:__tag:blue'] },
      { key: 'p:3', value: 'three', ttlMs: 10, tagKeys: ['p:__tag:blue'] },
      { key: 'p:4', value: 'four', ttlMs: 1000 },
    ]);
    await tier.acquireLock('p:2:lock', 'T', 1000);
    clock.advance(11);
    expect(tier.tagMembers('p:__tag:blue')).toStrictEqual(['p:2']);
    expect(await tier.invalidateTags(['p:__tag:red', 'p:__tag:blue'], (key) => `${key}:lock`)).toBe(2);
    expect(tier.keys()).toStrictEqual(['p:4']);
    expect(tier.tagMembers('p:__tag:red')).toStrictEqual([]);
    expect(await tier.invalidateTags(['p:__tag:red'], (key) => `${key}:lock`)).toBe(0);
  });

  it('lets a tag set expire with its last member, as the Redis tier does', async () => {
    const { clock, tier } = setup();
    await tier.setMany([{ key: 'k', value: 'v', ttlMs: 100, tagKeys: ['t'] }]);
    clock.advance(99);
    expect(tier.tagMembers('t')).toStrictEqual(['k']);
    clock.advance(1);
    expect(tier.tagMembers('t')).toStrictEqual([]);
    expect(await tier.deleteMany(['t'])).toBe(0);
  });

  it('drops tag sets under the prefix with the entries on deleteByPrefix, and counts them as keys', async () => {
    const { tier } = setup();
    await tier.setMany([
      { key: 'app:1', value: 'v', ttlMs: 1000, tagKeys: ['app:__tag:x'] },
      { key: 'other:1', value: 'v', ttlMs: 1000, tagKeys: ['other:__tag:x'] },
    ]);
    expect(await tier.deleteByPrefix('app:')).toBe(2);
    expect(tier.tagMembers('app:__tag:x')).toStrictEqual([]);
    expect(tier.tagMembers('other:__tag:x')).toStrictEqual(['other:1']);
  });

  it('indexes the tags of a loaded write even when the write is skipped, like the Redis pipeline', async () => {
    const { clock, tier } = setup();
    const value = envelope('v', clock.now());
    const write = { key: 'data', lockKey: 'lock', ttlMs: 1000, channel: '', value, createdAt: clock.now() };
    expect(await tier.setLoaded({ ...write, token: 'not-held', tagKeys: ['t'] })).toBe(false);
    expect(tier.tagMembers('t')).toStrictEqual(['data']);
    expect(await tier.invalidateTags(['t'], (key) => `${key}:lock`)).toBe(0);
  });

  it('publishes asynchronously to subscribers and refuses to publish once closed', async () => {
    const { tier } = setup();
    const heard: string[] = [];
    tier.subscribe('c', (message) => heard.push(message));
    const published = tier.publish('c', 'hello');
    expect(heard).toStrictEqual([]);
    await published;
    expect(heard).toStrictEqual(['hello']);
    await tier.close();
    await expect(tier.publish('c', 'late')).rejects.toThrow(ConnectionError);
    await expect(tier.invalidateTags(['t'], (key) => key)).rejects.toThrow(ConnectionError);
  });
});
