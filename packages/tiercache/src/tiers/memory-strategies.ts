import type {
  Clock,
  CounterBatch,
  CounterKeys,
  DeadRecord,
  QueueInfo,
  QueueKeys,
  QueueRecord,
  RemoteCounters,
  RemoteStreams,
  TakenRecord,
} from '../types.js';

interface PendingEntry {
  consumer: string;
  deliveredAt: number;
}

interface Stream {
  readonly entries: Map<string, QueueRecord>;
  readonly pending: Map<string, PendingEntry>;
  /** The last id delivered to the group (XREADGROUP '>' reads after it). */
  lastDelivered: string;
  lastMs: number;
  seq: number;
}

const compareIds = (a: string, b: string): number => {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
};

/**
 * The storage of write-behind queues and counters in process memory: what the strategies use without Redis (or while
 * it is unreachable), and what tiercache/testing's InMemoryRemoteTier offers as its `streams` and `counters`. Redis'
 * semantics (stream ids from the clock, a consumer group
 * with a pending list, claims after an idle time, atomic batch take-out), over Maps: the in-memory tier's
 * `streams` and `counters`.
 */
export class InMemoryStrategyStore implements RemoteStreams, RemoteCounters {
  readonly #clock: Clock;
  readonly #open: () => void;
  readonly #streams = new Map<string, Stream>();
  readonly #hashes = new Map<string, Map<string, string>>();

  constructor(clock: Clock, open: () => void) {
    this.#clock = clock;
    this.#open = open;
  }

  #stream(key: string): Stream {
    let stream = this.#streams.get(key);
    if (stream === undefined) {
      stream = { entries: new Map(), pending: new Map(), lastDelivered: '0-0', lastMs: 0, seq: 0 };
      this.#streams.set(key, stream);
    }
    return stream;
  }

  #hash(key: string): Map<string, string> {
    let hash = this.#hashes.get(key);
    if (hash === undefined) this.#hashes.set(key, (hash = new Map()));
    return hash;
  }

  #add(streamKey: string, record: Omit<QueueRecord, 'id'>): string {
    const stream = this.#stream(streamKey);
    const now = Math.max(this.#clock.now(), stream.lastMs);
    stream.seq = now === stream.lastMs ? stream.seq + 1 : 0;
    stream.lastMs = now;
    const id = `${now}-${stream.seq}`;
    stream.entries.set(id, { id, ...record });
    return id;
  }

  async enqueue(queue: QueueKeys, key: string, value: string): Promise<string> {
    this.#open();
    const id = this.#add(queue.stream, { key, value });
    this.#hash(queue.latest).set(key, id);
    return id;
  }

  async take(queue: QueueKeys, consumer: string, count: number, claimIdleMs: number): Promise<TakenRecord[]> {
    this.#open();
    const stream = this.#stream(queue.stream);
    const latest = this.#hash(queue.latest);
    const now = this.#clock.now();
    const out: TakenRecord[] = [];
    const deliver = (record: QueueRecord): void => {
      stream.pending.set(record.id, { consumer, deliveredAt: now });
      out.push({ ...record, live: latest.get(record.key) === record.id });
    };
    for (const [id, entry] of stream.pending) {
      if (out.length >= count) break;
      if (now - entry.deliveredAt < claimIdleMs) continue;
      const record = stream.entries.get(id);
      if (record === undefined) stream.pending.delete(id);
      else deliver(record);
    }
    const fresh = [...stream.entries.keys()].filter((id) => compareIds(id, stream.lastDelivered) > 0).sort(compareIds);
    for (const id of fresh) {
      if (out.length >= count) break;
      stream.lastDelivered = id;
      deliver(stream.entries.get(id) as QueueRecord);
    }
    return out;
  }

  async live(queue: QueueKeys, records: readonly QueueRecord[]): Promise<boolean[]> {
    this.#open();
    const latest = this.#hash(queue.latest);
    return records.map((r) => latest.get(r.key) === r.id);
  }

  async done(queue: QueueKeys, records: readonly QueueRecord[]): Promise<void> {
    this.#open();
    const stream = this.#stream(queue.stream);
    const latest = this.#hash(queue.latest);
    for (const record of records) {
      stream.pending.delete(record.id);
      stream.entries.delete(record.id);
      if (latest.get(record.key) === record.id) latest.delete(record.key);
    }
  }

  async bury(queue: QueueKeys, records: readonly QueueRecord[], reason: string, maxDead: number): Promise<void> {
    this.#open();
    const dead = this.#stream(queue.dead);
    for (const record of records) {
      this.#add(queue.dead, { key: record.key, value: `${record.id}\u0000${reason}\u0000${record.value}` });
    }
    while (dead.entries.size > maxDead) dead.entries.delete(dead.entries.keys().next().value as string);
    await this.done(queue, records);
  }

  async info(queue: QueueKeys): Promise<QueueInfo> {
    this.#open();
    const stream = this.#stream(queue.stream);
    const oldestId = [...stream.entries.keys()].sort(compareIds)[0];
    return { depth: stream.entries.size, oldestId, deadLetters: this.#stream(queue.dead).entries.size };
  }

  async deadLetters(queue: QueueKeys, count: number): Promise<DeadRecord[]> {
    this.#open();
    return [...this.#stream(queue.dead).entries.values()].slice(0, count).map((entry) => {
      const [originalId = '', reason = '', ...value] = entry.value.split('\u0000');
      return { id: entry.id, key: entry.key, value: value.join('\u0000'), originalId, reason };
    });
  }

  async revive(queue: QueueKeys, ids: readonly string[]): Promise<number> {
    this.#open();
    const dead = this.#stream(queue.dead);
    const letters = await this.deadLetters(queue, Number.MAX_SAFE_INTEGER);
    let n = 0;
    for (const letter of letters) {
      if (!ids.includes(letter.id)) continue;
      await this.enqueue(queue, letter.key, letter.value);
      dead.entries.delete(letter.id);
      n++;
    }
    return n;
  }

  // ── counters ───────────────────────────────────────────────────────────────────────────────────────────────

  async incr(
    keys: CounterKeys,
    id: string,
    by: number,
    seed: number | undefined,
    requireSeed: boolean,
  ): Promise<{ readonly total: number; readonly pending: number } | undefined> {
    this.#open();
    const totals = this.#hash(keys.totals);
    if (!totals.has(id)) {
      if (seed !== undefined) totals.set(id, String(seed));
      else if (requireSeed) return undefined;
    }
    const pending = this.#hash(keys.pending);
    const total = Number(totals.get(id) ?? 0) + by;
    const delta = Number(pending.get(id) ?? 0) + by;
    totals.set(id, String(total));
    pending.set(id, String(delta));
    return { total, pending: delta };
  }

  async total(keys: CounterKeys, id: string): Promise<number | undefined> {
    this.#open();
    const value = this.#hashes.get(keys.totals)?.get(id);
    return value === undefined ? undefined : Number(value);
  }

  async takeBatch(keys: CounterKeys, batchId: string, min: number): Promise<CounterBatch | undefined> {
    this.#open();
    let batch = this.#hashes.get(keys.batch);
    if (batch === undefined) {
      const pending = this.#hashes.get(keys.pending);
      if (pending === undefined || pending.size === 0) return undefined;
      if (min > 1 && ![...pending.values()].some((v) => Math.abs(Number(v)) >= min)) return undefined;
      this.#hashes.delete(keys.pending);
      batch = new Map([...pending, ['__batch', batchId]]);
      this.#hashes.set(keys.batch, batch);
    }
    const deltas = new Map<string, number>();
    for (const [field, value] of batch) if (field !== '__batch') deltas.set(field, Number(value));
    return { batchId: batch.get('__batch') ?? batchId, deltas };
  }

  async commitBatch(keys: CounterKeys, batchId: string): Promise<boolean> {
    this.#open();
    if (this.#hashes.get(keys.batch)?.get('__batch') !== batchId) return false;
    this.#hashes.delete(keys.batch);
    return true;
  }

  async unflushed(keys: CounterKeys): Promise<number> {
    this.#open();
    let sum = 0;
    for (const key of [keys.pending, keys.batch]) {
      for (const [field, value] of this.#hashes.get(key) ?? []) if (field !== '__batch') sum += Math.abs(Number(value));
    }
    return sum;
  }
}
