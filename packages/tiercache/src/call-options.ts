/**
 * Per-call options over the cache's defaults: `set`, `mset`, `getOrSet` and the tier switches. Called on every
 * operation, so the common case (no options) resolves to one object made once per cache.
 */
import { ConfigurationError, describeValue } from './errors.js';
import { DEFAULTS } from './options.js';
import type { GetOrSetOptions, ResolvedOptions, SetOptions, TierOptions } from './options.js';
import { flag, fraction, toMs } from './validate.js';

export interface ResolvedTierOptions {
  readonly skipMemory: boolean;
  readonly skipRedis: boolean;
}

const BOTH_TIERS: ResolvedTierOptions = Object.freeze({ skipMemory: false, skipRedis: false });

/** The tier switches of a call, validated. */
export function resolveTierOptions(options: TierOptions | undefined): ResolvedTierOptions {
  if (options === undefined) return BOTH_TIERS;
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`Expected the options argument to be an object, got ${describeValue(options)}`);
  }
  if (options.skipMemory === undefined && options.skipRedis === undefined) return BOTH_TIERS;
  return { skipMemory: flag('skipMemory', options.skipMemory), skipRedis: flag('skipRedis', options.skipRedis) };
}

export interface ResolvedSetOptions {
  readonly ttl: number;
  readonly grace: number;
  readonly tags: readonly string[];
}

const NO_TAGS: readonly string[] = Object.freeze([]);

/** Per-call options over the cache's defaults. Called on every write, so it returns early for the common case. */
const PLAIN_SET = new WeakMap<ResolvedOptions, ResolvedSetOptions>();

export function resolveSetOptions(defaults: ResolvedOptions, options: SetOptions | undefined): ResolvedSetOptions {
  if (options === undefined) {
    let plain = PLAIN_SET.get(defaults);
    if (plain === undefined) {
      plain = Object.freeze({ ttl: defaults.ttl, grace: defaults.grace, tags: NO_TAGS });
      PLAIN_SET.set(defaults, plain);
    }
    return plain;
  }
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`Expected the options argument to be an object, got ${describeValue(options)}`);
  }
  const ttl = options.ttl === undefined ? defaults.ttl : toMs('ttl', options.ttl);
  const grace = options.grace === undefined ? defaults.grace : toMs('grace', options.grace, { allowZero: true });
  const tags = options.tags === undefined ? NO_TAGS : checkTags(options.tags);
  return { ttl, grace, tags };
}

/** A `tags` option (a call's, or a loader's choice): at most `maxTags` non-empty strings, or a ConfigurationError. */
export function checkTags(raw: unknown): readonly string[] {
  if (
    !Array.isArray(raw) ||
    raw.length > DEFAULTS.maxTags ||
    !raw.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 256)
  ) {
    throw new ConfigurationError(
      `Expected \`tags\` to be an array of at most ${DEFAULTS.maxTags} non-empty strings (≤ 256 characters), got ${describeValue(raw)}`,
    );
  }
  return raw as string[];
}

/** A per-call boolean switch, or a ConfigurationError naming it. */

export interface ResolvedGetOrSetOptions extends ResolvedSetOptions, ResolvedTierOptions {
  readonly softTimeout: number | undefined;
  readonly hardTimeout: number | undefined;
  readonly graceBackoff: number;
  readonly refreshAhead: number | undefined;
  readonly negativeTtl: number | undefined;
}

const PLAIN_GET_OR_SET = new WeakMap<ResolvedOptions, ResolvedGetOrSetOptions>();

/** Per-call getOrSet options over the cache's defaults; the no-options case is resolved once per cache. */
export function resolveGetOrSetOptions(
  defaults: ResolvedOptions,
  options: GetOrSetOptions | undefined,
): ResolvedGetOrSetOptions {
  if (options === undefined) {
    let plain = PLAIN_GET_OR_SET.get(defaults);
    if (plain === undefined) {
      plain = {
        ...resolveSetOptions(defaults, undefined),
        softTimeout: undefined,
        hardTimeout: undefined,
        graceBackoff: DEFAULTS.graceBackoff,
        refreshAhead: undefined,
        negativeTtl: undefined,
        skipMemory: false,
        skipRedis: false,
      };
      PLAIN_GET_OR_SET.set(defaults, plain);
    }
    return plain;
  }
  const base = resolveSetOptions(defaults, options);
  return {
    ...base,
    softTimeout: options.softTimeout === undefined ? undefined : toMs('softTimeout', options.softTimeout),
    hardTimeout: options.hardTimeout === undefined ? undefined : toMs('hardTimeout', options.hardTimeout),
    graceBackoff:
      options.graceBackoff === undefined
        ? DEFAULTS.graceBackoff
        : toMs('graceBackoff', options.graceBackoff, { allowZero: true }),
    refreshAhead:
      options.refreshAhead === undefined ? undefined : fraction('refreshAhead', options.refreshAhead) || undefined,
    negativeTtl: options.negativeTtl === undefined ? undefined : toMs('negativeTtl', options.negativeTtl),
    skipMemory: flag('skipMemory', options.skipMemory),
    skipRedis: flag('skipRedis', options.skipRedis),
  };
}
