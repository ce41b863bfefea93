import { LRUCache } from 'lru-cache';
import type { MemoryTier } from '../types.js';

interface Slot<V> {
  readonly value: V;
  readonly until: number;
}

/**
 * L1 over lru-cache, bounded by entries and by bytes. Expiry is a timestamp checked on read rather than a timer per
 * entry: no timers means no setTimeout overflow for long TTLs (BentoCache #61) and nothing running in the background.
 * An expired slot lingers until it is read or evicted, which the entry and byte bounds keep in check.
 */
export class LruMemoryTier<V> implements MemoryTier<V> {
  readonly #lru: LRUCache<string, Slot<V>>;
  readonly #rootLength: number;
  readonly #root: string;

  /**
   * `root`: the prefix every key starts with (the cache's prefix). Keys are stored without it, so the hot path can
   * look up the caller's own key string as is (`getRelative`) instead of building `prefix + key` on every hit.
   */
  constructor(options: { readonly maxEntries: number; readonly maxBytes: number; readonly root?: string }) {
    this.#lru = new LRUCache<string, Slot<V>>({ max: options.maxEntries, maxSize: options.maxBytes });
    this.#root = options.root ?? '';
    this.#rootLength = this.#root.length;
  }

  get(key: string, now: number): V | undefined {
    return this.getRelative(this.#rootLength === 0 ? key : key.slice(this.#rootLength), now);
  }

  /** `get` by the key without the root prefix. */
  getRelative(key: string, now: number): V | undefined {
    const slot = this.#lru.get(key);
    if (slot === undefined) return undefined;
    if (now >= slot.until) {
      this.#lru.delete(key);
      return undefined;
    }
    return slot.value;
  }

  set(key: string, value: V, size: number, until: number): void {
    // lru-cache refuses sizes < 1; an entry larger than maxBytes is not stored (and any older copy is dropped).
    this.#lru.set(this.#relative(key), { value, until }, { size: Math.max(1, size) });
  }

  #relative(key: string): string {
    return this.#rootLength === 0 ? key : key.slice(this.#rootLength);
  }

  delete(key: string): boolean {
    return this.#lru.delete(this.#relative(key));
  }

  deleteByPrefix(prefix: string): number {
    const relative = this.#relative(prefix);
    if (relative === '') {
      const count = this.#lru.size;
      this.#lru.clear();
      return count;
    }
    let count = 0;
    for (const key of [...this.#lru.keys()]) {
      if (key.startsWith(relative) && this.#lru.delete(key)) count++;
    }
    return count;
  }

  deleteWhere(prefix: string, matches: (value: V) => boolean): number {
    const relative = this.#relative(prefix);
    let count = 0;
    for (const [key, slot] of [...this.#lru.entries()]) {
      if (key.startsWith(relative) && matches(slot.value) && this.#lru.delete(key)) count++;
    }
    return count;
  }

  clear(): void {
    this.#lru.clear();
  }

  list(): readonly (readonly [string, V])[] {
    return [...this.#lru.entries()].map(([key, slot]) => [this.#root + key, slot.value] as const);
  }

  get entries(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}
