import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/errors.js';
import { ALERT_DEFAULTS, AlertGate } from '../../src/observability/alerts.js';
import type { AlertNotification, AlertOptions } from '../../src/observability/alerts.js';
import { MINUTE, SECOND, fakeClock } from './fake-clock.js';

function gate(options: Partial<AlertOptions> = {}) {
  const clock = fakeClock();
  const sent: AlertNotification[] = [];
  const alerts = new AlertGate({ notify: (alert) => void sent.push(alert), ...options }, clock);
  return { clock, sent, alerts };
}

const redisError = (key: string | undefined, message = 'Redis command timed out') =>
  key === undefined ? { kind: 'redis-error' as const, message } : { kind: 'redis-error' as const, key, message };

describe('AlertGate: cooldown per kind and key', () => {
  it('defaults to a 10 minute cooldown and 6 distinct keys (the seed values)', () => {
    expect(ALERT_DEFAULTS.cooldown).toBe(10 * MINUTE);
    expect(ALERT_DEFAULTS.maxDistinctKeys).toBe(6);
    const { clock, sent, alerts } = gate();
    alerts.report(redisError('a'));
    clock.advance(10 * MINUTE - 1);
    alerts.report(redisError('a'));
    expect(sent).toHaveLength(1);
    clock.advance(1);
    alerts.report(redisError('a'));
    expect(sent).toHaveLength(2);
  });

  it('sends the first alert of a key at once, with its time and no summary', () => {
    const { clock, sent, alerts } = gate();
    const error = new Error('ETIMEDOUT');
    expect(alerts.report({ kind: 'redis-error', key: 'user:1', message: 'GET timed out', error })).toBe('sent');
    expect(sent).toEqual([
      {
        kind: 'redis-error',
        key: 'user:1',
        message: 'GET timed out',
        error,
        time: clock.now(),
        repeats: 0,
        suppressed: 0,
      },
    ]);
  });

  it('holds back repeats of one kind and key for exactly the cooldown, then reports how many were held', () => {
    const { clock, sent, alerts } = gate({ cooldown: '5m' });
    alerts.report(redisError('a'));
    for (let i = 0; i < 49; i++) {
      clock.advance(6 * SECOND);
      expect(alerts.report(redisError('a'))).toBe('deduplicated');
    }
    clock.advance(5 * MINUTE - 49 * 6 * SECOND - 1);
    expect(alerts.report(redisError('a'))).toBe('deduplicated');
    expect(sent).toHaveLength(1);
    clock.advance(1);
    expect(alerts.report(redisError('a'))).toBe('sent');
    expect(sent[1]).toMatchObject({ key: 'a', repeats: 50, suppressed: 0 });
    expect(alerts.stats()).toEqual({ sent: 2, suppressed: 0, deduplicated: 50, failed: 0 });
  });

  it('keeps kinds apart: a breaker transition is not held back by a Redis error, nor one transition by another', () => {
    const { sent, alerts } = gate();
    alerts.report(redisError(undefined, 'connection refused'));
    alerts.report({ kind: 'breaker-open', message: 'opened after 10 failures' });
    alerts.report({ kind: 'breaker-half-open', message: 'probing' });
    alerts.report({ kind: 'breaker-close', message: 'closed' });
    expect(alerts.report({ kind: 'breaker-open', message: 'opened again' })).toBe('deduplicated');
    expect(sent.map((alert) => alert.kind)).toEqual([
      'redis-error',
      'breaker-open',
      'breaker-half-open',
      'breaker-close',
    ]);
  });

  it('keeps a key and a keyless alert of the same kind apart', () => {
    const { sent, alerts } = gate();
    alerts.report(redisError(undefined));
    alerts.report(redisError('redis-error'));
    expect(sent).toHaveLength(2);
  });

  it('with a cooldown of 0 lets everything through', () => {
    const { sent, alerts } = gate({ cooldown: 0 });
    for (let i = 0; i < 20; i++) alerts.report(redisError(`k${i % 3}`));
    expect(sent).toHaveLength(20);
  });
});

describe('AlertGate: distinct-key cap', () => {
  it('alerts at most maxDistinctKeys keys per window and counts the others as suppressed', () => {
    const { sent, alerts } = gate();
    const decisions = Array.from({ length: 10 }, (_, i) => alerts.report(redisError(`key-${i}`)));
    expect(decisions).toEqual([...Array<string>(6).fill('sent'), ...Array<string>(4).fill('suppressed')]);
    expect(sent.map((alert) => alert.key)).toEqual(['key-0', 'key-1', 'key-2', 'key-3', 'key-4', 'key-5']);
    expect(alerts.stats()).toMatchObject({ sent: 6, suppressed: 4 });
  });

  it('summarizes the suppressed alerts in the next alert sent, once', () => {
    const { clock, sent, alerts } = gate({ maxDistinctKeys: 2 });
    alerts.report(redisError('a'));
    alerts.report(redisError('b'));
    alerts.report(redisError('c'));
    alerts.report(redisError('d'));
    alerts.report(redisError('c'));
    expect(sent).toHaveLength(2);
    clock.advance(10 * MINUTE);
    alerts.report(redisError('e'));
    alerts.report(redisError('f'));
    expect(sent.slice(2).map((alert) => [alert.key, alert.suppressed])).toEqual([
      ['e', 3],
      ['f', 0],
    ]);
  });

  it('does not count keyless alerts (breaker transitions) against the cap', () => {
    const { sent, alerts } = gate({ maxDistinctKeys: 1 });
    alerts.report(redisError('a'));
    expect(alerts.report(redisError('b'))).toBe('suppressed');
    expect(alerts.report({ kind: 'breaker-open', message: 'open' })).toBe('sent');
    expect(alerts.report(redisError(undefined, 'connection lost'))).toBe('sent');
    expect(sent.map((alert) => alert.kind)).toEqual(['redis-error', 'breaker-open', 'redis-error']);
    expect(sent[1]?.suppressed).toBe(1);
  });

  it('starts a new window once the cooldown has passed since the window began', () => {
    const { clock, sent, alerts } = gate({ maxDistinctKeys: 2, cooldown: 1000 });
    alerts.report(redisError('a'));
    clock.advance(600);
    alerts.report(redisError('b'));
    clock.advance(399);
    expect(alerts.report(redisError('c'))).toBe('suppressed');
    clock.advance(1);
    expect(alerts.report(redisError('c'))).toBe('sent');
    expect(sent.map((alert) => alert.key)).toEqual(['a', 'b', 'c']);
  });
});

describe('AlertGate: never costs the caller', () => {
  it('counts a notify that throws and returns normally', () => {
    const clock = fakeClock();
    const alerts = new AlertGate(
      {
        notify: () => {
          throw new Error('webhook down');
        },
      },
      clock,
    );
    expect(() => alerts.report(redisError('a'))).not.toThrow();
    expect(alerts.report(redisError('b'))).toBe('sent');
    expect(alerts.stats()).toEqual({ sent: 2, suppressed: 0, deduplicated: 0, failed: 2 });
  });

  it('counts a notify that rejects, without an unhandled rejection', async () => {
    const clock = fakeClock();
    const alerts = new AlertGate({ notify: () => Promise.reject(new Error('webhook down')) }, clock);
    alerts.report(redisError('a'));
    alerts.report({ kind: 'breaker-open', message: 'open' });
    expect(alerts.stats().failed).toBe(0);
    // Vitest fails the run on an unhandled rejection; one turn of the event loop lets the rejection handlers run.
    await new Promise((resolve) => setImmediate(resolve));
    expect(alerts.stats().failed).toBe(2);
  });

  it('does not wait for notify: report returns while the notification is still pending', () => {
    const clock = fakeClock();
    let started = 0;
    const alerts = new AlertGate(
      {
        notify: () => {
          started++;
          return new Promise(() => {});
        },
      },
      clock,
    );
    for (let i = 0; i < 3; i++) expect(alerts.report(redisError(`k${i}`))).toBe('sent');
    expect(started).toBe(3);
  });
});

describe('AlertGate: bounded memory', () => {
  it('tracks only the groups alerted within the last cooldown, whatever the number of keys reported', () => {
    const { clock, sent, alerts } = gate({ cooldown: MINUTE, maxDistinctKeys: 6 });
    let largest = 0;
    for (let i = 0; i < 100_000; i++) {
      alerts.report(redisError(`key-${i}`));
      if (i % 7 === 0) alerts.report({ kind: 'breaker-open', message: 'open' });
      clock.advance(50);
      largest = Math.max(largest, alerts.size);
    }
    // Two windows' worth of keys (one ending, one starting) and the keyless groups.
    expect(largest).toBeLessThanOrEqual(2 * 6 + 4);
    // 5000 s of reports in 60 s windows: 6 keys per window, so about 84 windows × 6 keys.
    expect(sent.filter((alert) => alert.key !== undefined).length).toBeLessThanOrEqual(Math.ceil(5000 / 60 + 1) * 6);
    expect(alerts.stats().suppressed).toBeGreaterThan(99_000);
  });

  it('repeats of a key that stopped failing are reported as suppressed in the next alert, not lost', () => {
    const { clock, sent, alerts } = gate({ cooldown: 1000 });
    alerts.report(redisError('a'));
    alerts.report(redisError('a'));
    alerts.report(redisError('a'));
    clock.advance(1000);
    alerts.report(redisError('b'));
    expect(sent[1]).toMatchObject({ key: 'b', repeats: 0, suppressed: 2 });
    expect(alerts.size).toBe(1);
  });

  it('truncates very long keys and messages', () => {
    const { sent, alerts } = gate();
    alerts.report({ kind: 'redis-error', key: 'k'.repeat(100_000), message: 'm'.repeat(100_000) });
    alerts.report({ kind: 'redis-error', key: `${'k'.repeat(100_000)}other-end`, message: 'again' });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.key).toHaveLength(ALERT_DEFAULTS.maxKeyLength);
    expect(sent[0]?.message).toHaveLength(ALERT_DEFAULTS.maxMessageLength);
  });
});

describe('AlertGate: options', () => {
  const clock = fakeClock();
  const notify = () => {};
  it('accepts a cooldown as a duration string', () => {
    const { clock: c, sent, alerts } = gate({ cooldown: '2s' });
    alerts.report(redisError('a'));
    c.advance(1999);
    alerts.report(redisError('a'));
    c.advance(1);
    alerts.report(redisError('a'));
    expect(sent).toHaveLength(2);
  });

  it('refuses a missing notify, a negative cooldown and a non-positive cap with a ConfigurationError', () => {
    expect(() => new AlertGate({} as AlertOptions, clock)).toThrow(ConfigurationError);
    expect(() => new AlertGate({ notify, cooldown: -1 }, clock)).toThrow(ConfigurationError);
    expect(() => new AlertGate({ notify, cooldown: 'often' }, clock)).toThrow(ConfigurationError);
    expect(() => new AlertGate({ notify, maxDistinctKeys: 0 }, clock)).toThrow(ConfigurationError);
    expect(() => new AlertGate({ notify, maxDistinctKeys: 2.5 }, clock)).toThrow(
      'Expected `alerts.maxDistinctKeys` to be a positive integer, got `2.5` (number)',
    );
  });
});
