/** The error ioredis' own `commandTimeout` raises; toCacheError maps it to a CacheTimeoutError. */
export const TIMED_OUT_MESSAGE = 'Command timed out';

interface Pending {
  readonly at: number;
  readonly reject: (error: Error) => void;
  settled: boolean;
  next: Pending | undefined;
  /** A command watched in place (`watch`): settled is read off it. */
  readonly command: TimedCommand | undefined;
}

/** What `watch` needs of an ioredis `Command`: whether it settled, and its own reject. */
export interface TimedCommand {
  readonly isSettled: boolean;
  reject(error: Error): void;
}

/**
 * Bounds every Redis call by one timeout with one timer for all calls in flight, instead of one timer per command
 * (ioredis' `commandTimeout` arms and clears a `setTimeout` per command: measured 0.81× → 0.93× of raw ioredis for
 * a lone caller's GETs once it was gone). All calls share the same timeout, so their deadlines come in the order
 * the calls were made: a queue, whose head is the next to expire. Replies on a connection come in order too, so a
 * settled call is nearly always the head and leaves at once; the queue holds what is really in flight.
 *
 * The timer is armed when a call finds none, for the head's deadline, and re-armed on firing for the next; it is not
 * cleared when the queue empties (that would cost a clear and a new arm per call for a lone caller): it fires once
 * for nothing. It is unref'd, so it never keeps a process alive, and `close()` clears it.
 */
export class Deadlines {
  readonly #ms: number;
  readonly #now: () => number;
  #head: Pending | undefined;
  #tail: Pending | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #expire = (): void => this.#onTimer();

  constructor(ms: number, now: () => number = () => performance.now()) {
    this.#ms = ms;
    this.#now = now;
  }

  /** `promise`, or a rejection with `Command timed out` once the timeout has passed, whichever comes first. */
  bound<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = {
        at: this.#now() + this.#ms,
        reject,
        settled: false,
        next: undefined,
        command: undefined,
      };
      this.#push(pending);
      promise.then(
        (value) => {
          if (this.#settle(pending)) resolve(value);
        },
        (error: unknown) => {
          if (this.#settle(pending)) reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /**
   * Bounds an ioredis command in place, as its own `commandTimeout` would (rejecting it with the same error), so the
   * caller continues the command's own promise: no promise of ours in between on the hottest calls. Its state is
   * read off the command, so it leaves the queue when a later call or the timer finds it settled.
   */
  watch(command: TimedCommand): void {
    this.#push({
      at: this.#now() + this.#ms,
      reject: (error) => command.reject(error),
      settled: false,
      next: undefined,
      command,
    });
  }

  #push(pending: Pending): void {
    this.#dropSettled();
    if (this.#tail === undefined) this.#head = pending;
    else this.#tail.next = pending;
    this.#tail = pending;
    if (this.#timer === undefined) this.#arm(this.#ms);
  }

  /** Calls waiting for a reply (settled ones still queued behind an unsettled head included). */
  get size(): number {
    this.#dropSettled();
    let count = 0;
    for (let p = this.#head; p !== undefined; p = p.next) count++;
    return count;
  }

  /** Clears the timer; calls still in flight are no longer bounded (close() has waited for them). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** False when the call had already timed out. */
  #settle(pending: Pending): boolean {
    if (pending.settled) return false;
    pending.settled = true;
    if (pending === this.#head) this.#dropSettled();
    return true;
  }

  #dropSettled(): void {
    let head = this.#head;
    while (head !== undefined && (head.settled || head.command?.isSettled === true)) head = head.next;
    this.#head = head;
    if (head === undefined) this.#tail = undefined;
  }

  #onTimer(): void {
    this.#timer = undefined;
    const now = this.#now();
    for (let p = this.#head; p !== undefined && p.at <= now; p = p.next) {
      if (p.settled || p.command?.isSettled === true) continue;
      p.settled = true;
      p.reject(new Error(TIMED_OUT_MESSAGE));
    }
    this.#dropSettled();
    if (this.#head !== undefined) this.#arm(this.#head.at - now);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#expire, Math.max(1, Math.ceil(ms)));
    this.#timer.unref();
  }
}
