import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HitClock } from '../../src/cache/hit-clock.js';

describe('HitClock: memory hits share one reading of the clock', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads Date.now again once its 1 ms timer has run', () => {
    const clock = new HitClock();
    expect(clock.now()).toBe(1_000_000);
    vi.setSystemTime(1_000_000 + 0.5);
    // Within the reading's millisecond the first reading stands.
    expect(clock.now()).toBe(1_000_000);
    vi.advanceTimersByTime(1);
    expect(clock.now()).toBe(Date.now());
    expect(clock.now()).toBeGreaterThan(1_000_000);
    clock.close();
  });

  it('reads Date.now again after 64 hits even when the timer cannot run (a busy loop)', () => {
    const clock = new HitClock();
    const first = clock.now();
    // Time moves without the timer getting a turn, as in a loop that never yields to it.
    vi.setSystemTime(first + 50);
    const seen = Array.from({ length: 64 }, () => clock.now());
    expect(seen.slice(0, 63).every((t) => t === first)).toBe(true);
    expect(seen[63]).toBe(first + 50);
    clock.close();
  });

  it('arms at most one timer, and close() leaves none', () => {
    const clock = new HitClock();
    for (let i = 0; i < 500; i++) clock.now();
    expect(vi.getTimerCount()).toBe(1);
    clock.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reads an injected clock on every hit, exactly', () => {
    let t = 5;
    const clock = new HitClock({ now: () => t });
    expect(clock.now()).toBe(5);
    t = 6;
    expect(clock.now()).toBe(6);
    expect(vi.getTimerCount()).toBe(0);
  });
});
