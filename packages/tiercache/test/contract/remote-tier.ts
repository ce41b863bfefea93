/**
 * The RemoteTier contract: one suite that every tier runs (RedisTier on a real server, InMemoryRemoteTier,
 * ChaosRemoteTier around it), so the cache can rely on the same answers from each. As BentoCache's driver test suite.
 */
import { describe, expect, it } from 'vitest';
import { createEntry, decodeEntry, encodeEntry } from '../../src/entry.js';
import type { RemoteTier } from '../../src/types.js';

/** A stored version 2 entry without its `e` and `g`: what a renewal must leave as it was. */
function withoutExpiry(encoded: string): string {
  return encoded.replace(/^(\[2,\d,\d+,)\d+,\d+,/, '$1');
}

export interface ContractSubject {
  readonly tier: RemoteTier;
  /** Lets `ms` pass for the tier's expiry (a fake clock's advance, or a real sleep). */
  advance(ms: number): Promise<void>;
  /** The tier's notion of now (for entries' expiry). */
  now(): number;
  close(): Promise<void>;
}

let counter = 0;
const unique = (label: string): string => `contract:${process.pid}:${++counter}:${label}:`;

function entry(value: unknown, now: number, ttlMs: number, createdAt = now): string {
  return encodeEntry(createEntry(value, createdAt, ttlMs + (now - createdAt), 0, []));
}

export function describeRemoteTier(name: string, open: () => Promise<ContractSubject>): void {
  const use = async (test: (subject: ContractSubject, prefix: string) => Promise<void>): Promise<void> => {
    const subject = await open();
    try {
      await test(subject, unique(name.replace(/\W+/g, '-')));
    } finally {
      await subject.close();
    }
  };

  describe(`RemoteTier contract: ${name}`, () => {
    it('is ready once connected, and hands out a disposer for status listeners', () =>
      use(async ({ tier }) => {
        expect(tier.status).toBe('ready');
        expect(tier.available).toBe(true);
        const stop = tier.onStatus(() => {});
        expect(typeof stop).toBe('function');
        stop();
      }));

    it('answers a miss for a key never written, and the value for one written', () =>
      use(async ({ tier }, p) => {
        expect(await tier.get(`${p}missing`)).toBeFalsy();
        await tier.set(`${p}k`, 'v', 10_000);
        expect(await tier.get(`${p}k`)).toBe('v');
        expect((await tier.getMany([`${p}k`, `${p}missing`, `${p}k`])).map((v) => v ?? null)).toEqual(['v', null, 'v']);
      }));

    it('drops a key once its PX has passed', () =>
      use(async ({ tier, advance }, p) => {
        await tier.set(`${p}short`, 'v', 50);
        await advance(120);
        expect(await tier.get(`${p}short`)).toBeFalsy();
      }));

    it('writes a batch in one call and answers each op on its own', () =>
      use(async ({ tier, now }, p) => {
        await tier.set(`${p}old`, 'x', 10_000);
        const replies = await tier.write(
          [
            { kind: 'set', key: `${p}a`, value: 'A', ttlMs: 10_000 },
            { kind: 'set', key: `${p}b`, value: 'B', ttlMs: 10_000, tagKeys: [`${p}__tag:t`] },
            { kind: 'unlink', keys: [`${p}old`, `${p}never`], alsoUnlink: [`${p}__lock:{${p}old}`] },
            {
              kind: 'loaded',
              key: `${p}c`,
              value: entry('C', now(), 10_000),
              ttlMs: 10_000,
              createdAt: now(),
              lockKey: `${p}__lock:{${p}c}`,
              token: '',
              channel: '',
            },
          ],
          { scripted: false },
        );
        expect(replies).toEqual([
          { ok: true, value: true },
          { ok: true, value: true },
          { ok: true, value: [true, false] },
          { ok: true, value: true },
        ]);
        expect((await tier.getMany([`${p}a`, `${p}b`, `${p}old`])).map((v) => v ?? null)).toEqual(['A', 'B', null]);
        expect(await tier.invalidateTags([`${p}__tag:t`], (k) => `${p}__lock:{${k}}`)).toBe(1);
        expect(await tier.get(`${p}b`)).toBeFalsy();
      }));

    it('writes plain sets the same way whether scripted or pipelined', () =>
      use(async ({ tier }, p) => {
        const ops = (suffix: string) =>
          Array.from({ length: 5 }, (_, i) => ({
            kind: 'set' as const,
            key: `${p}${suffix}${i}`,
            value: `v${i}`,
            ttlMs: 10_000,
          }));
        expect(await tier.write(ops('s'), { scripted: true })).toHaveLength(5);
        expect(await tier.write(ops('p'), { scripted: false })).toHaveLength(5);
        const keys = [...ops('s'), ...ops('p')].map((op) => op.key);
        expect((await tier.getMany(keys)).map((v) => v ?? null)).toEqual([
          ...ops('s').map((op) => op.value),
          ...ops('p').map((op) => op.value),
        ]);
      }));

    it('reads or locks: a miss takes the lock once, a fresh entry is read without it, a stale one is read and locked', () =>
      use(async ({ tier, now }, p) => {
        const lock = (key: string) => `${p}__lock:{${p}${key}}`;
        const reads = (key: string) => [{ key: `${p}${key}`, lockKey: lock(key) }];
        await tier.set(`${p}fresh`, entry('F', now(), 10_000), 10_000);
        await tier.set(`${p}stale`, entry('S', now() - 20_000, 10_000, now() - 20_000), 60_000);

        const [first] = await tier.readOrLock(reads('cold'), 'token-a', 10_000, now());
        const [second] = await tier.readOrLock(reads('cold'), 'token-b', 10_000, now());
        expect(first).toEqual({ value: null, locked: true });
        expect(second).toEqual({ value: null, locked: false });

        const [fresh] = await tier.readOrLock(reads('fresh'), 'token-a', 10_000, now());
        expect(fresh).toMatchObject({ locked: false, value: expect.stringContaining('"F"') as unknown });
        expect(await tier.get(lock('fresh'))).toBeFalsy();

        const [stale] = await tier.readOrLock(reads('stale'), 'token-a', 10_000, now());
        expect(stale).toMatchObject({ locked: true, value: expect.stringContaining('"S"') as unknown });
      }));

    it('releases and extends a lock only for the token that holds it', () =>
      use(async ({ tier }, p) => {
        const lockKey = `${p}__lock:{${p}k}`;
        expect(await tier.acquireLock(lockKey, 'mine', 10_000)).toBe(true);
        expect(await tier.acquireLock(lockKey, 'theirs', 10_000)).toBe(false);
        expect(await tier.extendLock(lockKey, 'theirs', 10_000)).toBe(false);
        await tier.releaseLock(lockKey, 'theirs');
        expect(await tier.get(lockKey)).toBe('mine');
        expect(await tier.extendLock(lockKey, 'mine', 10_000)).toBe(true);
        await tier.releaseLock(lockKey, 'mine');
        expect(await tier.get(lockKey)).toBeFalsy();
      }));

    it('refuses a loaded write whose lock was lost, or that is older than what is stored', () =>
      use(async ({ tier, now }, p) => {
        const base = { ttlMs: 10_000, channel: '' };
        const lockKey = `${p}__lock:{${p}k}`;
        await tier.acquireLock(lockKey, 'holder', 10_000);
        const lost = await tier.setLoaded({
          ...base,
          key: `${p}k`,
          value: entry('late', now(), 10_000),
          createdAt: now(),
          lockKey,
          token: 'someone-else',
        });
        expect(lost).toBe(false);
        const written = await tier.setLoaded({
          ...base,
          key: `${p}k`,
          value: entry('new', now(), 10_000),
          createdAt: now(),
          lockKey,
          token: 'holder',
        });
        expect(written).toBe(true);
        expect(await tier.get(lockKey)).toBeFalsy();
        const older = await tier.setLoaded({
          ...base,
          key: `${p}k`,
          value: entry('older', now(), 10_000, now() - 5_000),
          createdAt: now() - 5_000,
          lockKey,
          token: '',
        });
        expect(older).toBe(false);
        expect(await tier.get(`${p}k`)).toContain('"new"');
      }));

    it('renews a loaded entry in place: only its e and g change, guarded by the lock and the creation time', () =>
      use(async ({ tier, now }, p) => {
        const renew = tier.renewLoaded?.bind(tier);
        if (renew === undefined) return;
        const key = `${p}k`;
        const lockKey = `${p}__lock:{${p}k}`;
        const createdAt = now() - 1_000;
        const stored = encodeEntry(createEntry({ big: 'x'.repeat(100) }, createdAt, 500, 0, []));
        await tier.set(key, stored, 10_000);
        const base = { key, lockKey, createdAt, channel: '', ttlMs: 60_000 };
        const expiresAt = now() + 30_000;
        const times = { expiresAt, graceUntil: expiresAt + 30_000 };
        await tier.acquireLock(lockKey, 'holder', 10_000);
        expect(await renew({ ...base, ...times, token: 'someone-else' })).toBe('lost');
        expect(await renew({ ...base, ...times, token: 'holder' })).toBe('renewed');
        expect(await tier.get(lockKey)).toBeFalsy();
        const after = (await tier.get(key)) as string;
        expect(decodeEntry(after)).toMatchObject({ createdAt, expiresAt, graceUntil: expiresAt + 30_000 });
        expect(withoutExpiry(after)).toBe(withoutExpiry(stored));
        // A renewal of an entry no longer there, or of an older one than stored, changes nothing.
        expect(await renew({ ...base, ...times, createdAt: createdAt - 1, token: '' })).toBe('newer');
        // Its own lock key: a script's keys share one hash slot (a key and its lock do), as on a cluster they must.
        expect(await renew({ ...base, ...times, key: `${p}gone`, lockKey: `${p}__lock:{${p}gone}`, token: '' })).toBe(
          'missing',
        );
        expect(await tier.get(`${p}gone`)).toBeFalsy();
        // Longer digits than stored (a far expiry): the header is rebuilt, the value kept.
        const far = 10_000_000_000_000;
        expect(await renew({ ...base, expiresAt: far, graceUntil: far, token: '' })).toBe('renewed');
        expect(decodeEntry((await tier.get(key)) as string)).toMatchObject({
          createdAt,
          expiresAt: far,
          value: { big: 'x'.repeat(100) },
        });
      }));

    it('renews a version 1 entry (written before version 2) in place, and it stays version 1', () =>
      use(async ({ tier, now }, p) => {
        const renew = tier.renewLoaded?.bind(tier);
        if (renew === undefined) return;
        const key = `${p}k1`;
        const createdAt = now() - 1_000;
        const v1 = (e: number, g: number): string =>
          `{"v":1,"k":0,"c":${createdAt},"e":${e},"g":${g},"t":[],"d":{"big":"${'x'.repeat(100)}"}}`;
        await tier.set(key, v1(createdAt + 500, createdAt + 500), 10_000);
        const base = { key, lockKey: `${p}__lock:{${p}k1}`, createdAt, channel: '', ttlMs: 60_000, token: '' };
        const expiresAt = now() + 30_000;
        expect(await renew({ ...base, expiresAt, graceUntil: expiresAt + 30_000 })).toBe('renewed');
        expect(await tier.get(key)).toBe(v1(expiresAt, expiresAt + 30_000));
        const far = 10_000_000_000_000;
        expect(await renew({ ...base, expiresAt: far, graceUntil: far })).toBe('renewed');
        expect(await tier.get(key)).toBe(v1(far, far));
        expect(await renew({ ...base, createdAt: createdAt - 1, expiresAt: far, graceUntil: far })).toBe('newer');
      }));

    it('deletes by a literal prefix, and nothing that only shares its text', () =>
      use(async ({ tier }, p) => {
        await tier.setMany([
          { key: `${p}user:1`, value: '1', ttlMs: 10_000 },
          { key: `${p}user:2`, value: '2', ttlMs: 10_000 },
          { key: `${p}users:1`, value: 'x', ttlMs: 10_000 },
        ]);
        expect(await tier.deleteByPrefix(`${p}user:`)).toBe(2);
        expect(await tier.get(`${p}users:1`)).toBe('x');
      }));

    it('counts only the keys that existed when deleting several', () =>
      use(async ({ tier }, p) => {
        await tier.set(`${p}a`, '1', 10_000);
        expect(await tier.deleteMany([`${p}a`, `${p}b`])).toBe(1);
        expect(await tier.get(`${p}a`)).toBeFalsy();
      }));

    // ── the write strategies' storage (optional capabilities: every tier here has them) ─────────────────────────

    const queueOf = (p: string) => ({
      stream: `${p}{q}:stream`,
      latest: `${p}{q}:latest`,
      dead: `${p}{q}:dead`,
      group: 'g',
    });

    it('delivers each queued record to one consumer, with only the newest record of a key live', () =>
      use(async ({ tier }, p) => {
        const streams = tier.streams;
        if (streams === undefined) throw new Error('no streams');
        const q = queueOf(p);
        const first = await streams.enqueue(q, 'k1', 'v1');
        await streams.enqueue(q, 'k2', 'x');
        const newer = await streams.enqueue(q, 'k1', 'v2');
        const taken = await streams.take(q, 'a', 10, 60_000);
        expect(taken.map((r) => [r.key, r.value, r.live])).toEqual([
          ['k1', 'v1', false],
          ['k2', 'x', true],
          ['k1', 'v2', true],
        ]);
        expect(taken[0]?.id).toBe(first);
        expect(await streams.take(q, 'b', 10, 60_000)).toEqual([]);
        expect(await streams.live(q, [{ id: newer, key: 'k1', value: 'v2' }])).toEqual([true]);
        expect((await streams.info(q)).depth).toBe(3);
        await streams.done(q, taken);
        expect(await streams.info(q)).toEqual({ depth: 0, oldestId: undefined, deadLetters: 0 });
        expect(await streams.live(q, [{ id: newer, key: 'k1', value: 'v2' }])).toEqual([false]);
      }));

    it('hands a record another consumer left unacknowledged to the next one after the idle time', () =>
      use(async ({ tier, advance }, p) => {
        const streams = tier.streams;
        if (streams === undefined) throw new Error('no streams');
        const q = queueOf(p);
        await streams.enqueue(q, 'k', 'v');
        expect(await streams.take(q, 'a', 10, 50)).toHaveLength(1);
        expect(await streams.take(q, 'b', 10, 50)).toEqual([]);
        await advance(80);
        const claimed = await streams.take(q, 'b', 10, 50);
        expect(claimed.map((r) => [r.key, r.live])).toEqual([['k', true]]);
      }));

    it('keeps dead letters with their reason and queues them again on revive', () =>
      use(async ({ tier }, p) => {
        const streams = tier.streams;
        if (streams === undefined) throw new Error('no streams');
        const q = queueOf(p);
        await streams.enqueue(q, 'k', 'poison');
        const taken = await streams.take(q, 'a', 10, 60_000);
        await streams.bury(q, taken, 'bad row', 100);
        const dead = await streams.deadLetters(q, 10);
        expect(dead.map((d) => [d.key, d.value, d.reason, d.originalId])).toEqual([
          ['k', 'poison', 'bad row', taken[0]?.id],
        ]);
        expect(await streams.info(q)).toMatchObject({ depth: 0, deadLetters: 1 });
        expect(
          await streams.revive(
            q,
            dead.map((d) => d.id),
          ),
        ).toBe(1);
        const again = await streams.take(q, 'a', 10, 60_000);
        expect(again.map((r) => [r.key, r.value, r.live])).toEqual([['k', 'poison', true]]);
        expect((await streams.info(q)).deadLetters).toBe(0);
      }));

    it('counts totals and pending deltas, seeds on request, and takes a batch out atomically under one id', () =>
      use(async ({ tier }, p) => {
        const counters = tier.counters;
        if (counters === undefined) throw new Error('no counters');
        const keys = { totals: `${p}{c}:t`, pending: `${p}{c}:p`, batch: `${p}{c}:b` };
        expect(await counters.incr(keys, 'a', 1, undefined, true)).toBeUndefined();
        expect(await counters.incr(keys, 'a', 2, 10, false)).toEqual({ total: 12, pending: 2 });
        expect(await counters.incr(keys, 'b', 1, undefined, false)).toEqual({ total: 1, pending: 1 });
        expect(await counters.total(keys, 'a')).toBe(12);
        expect(await counters.takeBatch(keys, 'batch-1', 5)).toBeUndefined();
        const batch = await counters.takeBatch(keys, 'batch-1', 2);
        expect(batch?.batchId).toBe('batch-1');
        expect(Object.fromEntries(batch?.deltas ?? [])).toEqual({ a: 2, b: 1 });
        await counters.incr(keys, 'a', 4, undefined, false);
        const retry = await counters.takeBatch(keys, 'batch-2', 1);
        expect(retry?.batchId).toBe('batch-1');
        expect(Object.fromEntries(retry?.deltas ?? [])).toEqual({ a: 2, b: 1 });
        expect(await counters.unflushed(keys)).toBe(7);
        expect(await counters.commitBatch(keys, 'batch-2')).toBe(false);
        expect(await counters.commitBatch(keys, 'batch-1')).toBe(true);
        const next = await counters.takeBatch(keys, 'batch-3', 1);
        expect(next?.batchId).toBe('batch-3');
        expect(Object.fromEntries(next?.deltas ?? [])).toEqual({ a: 4 });
        expect(await counters.total(keys, 'a')).toBe(16);
      }));
  });
}
