import { describe, expect, it } from 'vitest';
import { ConfigurationError, ErrorCode } from '../../src/errors.js';
import { createCache, parseDuration } from '../../src/index.js';
import { DEFAULTS, toMs } from '../../src/options.js';
import { validateOptions } from '../../src/resolve-options.js';
import { resolveGetOrSetOptions, resolveSetOptions } from '../../src/call-options.js';
import { DAY, HOUR, MINUTE, SECOND } from './fake-clock.js';

const DURATION_HINT = "(milliseconds or a string like '250ms', '5m', '1h')";

/** The message validateOptions throws for `input`, failing the test if it does not throw a ConfigurationError. */
function messageOf(input: unknown): string {
  try {
    validateOptions(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe(ErrorCode.Configuration);
    return (error as Error).message;
  }
  throw new Error(`validateOptions accepted ${String(input)}`);
}

describe('the message of a rejected option', () => {
  it('names the option, the expectation and the value with its type', () => {
    expect(messageOf({ ttl: -5 })).toBe(
      `Expected \`ttl\` to be a positive duration ${DURATION_HINT}, got \`-5\` (number)`,
    );
  });

  it.each<[string, unknown, string]>([
    ['zero', 0, '`0` (number)'],
    ['NaN', NaN, '`NaN` (number)'],
    ['Infinity', Infinity, '`Infinity` (number)'],
    ['a string that is not a duration', '5 parsecs', '`"5 parsecs"` (string)'],
    ['a negative string', '-5m', '`"-5m"` (string)'],
    ['an empty string', '', '`""` (string)'],
    ['a boolean', true, '`true` (boolean)'],
    ['null', null, '`null`'],
    ['an object', { ms: 5 }, '(object)'],
    ['an array', [5], '(array)'],
    ['a fraction that rounds to zero', 0.4, '`0.4` (number)'],
    ['more than ten years', 11 * 365 * DAY, `\`${11 * 365 * DAY}\` (number)`],
  ])('rejects %s as a ttl, showing it as %s', (_name, value, shown) => {
    expect(messageOf({ ttl: value })).toBe(`Expected \`ttl\` to be a positive duration ${DURATION_HINT}, got ${shown}`);
  });

  it('says non-negative for grace, where zero is allowed', () => {
    expect(validateOptions({ grace: 0 }).grace).toBe(0);
    expect(messageOf({ grace: -1 })).toBe(
      `Expected \`grace\` to be a non-negative duration ${DURATION_HINT}, got \`-1\` (number)`,
    );
  });

  it('uses the dotted path for nested options', () => {
    expect(messageOf({ memory: { maxTtl: 0 } })).toBe(
      `Expected \`memory.maxTtl\` to be a positive duration ${DURATION_HINT}, got \`0\` (number)`,
    );
    expect(messageOf({ timeouts: { redisMs: 'soon' } })).toBe(
      `Expected \`timeouts.redisMs\` to be a positive duration ${DURATION_HINT}, got \`"soon"\` (string)`,
    );
    expect(messageOf({ memory: { maxEntries: 1.5 } })).toBe(
      'Expected `memory.maxEntries` to be a positive integer, got `1.5` (number)',
    );
  });
});

describe('parseDuration, the exported duration parser', () => {
  it('parses what the options accept, in whole milliseconds', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5h')).toBe(1.5 * HOUR);
    expect(parseDuration(1.6)).toBe(2);
    expect(parseDuration(0, { allowZero: true })).toBe(0);
  });

  it('throws a ConfigurationError naming the setting for anything else, and for 0 unless allowed', () => {
    expect(() => parseDuration('soon', { name: 'WORKER_INTERVAL' })).toThrow(ConfigurationError);
    expect(() => parseDuration('soon', { name: 'WORKER_INTERVAL' })).toThrow(/`WORKER_INTERVAL`.*"soon"/);
    expect(() => parseDuration(0)).toThrow(/positive duration/);
  });
});

describe('durations', () => {
  it.each<[unknown, number]>([
    [250, 250],
    [1, 1],
    [1.6, 2],
    ['250ms', 250],
    ['5s', 5 * SECOND],
    ['5m', 5 * MINUTE],
    ['1h', HOUR],
    ['1.5h', 1.5 * HOUR],
    ['30d', 30 * DAY],
    [' 5m ', 5 * MINUTE],
    ['2 hours', 2 * HOUR],
    ['1y', 365.25 * DAY],
    ['5', 5],
  ])('reads %j as %d ms', (input, ms) => {
    expect(toMs('ttl', input)).toBe(ms);
    expect(validateOptions({ ttl: input }).ttl).toBe(ms);
  });

  it('accepts ten years and no more', () => {
    expect(toMs('ttl', 10 * 365 * DAY)).toBe(10 * 365 * DAY);
    expect(() => toMs('ttl', 10 * 365 * DAY + 1)).toThrow(ConfigurationError);
  });

  it('is validated the same way per call', () => {
    const defaults = validateOptions({});
    expect(resolveSetOptions(defaults, { ttl: '2m', grace: '10s' })).toStrictEqual({
      ttl: 2 * MINUTE,
      grace: 10 * SECOND,
      tags: [],
    });
    expect(() => resolveSetOptions(defaults, { ttl: -5 })).toThrow(
      `Expected \`ttl\` to be a positive duration ${DURATION_HINT}, got \`-5\` (number)`,
    );
    expect(() => resolveSetOptions(defaults, { grace: 'x' })).toThrow(/^Expected `grace` to be a non-negative/);
  });
});

describe('each option', () => {
  it('rejects an options argument that is not an object', () => {
    expect(messageOf(null)).toBe('Expected `options` to be an object, got `null`');
    expect(messageOf('redis://x')).toBe('Expected `options` to be an object, got `"redis://x"` (string)');
    expect(messageOf([])).toBe('Expected `options` to be an object, got (array)');
  });

  it('rejects unknown option names and lists the known ones', () => {
    const message = messageOf({ ttls: 5 });
    expect(message).toMatch(/^Unknown option `ttls`; expected one of `prefix`, /);
    const everyOption = ['prefix', 'redis', 'memory', 'ttl', 'grace', 'timeouts', 'maxValueBytes', 'maxKeyLength'];
    everyOption.push('writeErrors', 'breaker', 'lock', 'bus', 'alerts', 'jitter', 'clock');
    for (const known of everyOption) {
      expect(message).toContain(`\`${known}\``);
    }
    expect(messageOf({ memory: { max: 5 } })).toBe(
      'Unknown option `memory.max`; expected one of `maxEntries`, `maxBytes`, `maxTtl`',
    );
    expect(messageOf({ timeouts: { redis: 5 } })).toBe('Unknown option `timeouts.redis`; expected one of `redisMs`');
  });

  it('requires prefix to be a non-empty string of at most 256 characters', () => {
    for (const bad of ['', 'p'.repeat(257), 5, null]) {
      expect(messageOf({ prefix: bad })).toMatch(
        /^Expected `prefix` to be a non-empty string of at most 256 characters, got /,
      );
    }
    expect(validateOptions({ prefix: 'p'.repeat(256) }).prefix).toBe(`${'p'.repeat(256)}:`);
  });

  it('ends the prefix with exactly one colon', () => {
    expect(validateOptions({ prefix: 'app:user' }).prefix).toBe('app:user:');
    expect(validateOptions({ prefix: 'app:user:' }).prefix).toBe('app:user:');
    expect(validateOptions({ prefix: 'app' }).prefix).toBe('app:');
    expect(createCache({ prefix: 'app:user' }).prefix).toBe('app:user:');
  });

  it('requires redis to be a redis:// or rediss:// URL, options or a client', () => {
    expect(messageOf({ redis: 'http://127.0.0.1:6379' })).toBe(
      'Expected `redis` to be a redis:// or rediss:// URL, got `"http://127.0.0.1:6379"` (string)',
    );
    expect(messageOf({ redis: 6379 })).toBe(
      'Expected `redis` to be a URL, ioredis options or an ioredis client, got `6379` (number)',
    );
    expect(messageOf({ redis: null })).toMatch(/^Expected `redis` to be a URL/);
    // Validation only: nothing connects.
    expect(validateOptions({ redis: 'rediss://cache.internal:6380/2' }).redis).toBe('rediss://cache.internal:6380/2');
    expect(validateOptions({}).redis).toBeUndefined();
  });

  it('checks Sentinel options before ioredis sees them: a non-empty list of endpoints and the master name', () => {
    const sentinels = [
      { host: '127.0.0.1', port: 26379 },
      { host: '127.0.0.1', port: 26380 },
    ];
    expect(validateOptions({ redis: { sentinels, name: 'mymaster' } }).redis).toEqual({ sentinels, name: 'mymaster' });
    expect(messageOf({ redis: { sentinels } })).toBe(
      "Expected `redis.name` to be the name of the master the sentinels monitor (a non-empty string, like 'mymaster'), got `undefined` (undefined)",
    );
    expect(messageOf({ redis: { sentinels, name: '' } })).toMatch(
      /^Expected `redis.name` to be the name of the master/,
    );
    expect(messageOf({ redis: { sentinels: [], name: 'mymaster' } })).toBe(
      'Expected `redis.sentinels` to be a non-empty array of { host, port? } (port 1-65535), got `[]`',
    );
    expect(messageOf({ redis: { sentinels: [{ host: '127.0.0.1', port: 0 }], name: 'm' } })).toBe(
      'Expected `redis.sentinels` to be a non-empty array of { host, port? } (port 1-65535), got `[{"host":"127.0.0.1","port":0}]`',
    );
    expect(messageOf({ redis: { sentinels: '127.0.0.1:26379', name: 'm' } })).toMatch(
      /^Expected `redis.sentinels` to be a non-empty array .*, got `"127.0.0.1:26379"` \(string\)$/,
    );
    // The port may be left to ioredis' default (26379).
    expect(validateOptions({ redis: { sentinels: [{ host: 'sentinel.internal' }], name: 'm' } }).redis).toBeDefined();
    // Plain ioredis options without Sentinel are ioredis' business, as before.
    expect(validateOptions({ redis: { host: '127.0.0.1', port: 6380 } }).redis).toEqual({
      host: '127.0.0.1',
      port: 6380,
    });
  });

  it('turns the memory tier off with memory: false', () => {
    expect(validateOptions({ memory: false }).memory).toBe(false);
    expect(createCache({ memory: false }).stats().memory).toBeNull();
  });

  it('requires memory to be an object or false', () => {
    expect(messageOf({ memory: true })).toBe('Expected `memory` to be an object or false, got `true` (boolean)');
    expect(messageOf({ memory: null })).toBe('Expected `memory` to be an object or false, got `null`');
  });

  it('refuses an unbounded or empty memory tier', () => {
    for (const bad of [0, -1, 1.5, Infinity, NaN, '100', 2 ** 53]) {
      expect(messageOf({ memory: { maxEntries: bad } })).toMatch(
        /^Expected `memory\.maxEntries` to be a positive integer, got /,
      );
      expect(messageOf({ memory: { maxBytes: bad } })).toMatch(
        /^Expected `memory\.maxBytes` to be a positive integer, got /,
      );
    }
  });

  it('fills the memory bounds that are left out from DEFAULTS', () => {
    expect(validateOptions({ memory: { maxEntries: 5 } }).memory).toStrictEqual({
      maxEntries: 5,
      maxBytes: DEFAULTS.memory.maxBytes,
      maxTtl: DEFAULTS.memory.maxTtl,
    });
    expect(validateOptions({ memory: { maxTtl: '30d' } }).memory).toMatchObject({ maxTtl: 30 * DAY });
  });

  it('names false among the accepted forms when a breaker is not an object', () => {
    expect(messageOf({ breaker: 5 })).toBe('Expected `breaker` to be an object or false, got `5` (number)');
    expect(validateOptions({ breaker: false }).breaker).toBe(false);
  });

  it('requires timeouts to be an object with a positive redisMs', () => {
    expect(messageOf({ timeouts: 100 })).toBe('Expected `timeouts` to be an object, got `100` (number)');
    expect(validateOptions({ timeouts: { redisMs: '250ms' } }).redisTimeoutMs).toBe(250);
    expect(validateOptions({ timeouts: {} }).redisTimeoutMs).toBe(DEFAULTS.timeouts.redisMs);
  });

  it('requires maxValueBytes and maxKeyLength to be positive integers', () => {
    expect(messageOf({ maxValueBytes: 0 })).toBe('Expected `maxValueBytes` to be a positive integer, got `0` (number)');
    expect(messageOf({ maxKeyLength: '64' })).toBe(
      'Expected `maxKeyLength` to be a positive integer, got `"64"` (string)',
    );
    expect(validateOptions({ maxValueBytes: 10, maxKeyLength: 3 })).toMatchObject({
      maxValueBytes: 10,
      maxKeyLength: 3,
    });
  });

  it("requires writeErrors to be 'report' or 'throw'", () => {
    expect(messageOf({ writeErrors: 'ignore' })).toBe(
      "Expected `writeErrors` to be 'report' or 'throw', got `\"ignore\"` (string)",
    );
    expect(validateOptions({ writeErrors: 'throw' }).writeErrors).toBe('throw');
  });

  it('rejects a null writeErrors instead of reading it as the default', () => {
    expect(messageOf({ writeErrors: null })).toBe("Expected `writeErrors` to be 'report' or 'throw', got `null`");
  });

  it('requires lock to be false or an object with a positive ttlMs and a non-negative waitMs', () => {
    expect(validateOptions({ lock: false }).lock).toBe(false);
    expect(validateOptions({}).lock).toStrictEqual(DEFAULTS.lock);
    expect(validateOptions({ lock: { ttlMs: '30s', waitMs: 0 } }).lock).toStrictEqual({
      ttlMs: 30 * SECOND,
      waitMs: 0,
    });
    expect(messageOf({ lock: { ttlMs: 0 } })).toBe(
      `Expected \`lock.ttlMs\` to be a positive duration ${DURATION_HINT}, got \`0\` (number)`,
    );
    expect(messageOf({ lock: { waitMs: -1 } })).toBe(
      `Expected \`lock.waitMs\` to be a non-negative duration ${DURATION_HINT}, got \`-1\` (number)`,
    );
    expect(messageOf({ lock: { ttl: 5 } })).toBe('Unknown option `lock.ttl`; expected one of `ttlMs`, `waitMs`');
    expect(messageOf({ lock: true })).toBe('Expected `lock` to be an object or false, got `true` (boolean)');
  });

  it('takes bus as true, false or an object of tracking, heartbeatMs and replayMax', () => {
    expect(validateOptions({}).bus).toStrictEqual(DEFAULTS.bus);
    expect(validateOptions({ bus: true }).bus).toStrictEqual(DEFAULTS.bus);
    expect(validateOptions({ bus: false }).bus).toBe(false);
    expect(validateOptions({ bus: { tracking: false, heartbeatMs: '2s', replayMax: 10 } }).bus).toStrictEqual({
      tracking: false,
      heartbeatMs: 2 * SECOND,
      replayMax: 10,
    });
    expect(messageOf({ bus: { tracking: 'yes' } })).toBe(
      'Expected `bus.tracking` to be a boolean, got `"yes"` (string)',
    );
    expect(messageOf({ bus: { tracking: null } })).toBe('Expected `bus.tracking` to be a boolean, got `null`');
    expect(messageOf({ bus: { heartbeatMs: 0 } })).toBe(
      `Expected \`bus.heartbeatMs\` to be a positive duration ${DURATION_HINT}, got \`0\` (number)`,
    );
    expect(messageOf({ bus: { replayMax: 0 } })).toBe(
      'Expected `bus.replayMax` to be a positive integer, got `0` (number)',
    );
    expect(messageOf({ bus: { channel: 'x' } })).toBe(
      'Unknown option `bus.channel`; expected one of `tracking`, `heartbeatMs`, `replayMax`',
    );
    expect(messageOf({ bus: 'redis' })).toBe('Expected `bus` to be true, false or an object, got `"redis"` (string)');
  });

  it('requires jitter to be a fraction from 0 to 1', () => {
    expect(validateOptions({}).jitter).toBe(DEFAULTS.jitter);
    expect(validateOptions({ jitter: 0.1 }).jitter).toBe(0.1);
    expect(validateOptions({ jitter: 1 }).jitter).toBe(1);
    for (const [bad, shown] of [
      [-0.1, '`-0.1` (number)'],
      [1.5, '`1.5` (number)'],
      [NaN, '`NaN` (number)'],
      ['0.1', '`"0.1"` (string)'],
    ] as const) {
      expect(messageOf({ jitter: bad })).toBe(`Expected \`jitter\` to be a fraction from 0 to 1, got ${shown}`);
    }
  });

  it('requires clock to be an object with a now() method', () => {
    expect(messageOf({ clock: {} })).toBe('Expected `clock` to be an object with a now() method, got (object)');
    expect(messageOf({ clock: Date.now })).toBe('Expected `clock` to be an object with a now() method, got (function)');
    const clock = { now: () => 5 };
    expect(validateOptions({ clock }).clock).toBe(clock);
  });

  it('makes createCache throw synchronously, before anything is created', () => {
    expect(() => createCache({ ttl: -5 })).toThrow(ConfigurationError);
    expect(() => createCache({ ttl: -5 })).toThrow(
      `Expected \`ttl\` to be a positive duration ${DURATION_HINT}, got \`-5\` (number)`,
    );
  });
});

describe('per-call tags', () => {
  const defaults = validateOptions({});

  it('accepts up to the maximum number of non-empty strings', () => {
    const tags = Array.from({ length: DEFAULTS.maxTags }, (_, i) => `t${i}`);
    expect(resolveSetOptions(defaults, { tags }).tags).toStrictEqual(tags);
  });

  it.each<[string, unknown]>([
    ['too many', Array.from({ length: DEFAULTS.maxTags + 1 }, (_, i) => `t${i}`)],
    ['an empty tag', ['ok', '']],
    ['a tag over 256 characters', ['x'.repeat(257)]],
    ['a tag that is not a string', [1]],
    ['a string instead of an array', 'user'],
  ])('rejects %s', (_name, tags) => {
    expect(() => resolveSetOptions(defaults, { tags: tags as string[] })).toThrow(
      /^Expected `tags` to be an array of at most 64 non-empty strings/,
    );
  });
});

describe('per-call getOrSet options', () => {
  const defaults = validateOptions({ ttl: '1m', grace: '10s' });

  it('are the cache-wide ttl and grace, no timeouts, the default graceBackoff and no refresh-ahead when omitted', () => {
    const expected = {
      ttl: MINUTE,
      grace: 10 * SECOND,
      tags: [],
      softTimeout: undefined,
      hardTimeout: undefined,
      graceBackoff: DEFAULTS.graceBackoff,
      refreshAhead: undefined,
      negativeTtl: undefined,
      skipMemory: false,
      skipRedis: false,
    };
    expect(resolveGetOrSetOptions(defaults, undefined)).toStrictEqual(expected);
    expect(resolveGetOrSetOptions(defaults, {})).toStrictEqual(expected);
  });

  it('read durations as numbers or strings and refreshAhead as a fraction, 0 meaning off', () => {
    expect(
      resolveGetOrSetOptions(defaults, {
        ttl: '5m',
        softTimeout: '50ms',
        hardTimeout: 2 * SECOND,
        graceBackoff: 0,
        refreshAhead: 0.8,
        tags: ['a'],
        negativeTtl: '2s',
        skipMemory: true,
      }),
    ).toStrictEqual({
      ttl: 5 * MINUTE,
      grace: 10 * SECOND,
      tags: ['a'],
      softTimeout: 50,
      hardTimeout: 2 * SECOND,
      graceBackoff: 0,
      refreshAhead: 0.8,
      negativeTtl: 2 * SECOND,
      skipMemory: true,
      skipRedis: false,
    });
    expect(resolveGetOrSetOptions(defaults, { refreshAhead: 0 }).refreshAhead).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['softTimeout', { softTimeout: 0 }, `a positive duration ${DURATION_HINT}, got \`0\` (number)`],
    ['hardTimeout', { hardTimeout: 'later' }, `a positive duration ${DURATION_HINT}, got \`"later"\` (string)`],
    ['graceBackoff', { graceBackoff: -1 }, `a non-negative duration ${DURATION_HINT}, got \`-1\` (number)`],
    ['refreshAhead', { refreshAhead: 2 }, 'a fraction from 0 to 1, got `2` (number)'],
    ['negativeTtl', { negativeTtl: -5 }, `a positive duration ${DURATION_HINT}, got \`-5\` (number)`],
    ['skipRedis', { skipRedis: 'yes' }, 'a boolean, got `"yes"` (string)'],
  ])('reject a bad %s with the same message shape', (name, options, rest) => {
    expect(() => resolveGetOrSetOptions(defaults, options)).toThrow(ConfigurationError);
    expect(() => resolveGetOrSetOptions(defaults, options)).toThrow(`Expected \`${name}\` to be ${rest}`);
  });

  it('make getOrSet reject, not throw, and run no loader', async () => {
    const cache = createCache({ clock: { now: () => 0 } });
    let calls = 0;
    const loader = () => ++calls;
    let promise: Promise<unknown> | undefined;
    expect(() => {
      promise = cache.getOrSet('k', loader, { hardTimeout: -5 });
    }).not.toThrow();
    await expect(promise).rejects.toThrow(
      `Expected \`hardTimeout\` to be a positive duration ${DURATION_HINT}, got \`-5\` (number)`,
    );
    expect(calls).toBe(0);
    await cache.close();
  });
});

describe('DEFAULTS', () => {
  it('are what validateOptions returns when nothing is given', () => {
    const expected = {
      prefix: DEFAULTS.prefix,
      redis: undefined,
      memory: DEFAULTS.memory,
      ttl: DEFAULTS.ttl,
      grace: DEFAULTS.grace,
      redisTimeoutMs: DEFAULTS.timeouts.redisMs,
      maxValueBytes: DEFAULTS.maxValueBytes,
      maxKeyLength: DEFAULTS.maxKeyLength,
      writeErrors: DEFAULTS.writeErrors,
      clock: undefined,
    };
    expect(validateOptions({})).toMatchObject(expected);
    expect(validateOptions()).toStrictEqual(validateOptions({}));
    expect(validateOptions({ ttl: undefined, memory: undefined })).toStrictEqual(validateOptions({}));
  });

  it('are bounded and match their documented units', () => {
    expect(DEFAULTS).toMatchObject({
      prefix: 'tiercache:',
      ttl: 5 * MINUTE,
      grace: 0,
      memory: { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxTtl: HOUR },
      timeouts: { redisMs: 100 },
      maxValueBytes: 1024 * 1024,
      maxKeyLength: 1024,
      writeErrors: 'report',
    });
  });

  it('give a per-call option set the cache-wide ttl and grace and no tags', () => {
    const defaults = validateOptions({ ttl: '1m', grace: '30s' });
    expect(resolveSetOptions(defaults, undefined)).toStrictEqual({ ttl: MINUTE, grace: 30 * SECOND, tags: [] });
    expect(resolveSetOptions(defaults, {})).toStrictEqual({ ttl: MINUTE, grace: 30 * SECOND, tags: [] });
  });
});
