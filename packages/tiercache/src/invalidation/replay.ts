/**
 * Invalidations that could not reach Redis (down, or the breaker open), kept to be replayed when it is back, so that
 * no instance goes on serving what was invalidated during the outage. Deduplicated (one entry per key, per tag, per
 * cleared prefix) and bounded: past `max`, the oldest entry is dropped and counted.
 */
export type PendingInvalidation =
  | { readonly kind: 'key'; readonly prefix: string; readonly fullKey: string }
  | { readonly kind: 'tag'; readonly prefix: string; readonly tag: string }
  | { readonly kind: 'clear'; readonly prefix: string };

function identity(item: PendingInvalidation): string {
  switch (item.kind) {
    case 'key':
      return `k\u0000${item.fullKey}`;
    case 'tag':
      return `t\u0000${item.prefix}\u0000${item.tag}`;
    case 'clear':
      return `c\u0000${item.prefix}`;
  }
}

export class ReplayQueue {
  readonly #max: number;
  readonly #items = new Map<string, PendingInvalidation>();
  #dropped = 0;

  constructor(max: number) {
    this.#max = max;
  }

  add(item: PendingInvalidation): void {
    const id = identity(item);
    // Re-inserted at the end: the newest invalidation of a key is the one that must survive a full queue.
    this.#items.delete(id);
    this.#items.set(id, item);
    while (this.#items.size > this.#max) {
      const oldest = this.#items.keys().next().value as string;
      this.#items.delete(oldest);
      this.#dropped++;
    }
  }

  /** A later write of the key reached Redis: its pending delete is moot. */
  forgetKey(fullKey: string): void {
    if (this.#items.size > 0) this.#items.delete(`k\u0000${fullKey}`);
  }

  /** Takes up to `limit` items, oldest first, out of the queue. */
  take(limit: number): PendingInvalidation[] {
    const out: PendingInvalidation[] = [];
    for (const [id, item] of this.#items) {
      if (out.length >= limit) break;
      out.push(item);
      this.#items.delete(id);
    }
    return out;
  }

  get size(): number {
    return this.#items.size;
  }

  get dropped(): number {
    return this.#dropped;
  }
}
