/**
 * The Python companion (interop/python/tiercache_wire.py) against a real redis-server and the library, both ways:
 * what Python writes, tiercache reads with its types, drops from memory when Python rewrites it (CLIENT TRACKING) and
 * invalidates by tag (the tag index Python maintains); what tiercache writes, Python reads with its types, TTL and
 * grace. Runs Debian's /usr/bin/python3 with python3-redis (README prerequisites); fails, never skips, without it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from 'tiercache';
import { useRedis } from './helpers/fixture.js';
import { findPython, runPython } from './helpers/python.js';
import { uniquePrefix, waitFor } from './helpers/support.js';

const fixture = useRedis({ cacheDefaults: { timeouts: { redisMs: 1000 } } });

let python: string;
beforeAll(async () => {
  python = await findPython();
});

/** Runs `body` after a preamble that opens `wire` on the fixture's server under `prefix`. */
function py<T = unknown>(prefix: string, body: string): Promise<T> {
  const preamble = [
    'import json, math, os, time',
    'from datetime import datetime, timedelta, timezone',
    'import redis',
    'from tiercache_wire import *',
    "client = redis.Redis(host='127.0.0.1', port=int(os.environ['REDIS_PORT']))",
    "wire = TiercacheWire(client, os.environ['PREFIX'])",
    '',
  ].join('\n');
  return runPython<T>(python, preamble + body, { REDIS_PORT: String(fixture.redis.port), PREFIX: prefix });
}

async function tracked(prefix: string): Promise<Cache> {
  const cache = await fixture.open(prefix);
  await waitFor('tracking to be on', () => cache.stats().bus?.tracking === true);
  return cache;
}

describe('Python writes, tiercache reads', () => {
  it('reads every tagged type Python writes as the JavaScript value it stands for', async () => {
    const prefix = uniquePrefix('py-types');
    await py(
      prefix,
      `
value = {
    "id": BigInt(42),
    "views": 2**60,
    "price": 19.5,
    "born": datetime(1815, 12, 10, 8, 30, 15, 123000, tzinfo=timezone.utc),
    "naive": datetime(2024, 2, 29, 12, 0, 0),
    "roles": {"admin"},
    "byId": JSMap([(1, "one"), ("two", datetime(2020, 1, 1, tzinfo=timezone.utc))]),
    "raw": bytes([0, 1, 2, 253, 254, 255]),
    "gone": UNDEFINED,
    "none": None,
    "$t": "kept",
    "odd": [-0.0, math.inf, -math.inf, math.nan],
    "nested": [{"deep": [JSMap([("k", {BigInt(7)})])]}],
}
wire.set("product:1", value, ttl="5m", grace="1m", tags=["products"])
wire.set("plain", {"id": 1, "name": "Ada"}, ttl=60000)
print(json.dumps(client.get(wire.full_key("plain")).decode()))
`,
    );
    const cache = await fixture.open(prefix);
    const read = await cache.getWithMeta<Record<string, unknown>>('product:1');
    expect(read?.source).toBe('redis');
    expect(read?.expiresInMs).toBeGreaterThan(290_000);
    expect(read?.expiresInMs).toBeLessThanOrEqual(300_000);
    const value = read?.value as Record<string, unknown>;
    expect(value).toEqual({
      id: 42n,
      views: 2n ** 60n,
      price: 19.5,
      born: new Date('1815-12-10T08:30:15.123Z'),
      naive: new Date('2024-02-29T12:00:00.000Z'),
      roles: new Set(['admin']),
      byId: new Map<unknown, unknown>([
        [1, 'one'],
        ['two', new Date('2020-01-01T00:00:00.000Z')],
      ]),
      raw: new Uint8Array([0, 1, 2, 253, 254, 255]),
      gone: undefined,
      none: null,
      $t: 'kept',
      odd: [-0, Infinity, -Infinity, NaN],
      nested: [{ deep: [new Map([['k', new Set([7n])]])] }],
    });
    expect(Object.prototype.hasOwnProperty.call(value, 'gone')).toBe(true);
    expect(Object.is((value['odd'] as number[])[0], -0)).toBe(true);
    expect(value['raw']).toBeInstanceOf(Uint8Array);
    expect(await cache.get('plain')).toEqual({ id: 1, name: 'Ada' });
  });

  it('stores the envelope in the documented field order, with PX = ttl + grace and the tag index scored by g', async () => {
    const prefix = uniquePrefix('py-envelope');
    await py(prefix, `wire.set("user:7", {"id": 7}, ttl="5m", grace="1m", tags=["users", "vip"])\nprint(1)`);
    const { raw } = fixture;
    const stored = (await raw.get(`${prefix}user:7`)) as string;
    expect(stored).toMatch(/^\[2,0,\d+,\d+,\d+,\["users","vip"\],\{"id":7\}\]$/);
    const [, , c, e, g] = JSON.parse(stored) as [number, number, number, number, number];
    expect(e - c).toBe(300_000);
    expect(g - e).toBe(60_000);
    const pttl = await raw.pttl(`${prefix}user:7`);
    expect(pttl).toBeGreaterThan(350_000);
    expect(pttl).toBeLessThanOrEqual(360_000);
    for (const tag of ['users', 'vip']) {
      expect(Number(await raw.zscore(`${prefix}__tag:${tag}`, `${prefix}user:7`))).toBe(g);
      const setTtl = await raw.pttl(`${prefix}__tag:${tag}`);
      expect(setTtl).toBeGreaterThan(350_000);
    }
  });

  it('a Python rewrite of a key reaches the memory tier of a running instance through CLIENT TRACKING', async () => {
    const prefix = uniquePrefix('py-tracking');
    const cache = await tracked(prefix);
    await cache.set('config', { version: 1 });
    expect((await cache.getWithMeta('config'))?.source).toBe('memory');

    await py(prefix, `wire.set("config", {"version": 2}, ttl="1m")\nprint(1)`);
    await waitFor('the instance to drop its memory copy', async () => {
      const read = await cache.getWithMeta<{ version: number }>('config');
      return read?.value.version === 2;
    });

    await py(prefix, `print(wire.delete("config"))`);
    await waitFor('the instance to see the delete', async () => (await cache.get('config')) === undefined);
  });

  it('invalidateTags in tiercache removes what Python wrote with that tag, in Redis and in memory, and nothing else', async () => {
    const prefix = uniquePrefix('py-tags');
    const cache = await tracked(prefix);
    await py(
      prefix,
      `
wire.set_many([("news:1", {"id": 1}), ("news:2", {"id": 2})], ttl="10m", tags=["news"])
wire.set("weather", {"sunny": True}, ttl="10m", tags=["weather"])
print(1)`,
    );
    // Read once, so the instance holds memory copies the invalidation must drop too.
    expect(await cache.mget(['news:1', 'news:2', 'weather'])).toEqual([{ id: 1 }, { id: 2 }, { sunny: true }]);
    expect((await cache.getWithMeta('news:1'))?.source).toBe('memory');

    await cache.invalidateTags(['news']);
    expect(await cache.mget(['news:1', 'news:2', 'weather'])).toEqual([undefined, undefined, { sunny: true }]);
    const { raw } = fixture;
    expect(await raw.exists(`${prefix}news:1`, `${prefix}news:2`, `${prefix}__tag:news`)).toBe(0);
    expect(await py(prefix, `print(json.dumps([wire.get("news:1"), wire.get("weather")]))`)).toEqual([
      null,
      { sunny: true },
    ]);
  });
});

describe('tiercache writes, Python reads', () => {
  it('reads values, types, tags, TTL and grace as tiercache wrote them', async () => {
    const prefix = uniquePrefix('ts-types');
    const cache = await fixture.open(prefix);
    await cache.set(
      'user:44',
      {
        id: 9_007_199_254_740_993n,
        born: new Date('1815-12-10T00:00:00.000Z'),
        roles: new Set(['admin', 'editor']),
        scores: new Map<unknown, unknown>([
          ['a', 1],
          [2, [true, null]],
        ]),
        avatar: new Uint8Array([255, 0, 127]),
        nickname: undefined,
        $t: 'mine',
        ratio: -0,
        list: [1, 'two', { three: 3 }],
      },
      { ttl: '5m', grace: '1m', tags: ['users'] },
    );
    const read = await py<Record<string, unknown>>(
      prefix,
      `
entry = wire.get_entry("user:44")
v = entry.value
print(json.dumps({
    "id": [type(v["id"]).__name__, str(v["id"])],
    "born": [type(v["born"]).__name__, v["born"].isoformat()],
    "roles": [type(v["roles"]).__name__, sorted(v["roles"])],
    "scores": [type(v["scores"]).__name__, [[k, val] for k, val in v["scores"].items()]],
    "avatar": [type(v["avatar"]).__name__, list(v["avatar"])],
    "nickname": v["nickname"] is UNDEFINED,
    "$t": v["$t"],
    "ratio": math.copysign(1.0, v["ratio"]) < 0 and v["ratio"] == 0,
    "list": v["list"],
    "tags": list(entry.tags),
    "ttl": entry.expires_at - entry.created_at,
    "grace": entry.grace_until - entry.expires_at,
    "fresh": entry.fresh(wire.now_ms()),
    "expiresIn": entry.expires_in_ms(wire.now_ms()),
    "index": client.zscore(wire.tag_key("users"), wire.full_key("user:44")) >= entry.grace_until,
}))`,
    );
    expect(read).toEqual({
      id: ['BigInt', '9007199254740993'],
      born: ['datetime', '1815-12-10T00:00:00+00:00'],
      roles: ['set', ['admin', 'editor']],
      scores: [
        'JSMap',
        [
          ['a', 1],
          [2, [true, null]],
        ],
      ],
      avatar: ['bytes', [255, 0, 127]],
      nickname: true,
      $t: 'mine',
      ratio: true,
      list: [1, 'two', { three: 3 }],
      tags: ['users'],
      ttl: 300_000,
      grace: 60_000,
      fresh: true,
      expiresIn: expect.any(Number),
      index: true,
    });
    expect(read['expiresIn']).toBeGreaterThan(290_000);
  });
  it('treats an entry past its TTL as a miss, and serves it as stale only when asked, until the end of grace', async () => {
    const prefix = uniquePrefix('ts-grace');
    const cache = await fixture.open(prefix);
    await cache.set('rate', 1.25, { ttl: '10s', grace: '1m' });
    // Python's clock moved forward instead of waiting: 20 s on is past the TTL, 2 min on is past the grace window.
    expect(
      await py(
        prefix,
        `
later = TiercacheWire(client, os.environ['PREFIX'], clock=lambda: time.time() + 20)
much_later = TiercacheWire(client, os.environ['PREFIX'], clock=lambda: time.time() + 120)
stale = later.get_entry("rate", allow_stale=True)
print(json.dumps([
    wire.get("rate"),
    later.get("rate"),
    stale.value,
    stale.stale(later.now_ms()),
    much_later.get_entry("rate", allow_stale=True) is None,
]))`,
      ),
    ).toEqual([1.25, null, 1.25, true, true]);
  });

  it('reads hostile or foreign values as misses without raising, and leaves them in place', async () => {
    const prefix = uniquePrefix('hostile');
    const now = Date.now();
    const envelope = (k: number, d: string, v = 2) =>
      v === 1
        ? `{"v":1,"k":${k},"c":${now},"e":${now + 60_000},"g":${now + 60_000},"t":[],"d":${d}}`
        : `[${v},${k},${now},${now + 60_000},${now + 60_000},[],${d}]`;
    const { raw } = fixture;
    const stored: Record<string, string> = {
      proto: envelope(1, '{"__proto__":{"$t":"Map","v":[]},"constructor":{"prototype":1}}'),
      protoV1: envelope(1, '{"__proto__":{"$t":"Map","v":[]},"constructor":{"prototype":1}}', 1),
      newer: envelope(0, '1', 3),
      objectV2: `{"v":2,"k":0,"c":${now},"e":${now + 60_000},"g":${now + 60_000},"t":[],"d":1}`,
      short: `[2,0,${now},${now + 60_000},${now + 60_000},[]]`,
      notjson: 'not json at all',
      badtag: envelope(1, '{"$t":"Function","v":"alert(1)"}'),
      badbase64: envelope(1, '{"$t":"Uint8Array","v":"!!"}'),
      badmap: envelope(1, '{"$t":"Map","v":[[1]]}'),
      nan: `{"v":1,"k":0,"c":NaN,"e":1,"g":1,"t":[],"d":1}`,
      objectkey: envelope(1, '{"$t":"Set","v":[{"a":1}]}'),
      bigdate: envelope(1, '{"$t":"Date","v":"+275760-09-13T00:00:00.000Z"}'),
    };
    for (const [key, value] of Object.entries(stored)) await raw.set(`${prefix}${key}`, value, 'PX', 60_000);
    const read = await py<Record<string, unknown>>(
      prefix,
      `
keys = ${JSON.stringify(Object.keys(stored))}
out = {}
for key in keys:
    entry = wire.get_entry(key)
    out[key] = None if entry is None else repr(entry.value)
print(json.dumps(out))`,
    );
    expect(read).toEqual({
      proto: "{'__proto__': JSMap({}), 'constructor': {'prototype': 1}}",
      protoV1: "{'__proto__': JSMap({}), 'constructor': {'prototype': 1}}",
      newer: null,
      objectV2: null,
      short: null,
      notjson: null,
      badtag: null,
      badbase64: null,
      badmap: null,
      nan: null,
      objectkey: null,
      bigdate: null,
    });
    // tiercache agrees: the same entries are misses for it too, except the hostile-but-valid ones.
    const cache = await fixture.open(prefix);
    expect(
      (await cache.mget(['newer', 'objectV2', 'short', 'notjson', 'badtag', 'badbase64', 'badmap'])).every(
        (v) => v === undefined,
      ),
    ).toBe(true);
    expect(await raw.exists(...Object.keys(stored).map((key) => `${prefix}${key}`))).toBe(Object.keys(stored).length);
  });

  it('refuses to write what the format cannot hold, with a clear error and nothing stored', async () => {
    const prefix = uniquePrefix('py-refuse');
    const errors = await py<string[]>(
      prefix,
      `
out = []
for value, options in [
    ({1: "int key"}, {}),
    (object(), {}),
    ({"x": 1}, {"ttl": 0}),
    ({"x": 1}, {"ttl": "5m", "tags": [""]}),
]:
    try:
        wire.set("k", value, **{"ttl": "5m", **options})
        out.append("written")
    except EncodeError as error:
        out.append(str(error))
try:
    wire.set("__lock:k", 1, ttl="5m")
except EncodeError as error:
    out.append(str(error))
print(json.dumps(out))`,
    );
    expect(errors).toEqual([
      expect.stringMatching(/object key must be a string.*JSMap/),
      expect.stringMatching(/a value of type object cannot be cached/),
      expect.stringMatching(/`ttl` to be a positive duration/),
      expect.stringMatching(/tags of 1 to 256 characters/),
      expect.stringMatching(/reserved/),
    ]);
    expect(await fixture.raw.exists(`${prefix}k`)).toBe(0);
  });
});
