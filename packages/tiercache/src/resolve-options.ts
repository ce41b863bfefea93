/** `createCache` options validated, and filled in from DEFAULTS (the types and defaults are in options.ts). */
import type { Clock } from './types.js';
import { ConfigurationError, describeValue } from './errors.js';
import { DEFAULTS } from './options.js';
import type { BreakerOptions, CacheOptions, ResolvedOptions } from './options.js';
import type { AlertOptions } from './observability/alerts.js';
import { isClusterSpec, validateClusterSpec } from './tiers/redis-cluster-options.js';
import { fraction, plainObject, positiveInteger, rejectUnknown, sentinelOptions, toMs } from './validate.js';

const TOP_LEVEL = [
  'prefix',
  'redis',
  'memory',
  'ttl',
  'grace',
  'timeouts',
  'maxValueBytes',
  'maxKeyLength',
  'writeErrors',
  'breaker',
  'batching',
  'bus',
  'lock',
  'alerts',
  'jitter',
  'clock',
  'keyGroup',
  'maxKeyGroups',
  'instrumentation',
] as const;

/** Only the shape here; the breaker validates its own options (resilience/breaker.ts) when the cache builds it. */
function resolveBreaker(input: unknown): ResolvedOptions['breaker'] {
  if (input === false) return false;
  if (input === undefined) return {};
  return plainObject('breaker', input, 'an object or false') as BreakerOptions;
}

function resolveBus(input: unknown): ResolvedOptions['bus'] {
  if (input === false) return false;
  const d = DEFAULTS.bus;
  if (input === undefined || input === true) return { ...d };
  const b = plainObject('bus', input, 'true, false or an object');
  rejectUnknown('bus', b, ['tracking', 'heartbeatMs', 'replayMax']);
  if (b['tracking'] !== undefined && typeof b['tracking'] !== 'boolean') {
    throw new ConfigurationError(`Expected \`bus.tracking\` to be a boolean, got ${describeValue(b['tracking'])}`);
  }
  return {
    tracking: (b['tracking'] as boolean | undefined) ?? d.tracking,
    heartbeatMs: b['heartbeatMs'] === undefined ? d.heartbeatMs : toMs('bus.heartbeatMs', b['heartbeatMs']),
    replayMax: b['replayMax'] === undefined ? d.replayMax : positiveInteger('bus.replayMax', b['replayMax']),
  };
}

function resolveBatching(input: unknown): ResolvedOptions['batching'] {
  if (input === false) return false;
  const d = DEFAULTS.batching;
  if (input === undefined || input === true) return { ...d };
  const b = plainObject('batching', input, 'true, false or an object');
  rejectUnknown('batching', b, ['maxKeys', 'maxBytes']);
  return {
    maxKeys: b['maxKeys'] === undefined ? d.maxKeys : positiveInteger('batching.maxKeys', b['maxKeys'], 100_000),
    maxBytes: b['maxBytes'] === undefined ? d.maxBytes : positiveInteger('batching.maxBytes', b['maxBytes']),
  };
}

function resolveLock(input: unknown): ResolvedOptions['lock'] {
  if (input === false) return false;
  const d = DEFAULTS.lock;
  if (input === undefined) return { ...d };
  const l = plainObject('lock', input, 'an object or false');
  rejectUnknown('lock', l, ['ttlMs', 'waitMs']);
  return {
    ttlMs: l['ttlMs'] === undefined ? d.ttlMs : toMs('lock.ttlMs', l['ttlMs']),
    waitMs: l['waitMs'] === undefined ? d.waitMs : toMs('lock.waitMs', l['waitMs'], { allowZero: true }),
  };
}

/** Only the shape here; the alert gate validates its own options when the cache builds it. */
function resolveAlerts(input: unknown): AlertOptions | undefined {
  if (input === undefined) return undefined;
  const a = plainObject('alerts', input);
  rejectUnknown('alerts', a, ['notify', 'cooldown', 'maxDistinctKeys']);
  return a as unknown as AlertOptions;
}

function resolvePrefix(raw: unknown): string {
  if (raw === undefined) return DEFAULTS.prefix;
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 256) {
    throw new ConfigurationError(
      `Expected \`prefix\` to be a non-empty string of at most 256 characters, got ${describeValue(raw)}`,
    );
  }
  return raw.endsWith(':') ? raw : `${raw}:`;
}

function resolveMemory(input: unknown): ResolvedOptions['memory'] {
  if (input === false) return false;
  if (input === undefined) return { ...DEFAULTS.memory };
  const m = plainObject('memory', input, 'an object or false');
  rejectUnknown('memory', m, ['maxEntries', 'maxBytes', 'maxTtl']);
  return {
    maxEntries:
      m['maxEntries'] === undefined
        ? DEFAULTS.memory.maxEntries
        : positiveInteger('memory.maxEntries', m['maxEntries']),
    maxBytes:
      m['maxBytes'] === undefined ? DEFAULTS.memory.maxBytes : positiveInteger('memory.maxBytes', m['maxBytes']),
    maxTtl: m['maxTtl'] === undefined ? DEFAULTS.memory.maxTtl : toMs('memory.maxTtl', m['maxTtl']),
  };
}

function resolveTimeouts(input: unknown): number {
  if (input === undefined) return DEFAULTS.timeouts.redisMs;
  const t = plainObject('timeouts', input);
  rejectUnknown('timeouts', t, ['redisMs']);
  return t['redisMs'] === undefined ? DEFAULTS.timeouts.redisMs : toMs('timeouts.redisMs', t['redisMs']);
}

/** A URL, ioredis options (Sentinel's checked here), a Cluster node list, or a client or tier passed through. */
function resolveRedis(input: unknown): CacheOptions['redis'] {
  const redis = isClusterSpec(input) ? validateClusterSpec(input) : input;
  if (redis !== undefined && typeof redis !== 'string' && (typeof redis !== 'object' || redis === null)) {
    throw new ConfigurationError(
      `Expected \`redis\` to be a URL, ioredis options or an ioredis client, got ${describeValue(redis)}`,
    );
  }
  if (typeof redis === 'string' && !/^rediss?:\/\//.test(redis)) {
    throw new ConfigurationError(`Expected \`redis\` to be a redis:// or rediss:// URL, got ${describeValue(redis)}`);
  }
  if (typeof redis === 'object') sentinelOptions(redis);
  return redis as CacheOptions['redis'];
}

/** Validates `createCache` options and fills in DEFAULTS. Throws `ConfigurationError` with the first problem. */
export function validateOptions(input: unknown = {}): ResolvedOptions {
  const options = plainObject('options', input);
  rejectUnknown('', options, TOP_LEVEL);

  // `=== undefined`, not `??`: a null here is a mistake to report, as it is for every other option.
  const writeErrors = options['writeErrors'] === undefined ? DEFAULTS.writeErrors : options['writeErrors'];
  if (writeErrors !== 'report' && writeErrors !== 'throw') {
    throw new ConfigurationError(
      `Expected \`writeErrors\` to be 'report' or 'throw', got ${describeValue(writeErrors)}`,
    );
  }

  const clock = options['clock'];
  if (
    clock !== undefined &&
    (typeof clock !== 'object' || clock === null || typeof (clock as Clock).now !== 'function')
  ) {
    throw new ConfigurationError(`Expected \`clock\` to be an object with a now() method, got ${describeValue(clock)}`);
  }

  return {
    prefix: resolvePrefix(options['prefix']),
    redis: resolveRedis(options['redis']),
    memory: resolveMemory(options['memory']),
    ttl: options['ttl'] === undefined ? DEFAULTS.ttl : toMs('ttl', options['ttl']),
    grace: options['grace'] === undefined ? DEFAULTS.grace : toMs('grace', options['grace'], { allowZero: true }),
    redisTimeoutMs: resolveTimeouts(options['timeouts']),
    maxValueBytes:
      options['maxValueBytes'] === undefined
        ? DEFAULTS.maxValueBytes
        : positiveInteger('maxValueBytes', options['maxValueBytes']),
    maxKeyLength:
      options['maxKeyLength'] === undefined
        ? DEFAULTS.maxKeyLength
        : positiveInteger('maxKeyLength', options['maxKeyLength']),
    writeErrors,
    breaker: resolveBreaker(options['breaker']),
    batching: resolveBatching(options['batching']),
    bus: resolveBus(options['bus']),
    lock: resolveLock(options['lock']),
    alerts: resolveAlerts(options['alerts']),
    jitter: options['jitter'] === undefined ? DEFAULTS.jitter : fraction('jitter', options['jitter']),
    clock: clock as Clock | undefined,
    ...resolveInstrumentation(options),
  };
}

function resolveInstrumentation(
  options: Record<string, unknown>,
): Pick<ResolvedOptions, 'keyGroup' | 'maxKeyGroups' | 'instrumentation'> {
  const keyGroup = options['keyGroup'];
  if (keyGroup !== undefined && typeof keyGroup !== 'function') {
    throw new ConfigurationError(`Expected \`keyGroup\` to be a function, got ${describeValue(keyGroup)}`);
  }
  const instrumentation = options['instrumentation'];
  if (instrumentation !== undefined && typeof instrumentation !== 'boolean') {
    throw new ConfigurationError(`Expected \`instrumentation\` to be a boolean, got ${describeValue(instrumentation)}`);
  }
  return {
    keyGroup: keyGroup as ((key: string) => string) | undefined,
    maxKeyGroups:
      options['maxKeyGroups'] === undefined
        ? DEFAULTS.maxKeyGroups
        : positiveInteger('maxKeyGroups', options['maxKeyGroups'], 1_000),
    instrumentation: instrumentation !== false,
  };
}
