import { ConfigurationError, describeValue } from '../errors.js';
import { toMs } from '../options.js';
import type { Clock, Duration } from '../types.js';

/**
 * A clock that moves only when the test says so: pass it as `clock` to `createCache` (or to a breaker, or to an
 * `InMemoryRemoteTier`) and every TTL, grace and breaker assertion becomes exact and instant.
 */
export class FakeClock implements Clock {
  /** 2026-01-01T00:00:00Z: a realistic epoch, so entries' timestamps look like real ones when a test prints them. */
  static readonly EPOCH = Date.UTC(2026, 0, 1);

  #now: number;

  constructor(start: number = FakeClock.EPOCH) {
    this.#now = FakeClock.#check('start', start);
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by a duration (`1500`, `'30s'`, `'5m'`) and returns the new time. Never backwards. */
  advance(ms: Duration): number {
    this.#now += toMs('ms', ms, { allowZero: true });
    return this.#now;
  }

  /** Jumps to an absolute time in ms since the epoch, backwards included (to test a clock that steps back). */
  set(ms: number): void {
    this.#now = FakeClock.#check('ms', ms);
  }

  static #check(name: string, value: unknown): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new ConfigurationError(`Expected \`${name}\` to be a finite number of ms, got ${describeValue(value)}`);
    }
    return value;
  }
}
