import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { FakeClock } from '../../src/testing/index.js';

describe('FakeClock', () => {
  it('starts at a fixed epoch unless told otherwise, and stands still until moved', () => {
    expect(new FakeClock().now()).toBe(Date.UTC(2026, 0, 1));
    const clock = new FakeClock(1000);
    expect(clock.now()).toBe(1000);
    expect(clock.now()).toBe(1000);
  });

  it('advances by milliseconds or by duration strings and returns the new time', () => {
    const clock = new FakeClock(0);
    expect(clock.advance(250)).toBe(250);
    expect(clock.advance('5m')).toBe(250 + 300_000);
    expect(clock.advance(0)).toBe(300_250);
    expect(clock.now()).toBe(300_250);
  });

  it('refuses to advance backwards or by nonsense', () => {
    const clock = new FakeClock(0);
    expect(() => clock.advance(-1)).toThrow(ConfigurationError);
    expect(() => clock.advance('soon')).toThrow('Expected `ms` to be a non-negative duration');
    expect(clock.now()).toBe(0);
  });

  it('jumps to an absolute time, backwards included, but only to a finite one', () => {
    const clock = new FakeClock(10_000);
    clock.set(5);
    expect(clock.now()).toBe(5);
    expect(() => clock.set(Number.NaN)).toThrow('Expected `ms` to be a finite number of ms, got `NaN` (number)');
    expect(() => new FakeClock(Infinity)).toThrow('Expected `start` to be a finite number of ms');
  });
});
