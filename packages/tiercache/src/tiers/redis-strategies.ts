/**
 * The Redis storage of the write strategies: write-behind queues as Streams with a consumer group, and counters as
 * hashes of totals, pending deltas and the batch in flight. Each method is one script call on one hash slot (every
 * key of a queue or a counter shares a hash tag), so it is atomic and Cluster-safe.
 */
import type { Cluster, Redis } from 'ioredis';
import type {
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
import { toCacheError } from './errors.js';

/** KEYS: stream, latest. ARGV: key, value. */
const ENQUEUE = `
local id = redis.call('XADD', KEYS[1], '*', 'k', ARGV[1], 'v', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], id)
return id`;

/** KEYS: stream, latest. ARGV: group, consumer, count, claimIdleMs. Returns id, key, value, live for each record. */
const TAKE = `
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
local n = tonumber(ARGV[3])
local out = {}
local function add(entries)
  for _, e in ipairs(entries) do
    local f = e[2]
    if type(f) == 'table' and f[1] == 'k' then
      local live = redis.call('HGET', KEYS[2], f[2]) == e[1] and 1 or 0
      out[#out + 1] = e[1]; out[#out + 1] = f[2]; out[#out + 1] = f[4]; out[#out + 1] = live
      n = n - 1
    else
      redis.call('XACK', KEYS[1], ARGV[1], e[1])
    end
  end
end
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], '0-0', 'COUNT', n)
add(claimed[2])
if n > 0 then
  local fresh = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', n, 'STREAMS', KEYS[1], '>')
  if fresh and fresh[1] then add(fresh[1][2]) end
end
return out`;

/** KEYS: latest. ARGV: id, key pairs. */
const LIVE = `
local out = {}
for i = 1, #ARGV, 2 do out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i + 1]) == ARGV[i] and 1 or 0 end
return out`;

/** KEYS: stream, latest, dead. ARGV: group, reason, maxDead, bury (1/0), then id, key, value triples. */
const DONE = `
for i = 5, #ARGV, 3 do
  local id, key = ARGV[i], ARGV[i + 1]
  if ARGV[4] == '1' then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'k', key, 'v', ARGV[i + 2], 'id', id, 'reason', ARGV[2])
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
  if redis.call('HGET', KEYS[2], key) == id then redis.call('HDEL', KEYS[2], key) end
end
return 1`;

/** KEYS: stream, dead. Returns depth, oldest id (or ''), dead letters. */
const INFO = `
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
return { redis.call('XLEN', KEYS[1]), first[1] and first[1][1] or '', redis.call('XLEN', KEYS[2]) }`;

/** KEYS: stream, latest, dead. ARGV: ids. Returns how many were queued again. */
const REVIVE = `
local n = 0
for _, id in ipairs(ARGV) do
  local found = redis.call('XRANGE', KEYS[3], id, id)
  if found[1] then
    local f = found[1][2]
    local new = redis.call('XADD', KEYS[1], '*', 'k', f[2], 'v', f[4])
    redis.call('HSET', KEYS[2], f[2], new)
    redis.call('XDEL', KEYS[3], id)
    n = n + 1
  end
end
return n`;

/** KEYS: totals, pending. ARGV: id, by, seed ('' for none), requireSeed (1/0). Returns { total, pending } or nil. */
const INCR = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  elseif ARGV[4] == '1' then return false end
end
return { redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]), redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2]) }`;

/** KEYS: pending, batch. ARGV: batchId, min. Returns the batch's fields (with __batch), or an empty array. */
const TAKE_BATCH = `
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.call('HGETALL', KEYS[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local min = tonumber(ARGV[2])
if min > 1 then
  local reached = false
  for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
    if math.abs(tonumber(v)) >= min then reached = true; break end
  end
  if not reached then return {} end
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], '__batch', ARGV[1])
return redis.call('HGETALL', KEYS[2])`;

/** KEYS: batch. ARGV: batchId. */
const COMMIT = `
if redis.call('HGET', KEYS[1], '__batch') == ARGV[1] then redis.call('DEL', KEYS[1]); return 1 end
return 0`;

/** KEYS: pending, batch. */
const UNFLUSHED = `
local sum = 0
for _, key in ipairs(KEYS) do
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do if all[i] ~= '__batch' then sum = sum + math.abs(tonumber(all[i + 1])) end end
end
return sum`;

const SCRIPTS = {
  tcEnqueue: { numberOfKeys: 2, lua: ENQUEUE },
  tcTake: { numberOfKeys: 2, lua: TAKE },
  tcLive: { numberOfKeys: 1, lua: LIVE },
  tcDone: { numberOfKeys: 3, lua: DONE },
  tcInfo: { numberOfKeys: 2, lua: INFO },
  tcRevive: { numberOfKeys: 3, lua: REVIVE },
  tcIncr: { numberOfKeys: 2, lua: INCR },
  tcTakeBatch: { numberOfKeys: 2, lua: TAKE_BATCH },
  tcCommit: { numberOfKeys: 1, lua: COMMIT },
  tcUnflushed: { numberOfKeys: 2, lua: UNFLUSHED },
} as const;

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;
type Scripts = Record<keyof typeof SCRIPTS, ScriptCall>;

/** The storage of queues and counters over one ioredis client (standalone or cluster). */
export class RedisStrategyStore implements RemoteStreams, RemoteCounters {
  readonly #scripts: Scripts;
  readonly #bound: <T>(promise: Promise<T>) => Promise<T>;
  readonly #client: Redis | Cluster;

  constructor(client: Redis | Cluster, bound: <T>(promise: Promise<T>) => Promise<T>) {
    for (const [name, definition] of Object.entries(SCRIPTS)) client.defineCommand(name, definition);
    this.#client = client;
    this.#scripts = client as unknown as Scripts;
    this.#bound = bound;
  }

  async #call(name: keyof typeof SCRIPTS, args: (string | number)[]): Promise<unknown> {
    try {
      return await this.#bound(this.#scripts[name].apply(this.#client, args));
    } catch (error) {
      throw toCacheError(error);
    }
  }

  // ── queues ─────────────────────────────────────────────────────────────────────────────────────────────────

  async enqueue(queue: QueueKeys, key: string, value: string): Promise<string> {
    return String(await this.#call('tcEnqueue', [queue.stream, queue.latest, key, value]));
  }

  async take(queue: QueueKeys, consumer: string, count: number, claimIdleMs: number): Promise<TakenRecord[]> {
    const flat = (await this.#call('tcTake', [
      queue.stream,
      queue.latest,
      queue.group,
      consumer,
      count,
      claimIdleMs,
    ])) as (string | number)[];
    const out: TakenRecord[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      out.push({ id: String(flat[i]), key: String(flat[i + 1]), value: String(flat[i + 2]), live: flat[i + 3] === 1 });
    }
    return out;
  }

  async live(queue: QueueKeys, records: readonly QueueRecord[]): Promise<boolean[]> {
    if (records.length === 0) return [];
    const args = records.flatMap((r) => [r.id, r.key]);
    const flat = (await this.#call('tcLive', [queue.latest, ...args])) as number[];
    return flat.map((x) => x === 1);
  }

  async done(queue: QueueKeys, records: readonly QueueRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.#call('tcDone', [queue.stream, queue.latest, queue.dead, queue.group, '', 0, 0, ...triples(records)]);
  }

  async bury(queue: QueueKeys, records: readonly QueueRecord[], reason: string, maxDead: number): Promise<void> {
    if (records.length === 0) return;
    await this.#call('tcDone', [
      queue.stream,
      queue.latest,
      queue.dead,
      queue.group,
      reason,
      maxDead,
      1,
      ...triples(records),
    ]);
  }

  async info(queue: QueueKeys): Promise<QueueInfo> {
    const [depth, oldest, dead] = (await this.#call('tcInfo', [queue.stream, queue.dead])) as [number, string, number];
    return { depth, oldestId: oldest === '' ? undefined : oldest, deadLetters: dead };
  }

  async deadLetters(queue: QueueKeys, count: number): Promise<DeadRecord[]> {
    try {
      const entries = await this.#bound(this.#client.xrange(queue.dead, '-', '+', 'COUNT', count));
      return entries.map(([id, fields]) => {
        const f = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
        return {
          id,
          key: f.get('k') ?? '',
          value: f.get('v') ?? '',
          originalId: f.get('id') ?? '',
          reason: f.get('reason') ?? '',
        };
      });
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async revive(queue: QueueKeys, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return Number(await this.#call('tcRevive', [queue.stream, queue.latest, queue.dead, ...ids]));
  }

  // ── counters ───────────────────────────────────────────────────────────────────────────────────────────────

  async incr(
    keys: CounterKeys,
    id: string,
    by: number,
    seed: number | undefined,
    requireSeed: boolean,
  ): Promise<{ readonly total: number; readonly pending: number } | undefined> {
    const reply = (await this.#call('tcIncr', [
      keys.totals,
      keys.pending,
      id,
      by,
      seed === undefined ? '' : seed,
      requireSeed ? 1 : 0,
    ])) as [number, number] | null;
    return reply === null ? undefined : { total: Number(reply[0]), pending: Number(reply[1]) };
  }

  async total(keys: CounterKeys, id: string): Promise<number | undefined> {
    try {
      const value = await this.#bound(this.#client.hget(keys.totals, id));
      return value === null ? undefined : Number(value);
    } catch (error) {
      throw toCacheError(error);
    }
  }

  async takeBatch(keys: CounterKeys, batchId: string, min: number): Promise<CounterBatch | undefined> {
    const flat = (await this.#call('tcTakeBatch', [keys.pending, keys.batch, batchId, min])) as string[];
    if (flat.length === 0) return undefined;
    let id = batchId;
    const deltas = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i] as string;
      if (field === '__batch') id = flat[i + 1] as string;
      else deltas.set(field, Number(flat[i + 1]));
    }
    return { batchId: id, deltas };
  }

  async commitBatch(keys: CounterKeys, batchId: string): Promise<boolean> {
    return (await this.#call('tcCommit', [keys.batch, batchId])) === 1;
  }

  async unflushed(keys: CounterKeys): Promise<number> {
    return Number(await this.#call('tcUnflushed', [keys.pending, keys.batch]));
  }
}

function triples(records: readonly QueueRecord[]): string[] {
  return records.flatMap((r) => [r.id, r.key, r.value]);
}
