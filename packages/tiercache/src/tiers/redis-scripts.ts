/** The Lua scripts of the Redis tier, and the typed commands ioredis defines for them. */
import type { ChainableCommander } from 'ioredis';
import type { LoadedRenewal, LoadedWrite, RenewReply } from '../types.js';

/*
 * The scripts below take a data key and its lock key; the lock key carries the data key as its hash tag (see
 * resilience/lock.ts), so both live in one slot and the scripts are Cluster-safe.
 */

/**
 * The created-at and expires-at of a stored entry, read off its header (version 2 `[2,k,c,e,…` or version 1
 * `{"v":1,"k":…,"c":…,"e":…`; docs/wire-format.md): nil, nil for anything else.
 */
const HEADER = `
local function header(s)
  local c, e = string.match(s, '^%[2,[01],(%d+),(%d+),')
  if not c then c, e = string.match(s, '^{"v":1,"k":[01],"c":(%d+),"e":(%d+)') end
  return tonumber(c), tonumber(e)
end`;

/** KEYS: data, lock. ARGV: value, pttl, createdAt, token, channel, message. Returns 1 when written. */
export const SET_LOADED = `${HEADER}
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
  local created = header(current)
  if created and created > tonumber(ARGV[3]) then
    if ARGV[4] ~= '' then redis.call('DEL', KEYS[2]) end
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[4] ~= '' then redis.call('DEL', KEYS[2]) end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1`;

/**
 * A loaded entry's expiry renewed without writing its value ("unchanged"). KEYS: data, lock. ARGV: token, createdAt,
 * expiresAt, graceUntil, pttl, channel, message. Rewrites the digits of `e` and `g` in place (one SETRANGE: no byte of
 * the value is sent or rewritten) when the new ones are as long, else the header alone is rebuilt around the stored
 * rest; an entry keeps its version. Returns 1 renewed, 0 lock lost, 2 no such entry (or not in its version's field
 * order), 3 a newer entry is stored.
 */
export const RENEW_LOADED = `${HEADER}
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local function done(code)
  if ARGV[1] ~= '' then redis.call('DEL', KEYS[2]) end
  return code
end
local current = redis.call('GET', KEYS[1])
if not current then return done(2) end
local sep = ','
local _, eAt = string.find(current, '^%[2,[01],%d+,')
if not eAt then
  sep = ',"g":'
  _, eAt = string.find(current, '^{"v":1,"k":[01],"c":%d+,"e":')
end
if not eAt then return done(2) end
local created = header(current)
if created ~= tonumber(ARGV[2]) then
  if created > tonumber(ARGV[2]) then return done(3) end
  return done(2)
end
local e = string.match(current, '^%d+', eAt + 1)
if not e then return done(2) end
local gAt = eAt + #e + #sep
if string.sub(current, eAt + #e + 1, gAt) ~= sep then return done(2) end
local g = string.match(current, '^%d+', gAt + 1)
if not g then return done(2) end
if #e == #ARGV[3] and #g == #ARGV[4] then
  redis.call('SETRANGE', KEYS[1], eAt, ARGV[3] .. sep .. ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  local rest = string.sub(current, gAt + #g + 1)
  redis.call('SET', KEYS[1], string.sub(current, 1, eAt) .. ARGV[3] .. sep .. ARGV[4] .. rest, 'PX', ARGV[5])
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
return done(1)`;

/**
 * KEYS: tag set. ARGV: member, its expiry (ms since epoch), now. The tag set is a sorted set scored by each member's
 * expiry: members that expired are pruned on every add, and the set itself expires with its last member, so tag
 * bookkeeping never outlives what it indexes.
 */
export const TAG_ADD = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1`;

/** KEYS: tag set. ARGV: now. Returns the live members and deletes the set, atomically. */
export const TAG_POP = `
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
redis.call('DEL', KEYS[1])
return members`;

/**
 * "The value, or else the lock", for the keys of one turn's loads in one call. KEYS: data1, lock1, data2, lock2, …
 * ARGV: token, pttl, now. Returns value1, taken1, value2, taken2, … (a value is nil for a miss; taken is 1 when the
 * lock was set, which happens only for a key without an entry fresh at `now`).
 */
export const READ_OR_LOCK = `${HEADER}
local out = {}
for i = 1, #KEYS, 2 do
  local value = redis.call('GET', KEYS[i])
  local fresh = false
  if value then
    local _, expires = header(value)
    fresh = expires ~= nil and expires > tonumber(ARGV[3])
  end
  local taken = 0
  if not fresh and redis.call('SET', KEYS[i + 1], ARGV[1], 'NX', 'PX', ARGV[2]) then taken = 1 end
  out[#out + 1] = value
  out[#out + 1] = taken
end
return out`;

/** A turn's plain sets as one call. KEYS: the keys. ARGV: value1, pttl1, value2, pttl2, … */
export const SET_MANY = `
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', ARGV[2 * i]) end
return #KEYS`;

/** KEYS: lock. ARGV: token. */
export const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** KEYS: lock. ARGV: token, pttl. */
export const EXTEND_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

export interface ScriptCommands {
  tiercacheSetLoaded(
    data: string,
    lock: string,
    value: string,
    pttl: number,
    createdAt: number,
    token: string,
    channel: string,
    message: string,
  ): Promise<number>;
  tiercacheRelease(lock: string, token: string): Promise<number>;
  tiercacheRenewLoaded(...args: RenewArgs): Promise<number>;
  tiercacheTagPop(tag: string, now: number): Promise<string[]>;
  tiercacheExtend(lock: string, token: string, pttl: number): Promise<number>;
  tiercacheReadOrLock(numberOfKeys: number, ...args: (string | number)[]): Promise<(string | number | null)[]>;
  tiercacheSetMany(numberOfKeys: number, ...args: (string | number)[]): Promise<number>;
}

export interface PipelineOp {
  /** The key whose hash slot the command belongs to. */
  readonly slotKey: string;
  readonly add: (pipeline: ChainableCommander) => unknown;
}

export interface TagPipeline {
  tiercacheSetLoaded(...args: readonly [string, string, string, number, number, string, string, string]): unknown;
  tiercacheRenewLoaded(...args: RenewArgs): unknown;
  tiercacheTagAdd(tag: string, member: string, expiresAt: number, now: number): unknown;
  tiercacheTagPop(tag: string, now: number): unknown;
  tiercacheReadOrLock(...args: (string | number)[]): unknown;
}

export function loadedArgs(
  write: LoadedWrite,
): readonly [string, string, string, number, number, string, string, string] {
  return [write.key, write.lockKey, write.value, write.ttlMs, write.createdAt, write.token, write.channel, write.key];
}

export type RenewArgs = readonly [string, string, string, number, number, number, number, string, string];

export function renewArgs(renewal: LoadedRenewal): RenewArgs {
  const { key, lockKey, token, createdAt, expiresAt, graceUntil, ttlMs, channel } = renewal;
  return [key, lockKey, token, createdAt, expiresAt, graceUntil, ttlMs, channel, key];
}

const RENEW_REPLIES: readonly RenewReply[] = ['lost', 'renewed', 'missing', 'newer'];

export function renewReply(reply: unknown): RenewReply {
  return RENEW_REPLIES[Number(reply)] ?? 'missing';
}
