import type { Entry } from '../entry.js';
import { toMs } from '../options.js';
import { checkTags } from '../call-options.js';
import type { ResolvedGetOrSetOptions } from '../call-options.js';
import type { Duration } from '../types.js';
import type { LoaderContext } from './loader-runner.js';

/** What a loader returns to say "the stale copy is still current" (see `LoaderContext.unchanged`). */
export const UNCHANGED: unique symbol = Symbol('tiercache.unchanged');
export type Unchanged = typeof UNCHANGED;

/** The copy a load replaces, as a loader sees it for a conditional refresh. Times are ms since the epoch. */
export interface StaleCopy<T = unknown> {
  readonly value: T;
  readonly createdAt: number;
  /** Its logical expiry (in the past for a stale copy, ahead for the fresh copy a refresh-ahead replaces). */
  readonly expiresAt: number;
  readonly graceUntil: number;
  readonly tags: readonly string[];
}

export function staleCopy(entry: Entry): StaleCopy {
  return {
    value: entry.value,
    createdAt: entry.createdAt,
    expiresAt: entry.expiresAt,
    graceUntil: entry.graceUntil,
    tags: entry.tags,
  };
}

/**
 * The decisions a loader made about its own result (adaptive caching): TTL, grace, tags, skip. Validated when made,
 * so a bad duration fails the load with a message naming it, like a bad call option.
 */
export interface AdaptiveChoices {
  ttl?: number;
  grace?: number;
  tags?: readonly string[];
  skip?: boolean;
}

export const choose = {
  ttl(choices: AdaptiveChoices, ttl: Duration): void {
    choices.ttl = toMs('ttl', ttl);
  },
  grace(choices: AdaptiveChoices, grace: Duration): void {
    choices.grace = toMs('grace', grace, { allowZero: true });
  },
  tags(choices: AdaptiveChoices, tags: readonly string[]): void {
    choices.tags = checkTags(tags).slice();
  },
};

/** The call's options with the loader's choices over them; a value of undefined takes `negativeTtl` when set. */
export function applyChoices(
  options: ResolvedGetOrSetOptions,
  choices: AdaptiveChoices,
  value: unknown,
): ResolvedGetOrSetOptions {
  const negative = value === undefined && options.negativeTtl !== undefined && choices.ttl === undefined;
  if (!negative && choices.ttl === undefined && choices.grace === undefined && choices.tags === undefined) {
    return options;
  }
  return {
    ...options,
    ttl: negative ? (options.negativeTtl as number) : (choices.ttl ?? options.ttl),
    // A remembered "not found" is not worth serving past its own short TTL.
    grace: choices.grace ?? (negative ? 0 : options.grace),
    tags: choices.tags ?? options.tags,
  };
}

/** One load's context: what the loader is told, and what it chose. */
export class Adaptive {
  readonly choices: AdaptiveChoices = {};
  readonly context: LoaderContext<unknown>;

  constructor(key: string, signal: AbortSignal, stale: Entry | undefined) {
    const choices = this.choices;
    this.context = {
      key,
      signal,
      stale: stale === undefined ? undefined : staleCopy(stale),
      setTtl: (ttl) => choose.ttl(choices, ttl),
      setGrace: (grace) => choose.grace(choices, grace),
      setTags: (tags) => choose.tags(choices, tags),
      skip: () => {
        choices.skip = true;
      },
      unchanged: () => UNCHANGED,
    };
  }

  get skipped(): boolean {
    return this.choices.skip === true;
  }

  resolve(options: ResolvedGetOrSetOptions, value: unknown): ResolvedGetOrSetOptions {
    return applyChoices(options, this.choices, value);
  }
}
