import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FORMAT_VERSION,
  createEntry,
  decodeEntry,
  encodeEntry,
  storedCreatedAt,
  storedFreshAt,
  withTimes,
} from '../../src/entry.js';
import { DecodeError, EncodeError } from '../../src/serializer.js';

const NOW = Date.UTC(2026, 0, 1);

function encode(value: unknown, tags: readonly string[] = []): string {
  return encodeEntry(createEntry(value, NOW, 60_000, 5_000, tags));
}

function roundTrip(value: unknown): unknown {
  return decodeEntry(encode(value)).value;
}

/** The envelope's fields by name, as a reader in another language would take them out of the array. */
function envelope(value: unknown): Record<string, unknown> {
  const [v, k, c, e, g, t, d] = JSON.parse(encode(value)) as unknown[];
  return { v, k, c, e, g, t, d };
}

/** A hand-written stored entry around the raw JSON text of `d`, in the version written now (2) or in version 1. */
function stored(d: string, k: 0 | 1 = 1, version: 1 | 2 = 2): string {
  if (version === 1) return `{"v":1,"k":${k},"c":${NOW},"e":${NOW + 1000},"g":${NOW + 2000},"t":[],"d":${d}}`;
  return `[2,${k},${NOW},${NOW + 1000},${NOW + 2000},[],${d}]`;
}

function expectPrototypeUntouched(): void {
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
  expect(Object.prototype).not.toHaveProperty('$t');
}

describe('the envelope', () => {
  it('holds the format version, kind, times in ms since the epoch, tags and data at fixed positions', () => {
    const text = encodeEntry(createEntry({ a: 1 }, NOW, 60_000, 5_000, ['user', 'org:7']));
    expect(text).toBe(`[2,0,${NOW},${NOW + 60_000},${NOW + 65_000},["user","org:7"],{"a":1}]`);
  });

  it('decodes back to the entry it was made from', () => {
    const entry = createEntry(['x'], NOW, 1_000, 0, ['t1']);
    expect(decodeEntry(encodeEntry(entry))).toStrictEqual(entry);
    expect(entry.graceUntil).toBe(entry.expiresAt);
  });

  it('is written with version 2', () => {
    expect(FORMAT_VERSION).toBe(2);
    expect(envelope(1)['v']).toBe(2);
  });

  it('still reads version 1 entries, the JSON object that tiercache wrote before', () => {
    const v1 = `{"v":1,"k":0,"c":${NOW},"e":${NOW + 60_000},"g":${NOW + 65_000},"t":["user"],"d":{"a":1}}`;
    expect(decodeEntry(v1)).toStrictEqual(createEntry({ a: 1 }, NOW, 60_000, 5_000, ['user']));
    expect(decodeEntry(stored('{"$t":"BigInt","v":"7"}', 1, 1)).value).toBe(7n);
  });
});

describe('the header, read without decoding the value (as the Redis scripts read it)', () => {
  const v2 = `[2,0,${NOW},${NOW + 1000},${NOW + 2000},["t"],{"c":1,"e":99999999999999}]`;
  const v1 = `{"v":1,"k":0,"c":${NOW},"e":${NOW + 1000},"g":${NOW + 2000},"t":["t"],"d":{"c":1,"e":99999999999999}}`;

  it('gives the creation time and freshness of either version, and nothing for other text', () => {
    for (const text of [v2, v1]) {
      expect(storedCreatedAt(text)).toBe(NOW);
      expect(storedFreshAt(text, NOW + 999)).toBe(true);
      expect(storedFreshAt(text, NOW + 1000)).toBe(false);
    }
    for (const text of ['[3,0,1,2,3,[],1]', '{"d":{"c":1,"e":2}}', 'token', null, undefined]) {
      expect(storedCreatedAt(text)).toBeUndefined();
      expect(storedFreshAt(text, 0)).toBe(false);
    }
  });

  it('rewrites e and g of either version and leaves every other byte as it was', () => {
    expect(withTimes(v2, 5, 6)).toStrictEqual({
      createdAt: NOW,
      encoded: v2.replace(`${NOW + 1000},${NOW + 2000}`, '5,6'),
    });
    expect(withTimes(v1, 5, 6)).toStrictEqual({
      createdAt: NOW,
      encoded: v1.replace(`"e":${NOW + 1000},"g":${NOW + 2000}`, '"e":5,"g":6'),
    });
    expect(decodeEntry(withTimes(v2, 5, 6)?.encoded as string)).toMatchObject({ expiresAt: 5, graceUntil: 6 });
    expect(withTimes('{"d":1}', 5, 6)).toBeUndefined();
  });
});

describe('tagged types round-trip', () => {
  it('keeps a Date as a Date with the same instant', () => {
    const date = new Date('2024-02-29T12:34:56.789Z');
    const back = roundTrip(date);
    expect(back).toBeInstanceOf(Date);
    expect((back as Date).toISOString()).toBe('2024-02-29T12:34:56.789Z');
    expect(envelope(date)['d']).toStrictEqual({ $t: 'Date', v: '2024-02-29T12:34:56.789Z' });
  });

  it('keeps an invalid Date invalid', () => {
    const back = roundTrip(new Date(NaN));
    expect(back).toBeInstanceOf(Date);
    expect(Number.isNaN((back as Date).getTime())).toBe(true);
    expect(envelope(new Date(NaN))['d']).toStrictEqual({ $t: 'Date', v: null });
  });

  it('keeps a BigInt beyond 2^53 exact, written as a decimal string', () => {
    const big = 2n ** 70n + 1n;
    expect(roundTrip(big)).toBe(big);
    expect(roundTrip(-123n)).toBe(-123n);
    expect(envelope(big)['d']).toStrictEqual({ $t: 'BigInt', v: '1180591620717411303425' });
  });

  it('keeps a Map with string, number and object keys, in insertion order', () => {
    const objectKey = { id: 1 };
    const map = new Map<unknown, unknown>([
      ['b', 1],
      [2, 'two'],
      [objectKey, new Date(0)],
    ]);
    const back = roundTrip(map) as Map<unknown, unknown>;
    expect(back).toBeInstanceOf(Map);
    expect([...back.keys()]).toStrictEqual(['b', 2, { id: 1 }]);
    expect([...back.values()]).toStrictEqual([1, 'two', new Date(0)]);
    expect(envelope(new Map([['a', 1]]))['d']).toStrictEqual({ $t: 'Map', v: [['a', 1]] });
  });

  it('keeps a Set and its order', () => {
    const back = roundTrip(new Set([3, 'a', 1n]));
    expect(back).toStrictEqual(new Set([3, 'a', 1n]));
    expect([...(back as Set<unknown>)]).toStrictEqual([3, 'a', 1n]);
    expect(envelope(new Set([1, 2]))['d']).toStrictEqual({ $t: 'Set', v: [1, 2] });
  });

  it('keeps a Uint8Array, written as base64', () => {
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
    const back = roundTrip(bytes);
    expect(back).toStrictEqual(bytes);
    expect(envelope(bytes)['d']).toStrictEqual({ $t: 'Uint8Array', v: 'AAEC/f7/' });
  });

  it('keeps the bytes of a Uint8Array that views part of a larger buffer', () => {
    const whole = new Uint8Array([9, 9, 1, 2, 3, 9]);
    expect(roundTrip(whole.subarray(2, 5))).toStrictEqual(new Uint8Array([1, 2, 3]));
  });

  it('reads a Buffer back as a Uint8Array with the same bytes', () => {
    const back = roundTrip(Buffer.from('héllo', 'utf8'));
    expect(back).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(back)).toBe(false);
    expect(Buffer.from(back as Uint8Array).toString('utf8')).toBe('héllo');
  });

  it('keeps undefined at the top level, as an object property and as an array element', () => {
    expect(roundTrip(undefined)).toBeUndefined();
    expect(envelope(undefined)['d']).toStrictEqual({ $t: 'undefined' });
    const object = roundTrip({ a: undefined, b: 1 }) as Record<string, unknown>;
    expect(Object.keys(object)).toStrictEqual(['a', 'b']);
    expect(object).toStrictEqual({ a: undefined, b: 1 });
    expect(roundTrip([1, undefined, 3])).toStrictEqual([1, undefined, 3]);
  });

  it('reads a hole in a sparse array as undefined rather than null', () => {
    // eslint-disable-next-line no-sparse-arrays
    const back = roundTrip([1, , 3]) as unknown[];
    expect(back).toHaveLength(3);
    expect(back[1]).toBeUndefined();
  });

  it('keeps NaN, Infinity, -Infinity and -0', () => {
    const back = roundTrip([NaN, Infinity, -Infinity, -0, 0]) as number[];
    expect(back).toHaveLength(5);
    expect(Number.isNaN(back[0])).toBe(true);
    expect(back[1]).toBe(Infinity);
    expect(back[2]).toBe(-Infinity);
    expect(Object.is(back[3], -0)).toBe(true);
    expect(Object.is(back[4], 0)).toBe(true);
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(envelope(-0)['d']).toStrictEqual({ $t: 'Number', v: '-0' });
    expect(envelope(-Infinity)['d']).toStrictEqual({ $t: 'Number', v: '-Infinity' });
  });

  it('keeps nested combinations of every tagged type', () => {
    const value = {
      user: { id: 7n, seen: new Date('2020-01-01T00:00:00.000Z'), roles: new Set(['admin', 'dev']) },
      scores: new Map<string, unknown>([
        ['a', [1, -0, NaN]],
        ['b', { nested: new Map([[new Date(5), new Uint8Array([7])]]) }],
      ]),
      list: [undefined, { deep: [Infinity, new Set([new Map([[1n, undefined]])])] }],
      plain: { n: 1, s: 'x', b: true, z: null, arr: [] },
    };
    const back = roundTrip(value);
    expect(back).toStrictEqual(value);
    const scores = (back as typeof value).scores.get('a') as number[];
    expect(Object.is(scores[1], -0)).toBe(true);
  });

  it('keeps the data of objects that are shared, not circular', () => {
    const shared = { x: 1 };
    expect(roundTrip([shared, shared, { again: shared }])).toStrictEqual([{ x: 1 }, { x: 1 }, { again: { x: 1 } }]);
  });

  it('uses toJSON like JSON.stringify does', () => {
    const value = { toJSON: () => ({ when: new Date(0) }) };
    expect(roundTrip(value)).toStrictEqual({ when: new Date(0) });
  });

  it('calls toJSON once, so a toJSON that returns this is written as the object itself', () => {
    // A pattern of model classes; JSON.stringify gives {"x":1}, and before this was a stack overflow here.
    class Plain {
      x = 1;
      toJSON(): this {
        return this;
      }
    }
    class Tagged {
      id = 7n;
      at = new Date(0);
      toJSON(): this {
        return this;
      }
    }
    expect(envelope(new Plain())).toMatchObject({ k: 0, d: { x: 1 } });
    expect(roundTrip(new Plain())).toStrictEqual({ x: 1 });
    expect(envelope(new Tagged())).toMatchObject({ k: 1 });
    expect(roundTrip(new Tagged())).toStrictEqual({ id: 7n, at: new Date(0) });
    expect(roundTrip([new Tagged(), new Set([new Plain()]), new Map([[new Plain(), new Tagged()]])])).toStrictEqual([
      { id: 7n, at: new Date(0) },
      new Set([{ x: 1 }]),
      new Map([[{ x: 1 }, { id: 7n, at: new Date(0) }]]),
    ]);
  });

  it('does not call toJSON again on what toJSON returned, as JSON.stringify does not', () => {
    class Lazy {
      toJSON(): unknown {
        return new Lazy();
      }
    }
    expect(JSON.stringify(new Lazy())).toBe('{}');
    expect(roundTrip(new Lazy())).toStrictEqual({});
    // The same through the tagging path, which a BigInt next to it forces.
    expect(roundTrip([new Lazy(), 1n])).toStrictEqual([{}, 1n]);
  });
});

describe('k: whether readers must revive', () => {
  it('is 0 for plain JSON values, which are written exactly as JSON.stringify writes them', () => {
    for (const value of [null, true, 0, -1.5, 'text', [], {}, [1, 'a', null], { a: { b: [1, 2, { c: 'd' }] } }]) {
      const text = encode(value);
      expect((JSON.parse(text) as unknown[])[1]).toBe(0);
      expect(text.endsWith(`,${JSON.stringify(value)}]`)).toBe(true);
      expect(decodeEntry(text).value).toStrictEqual(value);
    }
  });

  it('is 1 as soon as a tagged value appears anywhere in the data', () => {
    for (const value of [new Date(0), 1n, new Map(), new Set(), new Uint8Array(), undefined, NaN, -0]) {
      expect(envelope(value)['k']).toBe(1);
      expect(envelope({ deep: [{ deeper: value }] })['k']).toBe(1);
    }
  });

  it('is 1 when an object has a key that looks like the tag key', () => {
    expect(envelope({ $t: 'x' })['k']).toBe(1);
    expect(envelope([{ a: { $$t: 1 } }])['k']).toBe(1);
    expect(envelope({ $ta: 1, t$: 1, $: 1, t: 1 })['k']).toBe(0);
  });
});

describe('user keys that look like the tag key', () => {
  it('round-trip unchanged, each stored with one more $', () => {
    const value = { $t: 'Map', v: [], $$t: 'Date', $$$t: 3, nested: [{ $t: 'undefined' }] };
    expect(envelope(value)['d']).toStrictEqual({
      $$t: 'Map',
      v: [],
      $$$t: 'Date',
      $$$$t: 3,
      nested: [{ $$t: 'undefined' }],
    });
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it('round-trip unchanged inside Maps and Sets', () => {
    const value = new Map<unknown, unknown>([[{ $t: 'k' }, new Set([{ $$t: 'v' }])]]);
    expect(roundTrip(value)).toStrictEqual(value);
  });
});

describe('__proto__ in data', () => {
  it('round-trips an own __proto__ key from JSON.parse as data without touching Object.prototype', () => {
    const value = JSON.parse('{"__proto__":{"polluted":1},"ok":true}') as Record<string, unknown>;
    expect(Object.keys(value)).toStrictEqual(['__proto__', 'ok']);
    const back = roundTrip(value) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toStrictEqual(['__proto__', 'ok']);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toStrictEqual({ polluted: 1 });
    expect(back['polluted']).toBeUndefined();
    expectPrototypeUntouched();
  });

  it('round-trips an own __proto__ key made with defineProperty, also in a tagged entry', () => {
    const value: Record<string, unknown> = { when: new Date(0) };
    Object.defineProperty(value, '__proto__', { value: { polluted: 1 }, enumerable: true, writable: true });
    const text = encode(value);
    expect((JSON.parse(text) as unknown[])[1]).toBe(1);
    const back = roundTrip(value) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(back, '__proto__')?.value).toStrictEqual({ polluted: 1 });
    expect(back['when']).toStrictEqual(new Date(0));
    expectPrototypeUntouched();
  });

  it('keeps an own __proto__ key as data next to a renamed $t key', () => {
    const value = JSON.parse('{"__proto__":{"polluted":1},"$t":"Map"}') as Record<string, unknown>;
    const back = roundTrip(value) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.keys(back)).toStrictEqual(['__proto__', '$t']);
    expect(back['$t']).toBe('Map');
    expectPrototypeUntouched();
  });

  /** The same hand-written entry in version 1. */
  const toV1 = (text: string): string => {
    const prefix = `[2,1,${NOW},${NOW + 1000},${NOW + 2000},[],`;
    const k = text.startsWith(prefix) ? 1 : 0;
    return stored(text.slice(prefix.length, -1), k, 1);
  };

  it('decodes hostile hand-written entries of either version without polluting any prototype', () => {
    const hostile = [
      stored('{"__proto__":{"$t":"Map","v":[]}}'),
      stored('{"__proto__":{"polluted":1}}'),
      stored('{"__proto__":{"polluted":1}}', 0),
      stored('{"a":{"__proto__":{"polluted":1,"$$t":1}}}'),
      stored('{"$t":"Map","v":[["__proto__",{"polluted":1}],[{"__proto__":{"polluted":1}},1]]}'),
      stored('{"$t":"Set","v":[{"__proto__":{"polluted":1}}]}'),
      stored('{"constructor":{"prototype":{"polluted":1}}}'),
      stored('[{"__proto__":{"__proto__":{"polluted":1}}}]'),
    ];
    for (const raw of [...hostile, ...hostile.map((text) => toV1(text))]) {
      const value = decodeEntry(raw).value;
      expectPrototypeUntouched();
      expect(value).not.toHaveProperty('polluted');
    }
  });

  it('keeps a tagged value under a __proto__ key as an own property, not as the prototype', () => {
    const value = decodeEntry(stored('{"__proto__":{"$t":"Map","v":[["a",1]]}}')).value as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toStrictEqual(new Map([['a', 1]]));
    expect(value).not.toBeInstanceOf(Map);
  });
});

describe('values that cannot be encoded', () => {
  const cases: [string, () => unknown][] = [
    [
      'a circular object',
      () => {
        const a: Record<string, unknown> = {};
        a['self'] = a;
        return a;
      },
    ],
    [
      'a circular array',
      () => {
        const a: unknown[] = [];
        a.push([a]);
        return a;
      },
    ],
    [
      'a Map that holds itself',
      () => {
        const m = new Map<string, unknown>();
        m.set('me', m);
        return m;
      },
    ],
    [
      'a Set that holds itself',
      () => {
        const s = new Set<unknown>();
        s.add({ s });
        return s;
      },
    ],
    ['a function', () => () => 1],
    ['a function in an object', () => ({ f: () => 1 })],
    ['a symbol', () => Symbol('x')],
    ['a symbol in an array', () => [Symbol('x')]],
    ['a function as a Map key', () => new Map([[() => 1, 1]])],
    ['a Promise', () => Promise.resolve(1)],
    ['a WeakMap', () => new WeakMap()],
    ['a Float64Array', () => new Float64Array([1.5])],
    ['an ArrayBuffer', () => new ArrayBuffer(4)],
  ];

  it.each(cases)('throws an EncodeError for %s', (_name, make) => {
    expect(() => encode(make())).toThrow(EncodeError);
  });

  it('names what is wrong in the message', () => {
    expect(() => encode({ f: () => 1 })).toThrow('a function cannot be cached');
    expect(() => encode(Symbol('s'))).toThrow('a symbol cannot be cached');
    const a: unknown[] = [];
    a.push(a);
    expect(() => encode(a)).toThrow('a circular value cannot be cached');
  });
});

describe('decoding what is not a well-formed entry', () => {
  const bad: [string, string][] = [
    ['garbage', 'not json at all'],
    ['an empty string', ''],
    ['a JSON string', '"text"'],
    ['a JSON array', '[1,2]'],
    ['null', 'null'],
    ['an unknown version', `{"v":2,"k":0,"c":1,"e":2,"g":3,"t":[],"d":1}`],
    ['a version as a string', `{"v":"1","k":0,"c":1,"e":2,"g":3,"t":[],"d":1}`],
    ['no version', `{"k":0,"c":1,"e":2,"g":3,"t":[],"d":1}`],
    ['a version 2 array of six elements', `[2,0,1,2,3,[]]`],
    ['an empty array', `[]`],
    ['a version 2 time as a string', `[2,0,"1",2,3,[],1]`],
    ['a version 2 k that is neither 0 nor 1', `[2,2,1,2,3,[],1]`],
    ['a version 2 k that is missing', `[2,null,1,2,3,[],1]`],
    ['version 2 tags that are not an array', `[2,0,1,2,3,{},1]`],
    ['a version 2 tag that is not a string', `[2,0,1,2,3,[1],1]`],
    ['an array of an unknown version', `[3,0,1,2,3,[],1]`],
    ['an array claiming version 1', `[1,0,1,2,3,[],1]`],
    ['an object claiming version 2', `{"v":2,"k":0,"c":1,"e":2,"g":3,"t":[],"d":1}`],
    ['no created time', `{"v":1,"k":0,"e":2,"g":3,"t":[],"d":1}`],
    ['no expiry', `{"v":1,"k":0,"c":1,"g":3,"t":[],"d":1}`],
    ['no grace end', `{"v":1,"k":0,"c":1,"e":2,"t":[],"d":1}`],
    ['a time as a string', `{"v":1,"k":0,"c":"1","e":2,"g":3,"t":[],"d":1}`],
    ['no tags', `{"v":1,"k":0,"c":1,"e":2,"g":3,"d":1}`],
    ['a tag that is not a string', `{"v":1,"k":0,"c":1,"e":2,"g":3,"t":[1],"d":1}`],
    ['no data', `{"v":1,"k":0,"c":1,"e":2,"g":3,"t":[]}`],
    ['no k', `{"v":1,"c":1,"e":2,"g":3,"t":[],"d":{"$t":"Date","v":"2020-01-01T00:00:00.000Z"}}`],
    ['a k that is neither 0 nor 1', `{"v":1,"k":"1","c":1,"e":2,"g":3,"t":[],"d":1}`],
    ['an unknown tag', stored('{"$t":"Function","v":"return 1"}')],
    ['a tag that names a prototype member', stored('{"$t":"constructor","v":"x"}')],
    ['a Date that is not a string', stored('{"$t":"Date","v":5}')],
    ['a Date string that does not parse', stored('{"$t":"Date","v":"yesterday-ish"}')],
    ['a BigInt that is not an integer', stored('{"$t":"BigInt","v":"1.5"}')],
    ['a BigInt as a number', stored('{"$t":"BigInt","v":15}')],
    ['a Number tag for a finite number', stored('{"$t":"Number","v":"5"}')],
    ['a Uint8Array that is not base64', stored('{"$t":"Uint8Array","v":"!!!"}')],
    ['a Map whose entries are not pairs', stored('{"$t":"Map","v":[[1]]}')],
    ['a Map without entries', stored('{"$t":"Map"}')],
    ['a Set that is not an array', stored('{"$t":"Set","v":{"a":1}}')],
    ['a malformed tag deep inside', stored('{"a":[{"b":{"$t":"Date","v":false}}]}')],
  ];

  it.each(bad)('throws a DecodeError for %s', (_name, raw) => {
    expect(() => decodeEntry(raw)).toThrow(DecodeError);
  });

  it('leaves tagged-looking data alone when k is 0', () => {
    for (const version of [1, 2] as const) {
      const value = decodeEntry(stored('{"$t":"Date","v":"2020-01-01T00:00:00.000Z"}', 0, version)).value;
      expect(value).toStrictEqual({ $t: 'Date', v: '2020-01-01T00:00:00.000Z' });
    }
  });

  it('ignores version 2 elements after the data, where a later minor addition would go', () => {
    const entry = decodeEntry(`[2,0,10,20,30,["a"],[1],"future",{"x":1}]`);
    expect(entry).toStrictEqual({ value: [1], createdAt: 10, expiresAt: 20, graceUntil: 30, tags: ['a'] });
  });

  it('ignores unknown version 1 fields and reads them in any order', () => {
    const entry = decodeEntry(`{"d":[1],"x":"future","t":["a"],"g":30,"e":20,"c":10,"k":0,"v":1}`);
    expect(entry).toStrictEqual({ value: [1], createdAt: 10, expiresAt: 20, graceUntil: 30, tags: ['a'] });
  });
});

describe('the envelope, for any value, times and tags', () => {
  it('decodes back to what encodeEntry wrote', () => {
    const times = fc.oneof(fc.nat(), fc.integer({ min: 1e12, max: 2e12 }), fc.maxSafeInteger());
    const tags = fc.uniqueArray(fc.oneof(fc.string(), fc.constantFrom('],"d":', '\\"', '"', 'ü', '\u2028')), {
      maxLength: 4,
    });
    fc.assert(
      fc.property(fc.jsonValue(), times, times, times, tags, (value, c, e, g, t) => {
        const entry = { value, createdAt: c, expiresAt: e, graceUntil: g, tags: t };
        // Exactly, -0 included (JSON alone would turn it into 0: the tagged types keep it).
        expect(decodeEntry(encodeEntry(entry))).toStrictEqual(entry);
      }),
      { numRuns: 1000 },
    );
  });
});
