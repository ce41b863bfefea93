import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines, TIMED_OUT_MESSAGE } from '../../src/tiers/deadlines.js';
import { deferred as reply } from '../deferred.js';

describe('Deadlines: one timer bounds every call in flight', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('passes a reply through and rejects a call with no reply once its own timeout has passed', async () => {
    const deadlines = new Deadlines(100);
    const answered = reply<string>();
    const silent = reply<string>();
    const first = deadlines.bound(answered.promise);
    const second = deadlines.bound(silent.promise);
    const secondOutcome = second.then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    answered.resolve('value');
    await expect(first).resolves.toBe('value');
    vi.advanceTimersByTime(99);
    await Promise.resolve();
    expect(deadlines.size).toBe(1);
    vi.advanceTimersByTime(1);
    expect(await secondOutcome).toBe(TIMED_OUT_MESSAGE);
    expect(deadlines.size).toBe(0);
    // A reply after the timeout changes nothing.
    silent.resolve('late');
    await Promise.resolve();
    deadlines.close();
  });

  it('gives a call made later its whole timeout, not what is left of the first call', async () => {
    const deadlines = new Deadlines(100);
    const early = reply<string>();
    const late = reply<string>();
    const earlyOutcome = deadlines.bound(early.promise).catch((error: Error) => error.message);
    vi.advanceTimersByTime(60);
    let lateSettled: string | undefined;
    void deadlines.bound(late.promise).then(
      (value) => (lateSettled = value),
      (error: Error) => (lateSettled = error.message),
    );
    vi.advanceTimersByTime(40);
    expect(await earlyOutcome).toBe(TIMED_OUT_MESSAGE);
    await Promise.resolve();
    expect(lateSettled).toBeUndefined();
    vi.advanceTimersByTime(59);
    await Promise.resolve();
    expect(lateSettled).toBeUndefined();
    vi.advanceTimersByTime(1);
    await Promise.resolve();
    await Promise.resolve();
    expect(lateSettled).toBe(TIMED_OUT_MESSAGE);
    deadlines.close();
  });

  it('arms one timer for many calls in flight, and none is left once close() ran', async () => {
    const deadlines = new Deadlines(100);
    const replies = Array.from({ length: 50 }, () => reply<number>());
    const bounded = replies.map((r) => deadlines.bound(r.promise));
    expect(vi.getTimerCount()).toBe(1);
    replies.forEach((r, i) => r.resolve(i));
    expect(await Promise.all(bounded)).toEqual(replies.map((_, i) => i));
    expect(deadlines.size).toBe(0);
    deadlines.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps a rejection as the error it was, and turns a non-error rejection into an Error', async () => {
    const deadlines = new Deadlines(100);
    const failing = reply<string>();
    const bounded = deadlines.bound(failing.promise);
    failing.reject(new Error('WRONGTYPE'));
    await expect(bounded).rejects.toThrow('WRONGTYPE');
    await expect(deadlines.bound(Promise.reject('plain string'))).rejects.toThrow('plain string');
    deadlines.close();
  });

  it('drops calls settled out of order once the head settles, so the queue holds only what is in flight', async () => {
    const deadlines = new Deadlines(100);
    const [a, b, c] = [reply<number>(), reply<number>(), reply<number>()];
    const all = Promise.all([a, b, c].map((r) => deadlines.bound(r.promise)));
    c.resolve(3);
    b.resolve(2);
    await Promise.resolve();
    await Promise.resolve();
    expect(deadlines.size).toBe(3);
    a.resolve(1);
    expect(await all).toEqual([1, 2, 3]);
    expect(deadlines.size).toBe(0);
    deadlines.close();
  });

  it('watches a command in place: rejects it with its own reject once overdue, and drops it once it settled', () => {
    const deadlines = new Deadlines(100);
    const late = { isSettled: false, reject: vi.fn() };
    const answered = { isSettled: false, reject: vi.fn() };
    deadlines.watch(answered);
    deadlines.watch(late);
    answered.isSettled = true;
    expect(deadlines.size).toBe(1);
    vi.advanceTimersByTime(100);
    expect(late.reject).toHaveBeenCalledTimes(1);
    expect(late.reject.mock.calls[0]?.[0]).toMatchObject({ message: TIMED_OUT_MESSAGE });
    expect(answered.reject).not.toHaveBeenCalled();
    deadlines.close();
  });
});
