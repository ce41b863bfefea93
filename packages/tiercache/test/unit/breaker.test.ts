import { ReplyError } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CacheClosedError,
  CacheTimeoutError,
  ConfigurationError,
  ConnectionError,
  SerializationError,
} from '../../src/errors.js';
import {
  BREAKER_DEFAULTS,
  CircuitBreaker,
  isOutageError,
  validateBreakerOptions,
} from '../../src/resilience/breaker.js';
import type { AdmittedTicket, BreakerOptions, BreakerTransition, Ticket } from '../../src/resilience/breaker.js';
import { toCacheError } from '../../src/tiers/redis.js';
import { FakeClock } from '../../src/testing/clock.js';

const OPTIONS = { threshold: 5, windowMs: 1000, openMs: 3000, minDistinctKeys: 1 } as const;

function setup(options: BreakerOptions = OPTIONS): { clock: FakeClock; breaker: CircuitBreaker } {
  const clock = new FakeClock();
  return { clock, breaker: new CircuitBreaker(options, clock) };
}

function admitted(ticket: Ticket): AdmittedTicket {
  if (ticket.kind === 'reject') throw new Error('expected the breaker to admit the call');
  return ticket;
}

/** One failed call on `key`, the way a caller reports it. */
function fail(breaker: CircuitBreaker, key: string | undefined): void {
  breaker.failure(admitted(breaker.acquire()), key);
}

/** Trips a breaker built from OPTIONS (threshold 5, one key is enough). */
function trip(breaker: CircuitBreaker): void {
  for (let i = 0; i < 5; i++) fail(breaker, `k${i}`);
  expect(breaker.state).toBe('open');
}

function record(breaker: CircuitBreaker): BreakerTransition[] {
  const seen: BreakerTransition[] = [];
  breaker.on('open', (t) => seen.push(t));
  breaker.on('half-open', (t) => seen.push(t));
  breaker.on('close', (t) => seen.push(t));
  return seen;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('opening', () => {
  it('stays closed at threshold - 1 failures and opens at exactly threshold', () => {
    const { breaker } = setup();
    for (let i = 0; i < 4; i++) fail(breaker, `k${i}`);
    expect(breaker.state).toBe('closed');
    expect(breaker.acquire().kind).toBe('pass');
    fail(breaker, 'k4');
    expect(breaker.state).toBe('open');
    expect(breaker.acquire().kind).toBe('reject');
  });

  it('does not open when every failure is on one key and two distinct keys are required', () => {
    const { breaker } = setup({ ...OPTIONS, minDistinctKeys: 2 });
    for (let i = 0; i < 50; i++) fail(breaker, 'broken');
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot()).toMatchObject({ failuresInWindow: 5, distinctKeysInWindow: 1 });
    // A second key among the failures in the window is what it was waiting for.
    fail(breaker, 'other');
    expect(breaker.state).toBe('open');
  });

  it('counts a failure without a key as a distinct key of its own', () => {
    const { breaker } = setup({ ...OPTIONS, minDistinctKeys: 5 });
    for (let i = 0; i < 5; i++) fail(breaker, undefined);
    expect(breaker.state).toBe('open');
  });

  it('needs the distinct keys among the failures still in the window', () => {
    const { clock, breaker } = setup({ ...OPTIONS, minDistinctKeys: 2 });
    fail(breaker, 'a');
    clock.advance(1000);
    // `a` has aged out: five fresh failures on `b` alone are one key.
    for (let i = 0; i < 5; i++) fail(breaker, 'b');
    expect(breaker.state).toBe('closed');
    fail(breaker, 'a');
    expect(breaker.state).toBe('open');
  });

  it('does not count failures older than the window', () => {
    const { clock, breaker } = setup();
    for (let i = 0; i < 4; i++) fail(breaker, `k${i}`);
    clock.advance(999);
    expect(breaker.snapshot().failuresInWindow).toBe(4);
    clock.advance(1);
    expect(breaker.snapshot().failuresInWindow).toBe(0);
    fail(breaker, 'k4');
    expect(breaker.state).toBe('closed');
  });

  it('opens on threshold failures spread over just under the window', () => {
    const { clock, breaker } = setup();
    for (let i = 0; i < 4; i++) {
      fail(breaker, `k${i}`);
      clock.advance(249);
    }
    // The first failure is 996 ms old: still inside the 1000 ms window.
    fail(breaker, 'k4');
    expect(breaker.state).toBe('open');
  });

  it('is not opened by successes or failures reported with a rejected or stale ticket', () => {
    const { breaker } = setup();
    const before = admitted(breaker.acquire());
    trip(breaker);
    const seen = record(breaker);
    // A call admitted before the breaker opened reports late: it neither reopens nor extends anything.
    breaker.failure(before, 'late');
    breaker.success(before);
    expect(seen).toStrictEqual([]);
    expect(breaker.snapshot().transitions).toStrictEqual({ open: 1, halfOpen: 0, close: 0 });
  });
});

describe('countFailure: a failure outside a call (one node of a batch that otherwise answered)', () => {
  it('counts while closed as a failed call does, and leaves an open or half-open breaker to its probe', () => {
    const { clock, breaker } = setup();
    for (let i = 0; i < 4; i++) breaker.countFailure();
    expect(breaker.state).toBe('closed');
    breaker.countFailure();
    expect(breaker.state).toBe('open');
    breaker.countFailure();
    clock.advance(3000);
    const probe = admitted(breaker.acquire());
    expect(breaker.state).toBe('half-open');
    breaker.countFailure();
    expect(breaker.state).toBe('half-open');
    breaker.success(probe);
    expect(breaker.state).toBe('closed');
  });
});

describe('open and half-open', () => {
  it('rejects until openMs has passed and lets a probe through at exactly openMs', () => {
    const { clock, breaker } = setup();
    trip(breaker);
    clock.advance(2999);
    expect(breaker.state).toBe('open');
    expect(breaker.acquire().kind).toBe('reject');
    expect(breaker.snapshot().nextProbeAt).toBe(FakeClock.EPOCH + 3000);
    clock.advance(1);
    expect(breaker.state).toBe('half-open');
    expect(breaker.acquire().kind).toBe('probe');
  });

  it('hands out exactly one probe among 100 concurrent callers', async () => {
    const { clock, breaker } = setup();
    trip(breaker);
    clock.advance(3000);
    const tickets = await Promise.all(
      Array.from({ length: 100 }, async () => {
        await Promise.resolve();
        return breaker.acquire().kind;
      }),
    );
    expect(tickets.filter((kind) => kind === 'probe')).toHaveLength(1);
    expect(tickets.filter((kind) => kind === 'reject')).toHaveLength(99);
  });

  it('reopens for another openMs when the probe fails', () => {
    const { clock, breaker } = setup();
    trip(breaker);
    clock.advance(3000);
    const probe = admitted(breaker.acquire());
    clock.advance(100);
    breaker.failure(probe, 'k');
    expect(breaker.state).toBe('open');
    expect(breaker.snapshot()).toMatchObject({ openedAt: FakeClock.EPOCH + 3100, nextProbeAt: FakeClock.EPOCH + 6100 });
    clock.advance(2999);
    expect(breaker.acquire().kind).toBe('reject');
    clock.advance(1);
    expect(breaker.acquire().kind).toBe('probe');
  });

  it('closes, clears the window and emits close when the probe succeeds', () => {
    // A window longer than the open period, so the failures that opened it would still count if kept.
    const { clock, breaker } = setup({ ...OPTIONS, windowMs: 60_000 });
    trip(breaker);
    const seen = record(breaker);
    clock.advance(3000);
    const probe = admitted(breaker.acquire());
    breaker.success(probe);
    expect(breaker.state).toBe('closed');
    expect(seen.map((t) => [t.previous, t.state, t.reason])).toStrictEqual([
      ['open', 'half-open', 'open-elapsed'],
      ['half-open', 'closed', 'probe-succeeded'],
    ]);
    // The failures that opened it are forgotten: threshold - 1 new ones do not reopen it.
    expect(breaker.snapshot().failuresInWindow).toBe(0);
    for (let i = 0; i < 4; i++) fail(breaker, `n${i}`);
    expect(breaker.state).toBe('closed');
  });

  it('frees the probe slot on release without closing or reopening', () => {
    const { clock, breaker } = setup();
    trip(breaker);
    clock.advance(3000);
    const probe = admitted(breaker.acquire());
    expect(breaker.acquire().kind).toBe('reject');
    breaker.release(probe);
    expect(breaker.state).toBe('half-open');
    const next = breaker.acquire();
    expect(next.kind).toBe('probe');
    expect(next).not.toBe(probe);
    // The released probe has no say any more.
    breaker.success(probe);
    expect(breaker.state).toBe('half-open');
  });

  it('counts a probe that never reports as failed after openMs, so the breaker is never wedged', () => {
    const { clock, breaker } = setup();
    trip(breaker);
    clock.advance(3000);
    const lost = admitted(breaker.acquire());
    clock.advance(2999);
    expect(breaker.acquire().kind).toBe('reject');
    clock.advance(1);
    // Written off at issue + openMs: open again from then, and half-open another openMs later.
    expect(breaker.snapshot()).toMatchObject({ state: 'open', nextProbeAt: FakeClock.EPOCH + 9000 });
    clock.advance(3000);
    const fresh = admitted(breaker.acquire());
    expect(fresh.kind).toBe('probe');
    // The lost probe turning up late cannot close the breaker in place of the current one.
    breaker.success(lost);
    expect(breaker.state).toBe('half-open');
    breaker.success(fresh);
    expect(breaker.state).toBe('closed');
  });

  it('applies overdue transitions at the time each became due, however late someone asks', () => {
    const { clock, breaker } = setup();
    trip(breaker);
    clock.advance(3000);
    admitted(breaker.acquire());
    const seen = record(breaker);
    // Nobody looks for a long time: the probe was written off at +6000 and the breaker half-opened at +9000.
    clock.advance(60_000);
    expect(breaker.state).toBe('half-open');
    expect(seen.map((t) => [t.state, t.reason, t.at - FakeClock.EPOCH])).toStrictEqual([
      ['open', 'probe-timeout', 6000],
      ['half-open', 'open-elapsed', 9000],
    ]);
  });

  it('ignores a pass admitted before the breaker opened when it reports after the breaker closed again', () => {
    const { clock, breaker } = setup();
    const stale = admitted(breaker.acquire());
    trip(breaker);
    clock.advance(3000);
    breaker.success(admitted(breaker.acquire()));
    expect(breaker.state).toBe('closed');
    for (let i = 0; i < 4; i++) fail(breaker, `k${i}`);
    breaker.failure(stale, 'stale');
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().failuresInWindow).toBe(4);
  });
});

describe('events', () => {
  it('fires each event once per transition, with what opened it', () => {
    const { clock, breaker } = setup();
    const seen = record(breaker);
    trip(breaker);
    // Asking again does not announce again.
    expect(breaker.state).toBe('open');
    breaker.snapshot();
    expect(seen).toStrictEqual([
      {
        state: 'open',
        previous: 'closed',
        at: FakeClock.EPOCH,
        reason: 'threshold',
        nextProbeAt: FakeClock.EPOCH + 3000,
        failures: 5,
        distinctKeys: 5,
      },
    ]);
    clock.advance(3000);
    const probe = admitted(breaker.acquire());
    breaker.acquire();
    breaker.failure(probe, 'k');
    expect(seen.map((t) => `${t.previous}>${t.state}:${t.reason}`)).toStrictEqual([
      'closed>open:threshold',
      'open>half-open:open-elapsed',
      'half-open>open:probe-failed',
    ]);
    expect(breaker.snapshot().transitions).toStrictEqual({ open: 2, halfOpen: 1, close: 0 });
  });

  it('stops calling a listener once its disposer is called, and only that listener', () => {
    const { clock, breaker } = setup();
    const first = vi.fn();
    const second = vi.fn();
    const disposeFirst = breaker.on('open', first);
    breaker.on('open', second);
    trip(breaker);
    expect(first).toHaveBeenCalledTimes(1);
    disposeFirst();
    disposeFirst();
    clock.advance(3000);
    breaker.failure(admitted(breaker.acquire()), 'k');
    expect(first).toHaveBeenCalledTimes(1);
    expect(second).toHaveBeenCalledTimes(2);
  });

  it('keeps working when a listener throws, and still calls the other listeners', () => {
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const { clock, breaker } = setup();
    breaker.on('open', () => {
      throw new Error('listener bug');
    });
    const after = vi.fn();
    breaker.on('open', after);
    trip(breaker);
    expect(after).toHaveBeenCalledTimes(1);
    expect(warnings).toHaveBeenCalledWith(expect.stringContaining('listener bug'));
    clock.advance(3000);
    breaker.success(admitted(breaker.acquire()));
    expect(breaker.state).toBe('closed');
  });

  it('lets a listener use the breaker, and announces transitions in order', () => {
    const { clock, breaker } = setup();
    const order: string[] = [];
    let probeFromListener: Ticket | undefined;
    breaker.on('half-open', () => {
      order.push('half-open');
      probeFromListener = breaker.acquire();
    });
    breaker.on('open', () => order.push('open'));
    trip(breaker);
    clock.advance(3000);
    // The listener ran inside this call and took the one probe, so this caller is rejected.
    expect(breaker.acquire().kind).toBe('reject');
    expect(probeFromListener?.kind).toBe('probe');
    expect(order).toStrictEqual(['open', 'half-open']);
  });

  it('refuses unknown events and listeners that are not functions', () => {
    const { breaker } = setup();
    expect(() => breaker.on('opened' as 'open', () => {})).toThrow(ConfigurationError);
    expect(() => breaker.on('toString' as 'open', () => {})).toThrow(
      "Expected the event to be 'open', 'half-open' or 'close', got `\"toString\"` (string)",
    );
    expect(() => breaker.on('open', 'nope' as unknown as () => void)).toThrow(
      'Expected the listener to be a function, got `"nope"` (string)',
    );
  });
});

describe('memory', () => {
  it('holds at most threshold timestamps and keys after 100 000 failures on distinct keys', () => {
    // A 50 ms window at one failure per ms never holds 100 failures, so the breaker stays closed and keeps recording.
    const { clock, breaker } = setup({ threshold: 100, windowMs: 50, openMs: 1000, minDistinctKeys: 1 });
    for (let i = 0; i < 100_000; i++) {
      fail(breaker, `user:${i}:${'x'.repeat(64)}`);
      clock.advance(1);
    }
    const snapshot = breaker.snapshot();
    expect(snapshot.state).toBe('closed');
    expect(snapshot.retained.timestamps).toBe(100);
    expect(snapshot.retained.keys).toBe(100);
    expect(snapshot.failuresInWindow).toBe(49);
  });

  it('holds at most threshold timestamps after 100 000 failures on one key', () => {
    const { breaker } = setup({ threshold: 10, windowMs: 60_000, openMs: 1000, minDistinctKeys: 2 });
    for (let i = 0; i < 100_000; i++) fail(breaker, 'broken');
    expect(breaker.state).toBe('closed');
    expect(breaker.snapshot().retained).toStrictEqual({ timestamps: 10, keys: 1 });
  });

  it('decides correctly after its key map has evicted thousands of keys', () => {
    const { clock, breaker } = setup({ threshold: 3, windowMs: 100, openMs: 1000, minDistinctKeys: 3 });
    // One failure every 50 ms: never three in the window, so it stays closed while the 3-key map churns.
    for (let i = 0; i < 1000; i++) {
      fail(breaker, `old${i}`);
      clock.advance(50);
    }
    expect(breaker.state).toBe('closed');
    clock.advance(100);
    fail(breaker, 'a');
    fail(breaker, 'a');
    fail(breaker, 'b');
    expect(breaker.state).toBe('closed');
    fail(breaker, 'c');
    expect(breaker.state).toBe('open');
    expect(breaker.snapshot().retained.keys).toBe(3);
  });
});

describe('validateBreakerOptions', () => {
  it('fills in the defaults', () => {
    expect(validateBreakerOptions({})).toStrictEqual(BREAKER_DEFAULTS);
    expect(validateBreakerOptions(undefined)).toStrictEqual(BREAKER_DEFAULTS);
  });

  it('accepts durations as ms or strings', () => {
    expect(validateBreakerOptions({ windowMs: '1m', openMs: '2.5s' })).toMatchObject({
      windowMs: 60_000,
      openMs: 2500,
    });
  });

  it('keeps the default minDistinctKeys reachable under a smaller threshold', () => {
    expect(validateBreakerOptions({ threshold: 2 })).toMatchObject({ threshold: 2, minDistinctKeys: 2 });
  });

  it.each([
    [{ threshold: -1 }, 'Expected `breaker.threshold` to be a positive integer of at most 10000, got `-1` (number)'],
    [{ threshold: 1.5 }, 'Expected `breaker.threshold` to be a positive integer of at most 10000, got `1.5` (number)'],
    [{ threshold: 10_001 }, 'got `10001` (number)'],
    [
      { threshold: '10' },
      'Expected `breaker.threshold` to be a positive integer of at most 10000, got `"10"` (string)',
    ],
    [{ windowMs: 0 }, 'Expected `breaker.windowMs` to be a positive duration'],
    [{ openMs: 'soon' }, 'Expected `breaker.openMs` to be a positive duration'],
    [{ minDistinctKeys: 0 }, 'Expected `breaker.minDistinctKeys` to be a positive integer'],
    [
      { threshold: 5, minDistinctKeys: 6 },
      'Expected `breaker.minDistinctKeys` to be at most `breaker.threshold` (5), got `6` (number)',
    ],
    [{ treshold: 5 }, 'Unknown option `breaker.treshold`; expected one of `threshold`, `windowMs`'],
    [null, 'Expected `breaker` to be an object or false, got `null`'],
    [true, 'Expected `breaker` to be an object or false, got `true` (boolean)'],
  ])('refuses %j with a precise message', (input, message) => {
    expect(() => validateBreakerOptions(input)).toThrow(ConfigurationError);
    expect(() => validateBreakerOptions(input)).toThrow(message);
  });

  it('is applied by the constructor too', () => {
    expect(() => new CircuitBreaker({ threshold: 0 }, new FakeClock())).toThrow('`breaker.threshold`');
    expect(() => new CircuitBreaker({}, {} as FakeClock)).toThrow('Expected `clock` to be an object with a now()');
  });
});

describe('isOutageError', () => {
  const reply = (message: string) => toCacheError(new ReplyError(message));

  it('counts timeouts, lost connections and cluster-down replies', () => {
    expect(isOutageError(new CacheTimeoutError('Redis did not answer in time'))).toBe(true);
    expect(isOutageError(toCacheError(new Error('Command timed out')))).toBe(true);
    expect(isOutageError(toCacheError(new Error('Connection is closed.')))).toBe(true);
    expect(
      isOutageError(toCacheError(new Error("Stream isn't writeable and enableOfflineQueue options is false"))),
    ).toBe(true);
    expect(isOutageError(reply('CLUSTERDOWN The cluster is down'))).toBe(true);
    expect(isOutageError(reply('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isOutageError(reply('BUSY Redis is busy running a script'))).toBe(true);
  });

  it('counts the replies of a failover: READONLY, MOVED, ASK, TRYAGAIN, and ioredis giving up on redirections', () => {
    expect(isOutageError(reply("READONLY You can't write against a read only replica."))).toBe(true);
    expect(isOutageError(reply('MOVED 3999 127.0.0.1:6381'))).toBe(true);
    expect(isOutageError(reply('ASK 3999 127.0.0.1:6381'))).toBe(true);
    expect(isOutageError(reply('TRYAGAIN Multiple keys request during rehashing of slot'))).toBe(true);
    expect(isOutageError(reply('MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no'))).toBe(
      true,
    );
    const gaveUp = new Error('Too many Cluster redirections. Last error: Error: Connection is closed.');
    expect(isOutageError(toCacheError(gaveUp))).toBe(true);
    // Not a prefix match on any word: a command-level error mentioning one of them stays a reply error.
    expect(isOutageError(reply('ERR MOVED is not a command'))).toBe(false);
    expect(isOutageError(reply('ASKING is not allowed here'))).toBe(false);
  });

  it('does not count replies about the command itself, or errors that are not about Redis', () => {
    expect(isOutageError(reply('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(isOutageError(reply("ERR unknown command 'NOSUCHCMD'"))).toBe(false);
    expect(isOutageError(reply('NOSCRIPT No matching script'))).toBe(false);
    expect(isOutageError(new SerializationError('cannot decode'))).toBe(false);
    expect(isOutageError(new CacheClosedError())).toBe(false);
  });

  it('counts an error the tier did not type', () => {
    expect(isOutageError(new TypeError('tier bug'))).toBe(true);
    expect(isOutageError(new ConnectionError('no cause'))).toBe(true);
  });
});

describe('execute and run: the breaker around one call', () => {
  const outage = (): Promise<never> => Promise.reject(new ConnectionError('connection refused'));

  it('counts outage failures until it opens, then turns calls away without making them', async () => {
    const { breaker } = setup();
    for (let i = 0; i < OPTIONS.threshold; i++) {
      await expect(breaker.execute(outage, `k${i}`)).rejects.toBeInstanceOf(ConnectionError);
    }
    expect(breaker.state).toBe('open');
    const fn = vi.fn(() => Promise.resolve('made'));
    await expect(breaker.execute(fn, 'k')).rejects.toThrow('circuit');
    expect(fn).not.toHaveBeenCalled();
  });

  it('counts a reply error about the command itself as a sign of life, not a failure', async () => {
    const { breaker } = setup();
    const refused = (): Promise<never> => Promise.reject(new ReplyError('WRONGTYPE Operation against a key'));
    const counts = (error: unknown): boolean => isOutageError(toCacheError(error));
    for (let i = 0; i < OPTIONS.threshold * 2; i++) {
      await expect(breaker.execute(refused, 'k', counts)).rejects.toThrow('WRONGTYPE');
    }
    expect(breaker.state).toBe('closed');
  });

  it('run hands the value to settle once counted, and settles a call turned away at once, synchronously', async () => {
    const { breaker } = setup();
    const settled = await new Promise((resolve) => breaker.run(() => Promise.resolve(7), 'k', isOutageError, resolve));
    expect(settled).toEqual({ ok: true, value: 7 });
    for (let i = 0; i < OPTIONS.threshold; i++) await breaker.execute(outage, `k${i}`).catch(() => undefined);
    let answer: unknown;
    breaker.run(
      () => Promise.resolve(8),
      'k',
      isOutageError,
      (outcome) => (answer = outcome),
    );
    expect(answer).toMatchObject({ ok: false });
    expect((answer as { error: Error }).error.name).toBe('CircuitOpenError');
  });
});
