import type { View } from '../cache/view.js';
import type { MsetEntry, WritePath } from '../cache/write-path.js';
import { ConfigurationError, describeValue } from '../errors.js';
import { positiveInteger } from '../options.js';
import { resolveSetOptions } from '../call-options.js';
import type { ResolvedOptions, SetOptions } from '../options.js';
import { checkFunction, checkOptionsObject } from './context.js';

export interface WarmProgress {
  readonly written: number;
  readonly failed: number;
}

export interface WarmOptions {
  /** TTL of entries that name none. @default the cache's `ttl` */
  readonly ttl?: SetOptions['ttl'];
  /** Tags of entries that name none. @default [] */
  readonly tags?: SetOptions['tags'];
  readonly grace?: SetOptions['grace'];
  /**
   * Entries per batch: one Redis round trip (one script or pipeline) and one invalidation message per batch.
   * @default 500
   */
  readonly batchSize?: number;
  /** Called after each batch with the running totals. A throwing callback is ignored. */
  readonly onProgress?: (progress: WarmProgress) => void;
}

export const WARM_DEFAULTS = { batchSize: 500 } as const;

type Entries = Iterable<MsetEntry> | AsyncIterable<MsetEntry>;

/**
 * Writes many entries through the write path in batches: memory at once, Redis one round trip per batch, other
 * instances told once per batch. An entry that cannot be written is counted as failed, not thrown.
 */
export async function warm(
  parts: { readonly writes: WritePath; readonly options: ResolvedOptions },
  view: View,
  entries: Entries,
  options: WarmOptions | undefined,
  check: (key: unknown) => string,
): Promise<WarmProgress> {
  if (options !== undefined) checkOptionsObject(options);
  const batchSize =
    options?.batchSize === undefined
      ? WARM_DEFAULTS.batchSize
      : positiveInteger('batchSize', options.batchSize, 100_000);
  if (options?.onProgress !== undefined) checkFunction('onProgress', options.onProgress);
  const iterable = entries as Partial<Iterable<MsetEntry> & AsyncIterable<MsetEntry>> | null;
  if (
    typeof iterable !== 'object' ||
    iterable === null ||
    (typeof iterable[Symbol.iterator] !== 'function' && typeof iterable[Symbol.asyncIterator] !== 'function')
  ) {
    throw new ConfigurationError(
      `Expected \`entries\` to be an iterable or async iterable, got ${describeValue(entries)}`,
    );
  }
  const defaults: SetOptions = {
    ...(options?.ttl === undefined ? {} : { ttl: options.ttl }),
    ...(options?.tags === undefined ? {} : { tags: options.tags }),
    ...(options?.grace === undefined ? {} : { grace: options.grace }),
  };
  resolveSetOptions(parts.options, defaults);
  let written = 0;
  let failed = 0;
  const flush = async (batch: MsetEntry[]): Promise<void> => {
    const withDefaults = batch.map((entry) =>
      typeof entry === 'object' && entry !== null ? { ...defaults, ...entry } : entry,
    );
    const outcome = await parts.writes.warmBatch(view, withDefaults, check, () => undefined);
    written += outcome.written;
    failed += outcome.failed;
    try {
      options?.onProgress?.({ written, failed });
    } catch {
      // The caller's callback; its failure is not the warm's.
    }
  };
  let batch: MsetEntry[] = [];
  for await (const entry of entries) {
    batch.push(entry);
    if (batch.length >= batchSize) {
      await flush(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await flush(batch);
  return { written, failed };
}
