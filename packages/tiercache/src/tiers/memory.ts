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

  constructor(options: { readonly maxEntries: number; readonly maxBytes: number }) {
    this.#lru = new LRUCache<string, Slot<V>>({ max: options.maxEntries, maxSize: options.maxBytes });
  }

  get(key: string, now: number): V | undefined {
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
    this.#lru.set(key, { value, until }, { size: Math.max(1, size) });
  }

  delete(key: string): boolean {
    return this.#lru.delete(key);
  }

  deleteByPrefix(prefix: string): number {
    let count = 0;
    for (const key of [...this.#lru.keys()]) {
      if (key.startsWith(prefix) && this.#lru.delete(key)) count++;
    }
    return count;
  }

  deleteWhere(prefix: string, matches: (value: V) => boolean): number {
    let count = 0;
    for (const [key, slot] of [...this.#lru.entries()]) {
      if (key.startsWith(prefix) && matches(slot.value) && this.#lru.delete(key)) count++;
    }
    return count;
  }

  clear(): void {
    this.#lru.clear();
  }

  get entries(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}
