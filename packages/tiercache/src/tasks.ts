/**
 * Work the cache started and nobody awaits (refreshes, late loaders, echo checks, replays): each has this owner, so
 * close() can wait for it, bounded, and nothing is left running after it.
 */
export class BackgroundTasks {
  readonly #running = new Set<Promise<unknown>>();

  /** Tracks `work` until it settles. Its rejection is observed here (it is the work's own to report). */
  track(work: Promise<unknown>): void {
    const forget = (): void => {
      this.#running.delete(tracked);
    };
    const tracked: Promise<void> = work.then(forget, forget);
    this.#running.add(tracked);
  }

  get size(): number {
    return this.#running.size;
  }

  /** Waits for everything tracked now, or `ms`, whichever comes first. */
  async settle(ms: number): Promise<void> {
    if (this.#running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#running]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }
}
