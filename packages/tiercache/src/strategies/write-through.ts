import type { View } from '../cache/view.js';
import type { WritePath } from '../cache/write-path.js';
import { resolveSetOptions } from '../call-options.js';
import type { ResolvedOptions, SetOptions } from '../options.js';
import { checkFunction } from './context.js';

/** Per-call options of `writeThrough`. */
export type WriteThroughOptions = SetOptions;

/** The origin write of `writeThrough`: stores `value` in the database; its result is the call's. */
export type OriginWriter<T, R> = (value: T) => R | Promise<R>;

/**
 * Write-through: the origin first; only once it succeeded, the value goes into both tiers and other instances'
 * copies are invalidated. An origin failure leaves the cache untouched and is the caller's error. A Redis failure
 * after it is not: this instance's memory has the value, the invalidation is queued for replay (other instances'
 * copies are then stale for at most `memory.maxTtl`).
 */
export async function writeThrough<T, R>(
  parts: { readonly writes: WritePath; readonly options: ResolvedOptions },
  view: View,
  key: string,
  value: T,
  writer: OriginWriter<T, R>,
  options: WriteThroughOptions | undefined,
): Promise<R> {
  checkFunction('writer', writer);
  // Validated before the origin is touched: a bad option must not leave a written origin and an untouched cache.
  resolveSetOptions(parts.options, options);
  const result = await writer(value);
  await parts.writes.set(view, key, value, options, true);
  return result;
}
