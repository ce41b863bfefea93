import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  InvalidKeyError,
  createCache,
  defineKey,
  defineKeys,
  encodeKeyPart,
  listKeys,
  typed,
} from '../../src/index.js';
import { keyBuilder } from '../../src/keys/template.js';

describe('key templates', () => {
  it('fills positional placeholders from the arguments', () => {
    expect(keyBuilder('profile:{0}:{1}')('ada', 7)).toBe('profile:ada:7');
  });

  it('fills named placeholders from the first object argument', () => {
    expect(keyBuilder('user:{id}')({ id: 42 })).toBe('user:42');
    expect(keyBuilder('user:{id}')('tenant', { id: 42 })).toBe('user:42');
  });

  it('follows nested paths', () => {
    expect(keyBuilder('org:{user.org.id}:{user.id}')({ user: { id: 1, org: { id: 'acme' } } })).toBe('org:acme:1');
    expect(keyBuilder('order:{0.id}')({ id: 9 })).toBe('order:9');
  });

  it('uses a key function as it is', () => {
    expect(keyBuilder((a: number, b: number) => `sum:${a + b}`)(1, 2)).toBe('sum:3');
  });

  it('refuses a missing or undefined part instead of writing "undefined"', () => {
    expect(() => keyBuilder('user:{id}')({})).toThrow(InvalidKeyError);
    expect(() => keyBuilder('user:{id}')({ id: undefined })).toThrow(
      'Expected `id` of the key `user:{id}` to be a non-empty string, a finite number, a bigint or a boolean, got `undefined` (undefined)',
    );
    expect(() => keyBuilder('profile:{1}')('only one')).toThrow(InvalidKeyError);
    expect(() => keyBuilder('org:{user.org.id}')({ user: {} })).toThrow(/`user\.org\.id`/);
    expect(() => keyBuilder('user:{id}')({ id: null })).toThrow('got `null`');
    expect(() => keyBuilder('user:{id}')({ id: { nested: 1 } })).toThrow('got (object)');
    expect(() => keyBuilder('user:{id}')({ id: Number.NaN })).toThrow('got `NaN` (number)');
    expect(() => keyBuilder('user:{id}')({ id: '' })).toThrow(InvalidKeyError);
  });

  it('refuses a key function that returns no key', () => {
    expect(() => keyBuilder(() => '')()).toThrow(InvalidKeyError);
  });

  it('reads only own properties, so a prototype property cannot fill a part', () => {
    expect(() => keyBuilder('x:{toString}')({})).toThrow(InvalidKeyError);
  });

  it('refuses malformed templates when they are defined', () => {
    expect(() => keyBuilder('user:{}')).toThrow(ConfigurationError);
    expect(() => keyBuilder('user:{id')).toThrow(ConfigurationError);
    expect(() => keyBuilder('user:{a b}')).toThrow(ConfigurationError);
    expect(() => keyBuilder('user:{0}:{id}')).toThrow('all positions or all names');
  });

  it('refuses placeholders without a separator between them, which would let two argument lists share a key', () => {
    expect(() => keyBuilder('{a}{b}')).toThrow(ConfigurationError);
    expect(() => keyBuilder('{a}-{b}')).toThrow(ConfigurationError);
    expect(keyBuilder('{a}/{b}')({ a: 'x', b: 'y' })).toBe('x/y');
  });
});

describe('key part encoding', () => {
  it('percent-encodes every character that could widen a pattern or join two parts', () => {
    expect(encodeKeyPart('a:b*c{d}e%f g?h[i]j')).toBe('a%3Ab%2Ac%7Bd%7De%25f%20g%3Fh%5Bi%5Dj');
    expect(encodeKeyPart("!'()@\t\n")).toBe('%21%27%28%29%40%09%0A');
    expect(keyBuilder('user:{id}')({ id: 'x:*' })).toBe('user:x%3A%2A');
  });

  it('keeps letters, digits and -_.~ readable', () => {
    expect(encodeKeyPart('Ada-Lovelace_1815.v~2')).toBe('Ada-Lovelace_1815.v~2');
  });

  it('writes numbers, bigints and booleans as their string form', () => {
    expect(keyBuilder('{0}:{1}:{2}')(42, 10n ** 20n, true)).toBe('42:100000000000000000000:true');
  });

  const part = fc.oneof(
    fc.string({ minLength: 1, unit: 'binary' }),
    fc.string({ minLength: 1, unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((u) => String.fromCharCode(u)) }),
    fc.constantFrom(':', '*', '%', '{', '}', ' ', '%3A', '::', '*:*', '}{', '%25'),
    fc.integer().map(String),
  );

  it('maps distinct argument tuples to distinct keys (positional)', () => {
    const build = keyBuilder('k:{0}:{1}|{2}');
    fc.assert(
      fc.property(fc.tuple(part, part, part), fc.tuple(part, part, part), (a, b) => {
        fc.pre(a.some((value, i) => value !== b[i]));
        expect(build(...a)).not.toBe(build(...b));
      }),
      { numRuns: 2_000 },
    );
  });

  it('maps distinct named arguments to distinct keys and never emits a glob character', () => {
    const build = keyBuilder('user:{id}:{org.name}');
    fc.assert(
      fc.property(part, part, part, part, (id1, org1, id2, org2) => {
        fc.pre(id1 !== id2 || org1 !== org2);
        const one = build({ id: id1, org: { name: org1 } });
        expect(one).not.toBe(build({ id: id2, org: { name: org2 } }));
        expect(one.slice('user:'.length)).toMatch(/^[A-Za-z0-9\-_.~%]+:[A-Za-z0-9\-_.~%]+$/);
      }),
      { numRuns: 2_000 },
    );
  });

  it('encodes a lone surrogate distinctly instead of throwing', () => {
    expect(encodeKeyPart('a\uD800b')).toBe('a%uD800b');
    expect(encodeKeyPart('a\uD800b')).not.toBe(encodeKeyPart('a\uDC00b'));
  });

  it('decodes back to the original part', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (value) => decodeURIComponent(encodeKeyPart(value)) === value),
    );
  });
});

interface Product {
  readonly id: number;
  readonly name: string;
}

describe('defineKey', () => {
  it('makes keys from a template and adds the version as a suffix', () => {
    const v1 = defineKey<Product>('product:{id}');
    const v2 = defineKey<Product>('product:{id}', { version: 2 });
    expect(v1({ id: 42 })).toBe('product:42');
    expect(v2({ id: 42 })).toBe('product:42@v2');
    expect(v2({ id: '42@v2' })).toBe('product:42%40v2@v2');
  });

  it('retires old entries when the version is bumped, without a flush', async () => {
    const cache = typed(createCache({ memory: { maxEntries: 100 } }));
    const v1 = defineKey<Product>('product:{id}');
    const v2 = defineKey<Product>('product:{id}', { version: 2 });
    await cache.set(v1({ id: 1 }), { id: 1, name: 'old shape' });
    let loads = 0;
    const value = await cache.getOrSet(v2({ id: 1 }), () => ({ id: 1, name: `new shape ${++loads}` }));
    expect(value.name).toBe('new shape 1');
    expect(await cache.get(v1({ id: 1 }))).toEqual({ id: 1, name: 'old shape' });
    await cache.close();
  });

  it('carries its TTL, grace and tags into the options of a read', async () => {
    const ProductKey = defineKey<Product, [{ id: number }]>('product:{id}', {
      ttl: '1h',
      grace: '1d',
      tags: (p) => ['products', `product:${p.id}`],
    });
    expect(ProductKey.options({ id: 7 })).toEqual({ ttl: '1h', grace: '1d', tags: ['products', 'product:7'] });
    const cache = createCache({ memory: { maxEntries: 100 } });
    await ProductKey.getOrSet(cache, [{ id: 7 }], () => ({ id: 7, name: 'lamp' }));
    await cache.invalidateTags(['product:7']);
    expect(await cache.get(ProductKey({ id: 7 }))).toBeUndefined();
    await cache.close();
  });

  it('refuses a version that is not a positive integer', () => {
    expect(() => defineKey('k:{0}', { version: 0 })).toThrow(
      'Expected `version` to be a positive integer, got `0` (number)',
    );
    expect(() => defineKey('k:{0}', { version: 1.5 })).toThrow(ConfigurationError);
  });

  it('refuses a TTL, grace or tags the cache would refuse, when the key is defined', () => {
    expect(() => defineKey('product:{id}', { ttl: -5 })).toThrow(
      "Expected `ttl` of the key `product:{id}` to be a positive duration (milliseconds or a string like '250ms', '5m', '1h'), got `-5` (number)",
    );
    expect(() => defineKey('product:{id}', { ttl: 'soon' })).toThrow(ConfigurationError);
    expect(() => defineKey('product:{id}', { ttl: '0s' })).toThrow(ConfigurationError);
    expect(() => defineKey('product:{id}', { grace: '0' })).not.toThrow();
    expect(() => defineKey('product:{id}', { tags: [''] })).toThrow('array of non-empty strings');
    expect(() => defineKey('product:{id}', { ttl: '90s', grace: '1d', tags: ['p'] })).not.toThrow();
  });

  it('appends the version to a key function too', () => {
    const key = defineKey<number, [a: number]>((a) => `square:${a}`, { version: 3 });
    expect(key(4)).toBe('square:4@v3');
  });
});

describe('defineKeys', () => {
  const Keys = defineKeys({
    product: defineKey<Product>('product:{id}', { ttl: '1h', version: 2, description: 'one product' }),
    profile: defineKey<string, [id: string]>('profile:{0}', { tags: ['profiles'] }),
    total: defineKey<number, [a: number]>((a) => `total:${a}`, { tags: () => ['totals'] }),
  });

  it('keeps each definition callable under its name', () => {
    expect(Keys.product({ id: 1 })).toBe('product:1@v2');
    expect(Keys.profile('ada')).toBe('profile:ada');
  });

  it('lists every key for a dashboard', () => {
    expect(listKeys(Keys)).toEqual([
      {
        name: 'product',
        template: 'product:{id}',
        version: 2,
        ttl: '1h',
        grace: undefined,
        tags: [],
        description: 'one product',
      },
      {
        name: 'profile',
        template: 'profile:{0}',
        version: 1,
        ttl: undefined,
        grace: undefined,
        tags: ['profiles'],
        description: undefined,
      },
      {
        name: 'total',
        template: '(function)',
        version: 1,
        ttl: undefined,
        grace: undefined,
        tags: '(function)',
        description: undefined,
      },
    ]);
  });

  it('refuses two definitions that would write the same keys', () => {
    expect(() => defineKeys({ a: defineKey('product:{id}'), b: defineKey('product:{sku}') })).toThrow(
      'Expected every key to be distinct, but `a` and `b` both write `product:{sku}` (version 1)',
    );
    expect(() =>
      defineKeys({ a: defineKey('product:{id}'), b: defineKey('product:{id}', { version: 2 }) }),
    ).not.toThrow();
  });

  it('refuses something that is not a defined key', () => {
    expect(() => defineKeys({ a: (() => 'x') as never })).toThrow(ConfigurationError);
  });
});
