import { afterEach, describe, expect, it, vi } from 'vitest';
import { LruMemoryTier } from '../../src/tiers/memory.js';
import { DAY } from './fake-clock.js';

const T0 = Date.UTC(2026, 0, 1);
const FOREVER = Number.MAX_SAFE_INTEGER;

function tier(maxEntries = 100, maxBytes = 1_000_000): LruMemoryTier<string> {
  return new LruMemoryTier<string>({ maxEntries, maxBytes });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('LruMemoryTier bounds', () => {
  it('keeps at most maxEntries and evicts the least recently used', () => {
    const memory = tier(3);
    memory.set('a', 'A', 1, FOREVER);
    memory.set('b', 'B', 1, FOREVER);
    memory.set('c', 'C', 1, FOREVER);
    // Reading `a` makes `b` the least recently used.
    expect(memory.get('a', T0)).toBe('A');
    memory.set('d', 'D', 1, FOREVER);
    expect(memory.entries).toBe(3);
    expect(memory.get('b', T0)).toBeUndefined();
    expect(['a', 'c', 'd'].map((k) => memory.get(k, T0))).toStrictEqual(['A', 'C', 'D']);
  });

  it('keeps at most maxBytes and evicts the least recently used until the new entry fits', () => {
    const memory = tier(100, 100);
    memory.set('a', 'A', 40, FOREVER);
    memory.set('b', 'B', 40, FOREVER);
    expect(memory.bytes).toBe(80);
    expect(memory.get('a', T0)).toBe('A');
    memory.set('c', 'C', 40, FOREVER);
    expect(memory.bytes).toBeLessThanOrEqual(100);
    expect(memory.get('b', T0)).toBeUndefined();
    expect(memory.get('a', T0)).toBe('A');
    expect(memory.get('c', T0)).toBe('C');
    // One big entry pushes out both older ones.
    memory.set('d', 'D', 100, FOREVER);
    expect(memory.entries).toBe(1);
    expect(memory.bytes).toBe(100);
  });

  it('does not store an entry larger than maxBytes and drops the older copy of that key', () => {
    const memory = tier(100, 100);
    memory.set('other', 'O', 10, FOREVER);
    memory.set('big', 'small first', 10, FOREVER);
    memory.set('big', 'too big', 101, FOREVER);
    expect(memory.get('big', T0)).toBeUndefined();
    expect(memory.get('other', T0)).toBe('O');
    expect(memory.bytes).toBe(10);
  });

  it('counts an entry of size 0 as one byte', () => {
    const memory = tier(100, 2);
    memory.set('a', 'A', 0, FOREVER);
    memory.set('b', 'B', 0, FOREVER);
    expect(memory.bytes).toBe(2);
    memory.set('c', 'C', 0, FOREVER);
    expect(memory.entries).toBe(2);
  });

  it('replaces the value and size of a key that is set again', () => {
    const memory = tier(100, 100);
    memory.set('a', 'first', 30, FOREVER);
    memory.set('a', 'second', 50, FOREVER);
    expect(memory.get('a', T0)).toBe('second');
    expect(memory.entries).toBe(1);
    expect(memory.bytes).toBe(50);
  });
});

describe('LruMemoryTier expiry', () => {
  it('serves an entry until its timestamp and not at or after it', () => {
    const memory = tier();
    memory.set('k', 'v', 1, T0 + 1000);
    expect(memory.get('k', T0)).toBe('v');
    expect(memory.get('k', T0 + 999)).toBe('v');
    expect(memory.get('k', T0 + 1000)).toBeUndefined();
  });

  it('drops an expired entry when it is read', () => {
    const memory = tier();
    memory.set('k', 'v', 7, T0 + 1000);
    expect(memory.entries).toBe(1);
    expect(memory.get('k', T0 + 5000)).toBeUndefined();
    expect(memory.entries).toBe(0);
    expect(memory.bytes).toBe(0);
    // Once dropped it stays gone, even if the clock were read earlier again.
    expect(memory.get('k', T0)).toBeUndefined();
  });

  it('keeps a 30-day entry for 29 days and drops it by day 31', () => {
    const memory = tier();
    memory.set('month', 'v', 1, T0 + 30 * DAY);
    expect(memory.get('month', T0 + 1)).toBe('v');
    expect(memory.get('month', T0 + 29 * DAY)).toBe('v');
    expect(memory.get('month', T0 + 31 * DAY)).toBeUndefined();
  });

  it('keeps a one-year entry for 364 days and drops it by day 366', () => {
    const memory = tier();
    memory.set('year', 'v', 1, T0 + 365 * DAY);
    expect(memory.get('year', T0 + 1)).toBe('v');
    expect(memory.get('year', T0 + 29 * DAY)).toBe('v');
    expect(memory.get('year', T0 + 364 * DAY)).toBe('v');
    expect(memory.get('year', T0 + 366 * DAY)).toBeUndefined();
  });

  it('arms no timer for an entry, however long it lives', () => {
    vi.useFakeTimers();
    const memory = tier();
    memory.set('short', 'v', 1, Date.now() + 10);
    memory.set('long', 'v', 1, Date.now() + 365 * DAY);
    expect(vi.getTimerCount()).toBe(0);
    // Were the expiry a timer, a 32-bit overflow would fire it at once (BentoCache #61); time moving proves there is none.
    vi.advanceTimersByTime(5);
    expect(memory.get('long', Date.now())).toBe('v');
  });
});

describe('LruMemoryTier deletion', () => {
  it('deletes one key and says whether it was there', () => {
    const memory = tier();
    memory.set('a', 'A', 1, FOREVER);
    expect(memory.delete('a')).toBe(true);
    expect(memory.delete('a')).toBe(false);
    expect(memory.get('a', T0)).toBeUndefined();
  });

  it('deleteByPrefix removes only keys that start with the prefix and counts them', () => {
    const memory = tier();
    const keys = ['app:user:1', 'app:user:2', 'app:user:2:x', 'app:users:1', 'app:user', 'x:app:user:1', 'app:use'];
    for (const key of keys) memory.set(key, key, 1, FOREVER);
    expect(memory.deleteByPrefix('app:user:')).toBe(3);
    const left = keys.filter((key) => memory.get(key, T0) !== undefined);
    expect(left).toStrictEqual(['app:users:1', 'app:user', 'x:app:user:1', 'app:use']);
  });

  it('deleteByPrefix treats glob and regex characters literally', () => {
    const memory = tier();
    for (const key of ['a*:1', 'ab:1', 'a.:1', 'a[b]:1']) memory.set(key, key, 1, FOREVER);
    expect(memory.deleteByPrefix('a*:')).toBe(1);
    expect(memory.deleteByPrefix('a.:')).toBe(1);
    expect(memory.get('ab:1', T0)).toBe('ab:1');
    expect(memory.get('a[b]:1', T0)).toBe('a[b]:1');
  });

  it('clear empties the tier', () => {
    const memory = tier();
    memory.set('a', 'A', 5, FOREVER);
    memory.set('b', 'B', 5, FOREVER);
    memory.clear();
    expect(memory.entries).toBe(0);
    expect(memory.bytes).toBe(0);
    expect(memory.get('a', T0)).toBeUndefined();
  });
});

describe('LruMemoryTier.deleteWhere', () => {
  it('removes only keys under the prefix whose value matches, and counts them', () => {
    const memory = tier();
    const entries: [string, string][] = [
      ['app:user:1', 'tag:a'],
      ['app:user:2', 'tag:b'],
      ['app:user:3', 'tag:a'],
      ['app:users:1', 'tag:a'],
      ['other:1', 'tag:a'],
    ];
    for (const [key, value] of entries) memory.set(key, value, 1, FOREVER);
    expect(memory.deleteWhere('app:user:', (value) => value === 'tag:a')).toBe(2);
    const left = entries.map(([key]) => key).filter((key) => memory.get(key, T0) !== undefined);
    expect(left).toStrictEqual(['app:user:2', 'app:users:1', 'other:1']);
    expect(memory.entries).toBe(3);
    expect(memory.bytes).toBe(3);
  });

  it('removes nothing when nothing matches', () => {
    const memory = tier();
    memory.set('p:1', 'x', 1, FOREVER);
    expect(memory.deleteWhere('p:', () => false)).toBe(0);
    expect(memory.deleteWhere('q:', () => true)).toBe(0);
    expect(memory.get('p:1', T0)).toBe('x');
  });
});
