import { describe, expect, it } from 'vitest';
import { ReplayQueue } from '../../src/invalidation/replay.js';
import type { PendingInvalidation } from '../../src/invalidation/replay.js';

const key = (fullKey: string, prefix = 'app:'): PendingInvalidation => ({ kind: 'key', prefix, fullKey });
const tag = (name: string, prefix = 'app:'): PendingInvalidation => ({ kind: 'tag', prefix, tag: name });
const clear = (prefix = 'app:'): PendingInvalidation => ({ kind: 'clear', prefix });

describe('ReplayQueue', () => {
  it('gives back what was queued, oldest first, at most `limit` at a time', () => {
    const queue = new ReplayQueue(100);
    const items = [key('app:1'), tag('t'), clear('app:ns:'), key('app:2')];
    for (const item of items) queue.add(item);
    expect(queue.size).toBe(4);
    expect(queue.take(3)).toEqual(items.slice(0, 3));
    expect(queue.size).toBe(1);
    expect(queue.take(3)).toEqual(items.slice(3));
    expect(queue.take(3)).toEqual([]);
    expect(queue.size).toBe(0);
  });

  it('keeps one entry per key, per tag and prefix, and per cleared prefix', () => {
    const queue = new ReplayQueue(100);
    for (let i = 0; i < 3; i++) {
      queue.add(key('app:1'));
      queue.add(tag('t'));
      queue.add(clear());
    }
    expect(queue.size).toBe(3);
    // The same tag under another prefix (a namespace) is another invalidation; so is a key and a tag of one text.
    queue.add(tag('t', 'app:ns:'));
    queue.add(tag('app:1'));
    queue.add(clear('app:ns:'));
    expect(queue.size).toBe(6);
  });

  it('moves a repeated invalidation to the newest end, so a full queue keeps it', () => {
    const queue = new ReplayQueue(3);
    queue.add(key('app:1'));
    queue.add(key('app:2'));
    queue.add(key('app:3'));
    queue.add(key('app:1'));
    queue.add(key('app:4'));
    expect(queue.take(10)).toEqual([key('app:3'), key('app:1'), key('app:4')]);
    expect(queue.dropped).toBe(1);
  });

  it('is bounded: past `max` the oldest entries are dropped and counted', () => {
    const queue = new ReplayQueue(1000);
    for (let i = 0; i < 2500; i++) queue.add(key(`app:${i}`));
    expect(queue.size).toBe(1000);
    expect(queue.dropped).toBe(1500);
    const kept = queue.take(1000);
    expect(kept[0]).toEqual(key('app:1500'));
    expect(kept.at(-1)).toEqual(key('app:2499'));
  });

  it('forgets a key’s pending delete once a later write of it reached Redis, and nothing else', () => {
    const queue = new ReplayQueue(10);
    queue.add(key('app:1'));
    queue.add(tag('app:1'));
    queue.add(clear('app:1'));
    queue.forgetKey('app:1');
    queue.forgetKey('app:unknown');
    expect(queue.take(10)).toEqual([tag('app:1'), clear('app:1')]);
    expect(queue.dropped).toBe(0);
  });

  it('takes items back after a failed replay, so none is lost when they are added again', () => {
    const queue = new ReplayQueue(10);
    for (const item of [key('app:1'), tag('t'), clear()]) queue.add(item);
    const batch = queue.take(10);
    queue.add(key('app:2'));
    for (const item of batch) queue.add(item);
    expect(queue.take(10)).toEqual([key('app:2'), key('app:1'), tag('t'), clear()]);
  });
});
