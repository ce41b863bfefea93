import { CircuitOpenError, ConfigurationError, describeValue, isOutageError } from '../errors.js';
import { Emitter } from '../observability/events.js';
import type { Disposer } from '../observability/events.js';
import { systemClock } from '../types.js';
import type { CallPolicy, Clock, Settled } from '../types.js';
import { validateBreakerOptions } from './breaker-options.js';
import type { BreakerOptions, ResolvedBreakerOptions } from './breaker-options.js';

export { BREAKER_DEFAULTS, validateBreakerOptions } from './breaker-options.js';
export type { BreakerOptions, ResolvedBreakerOptions } from './breaker-options.js';

export { isOutageError } from '../errors.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * What `acquire()` hands out. Report an admitted ticket back exactly once with `success`, `failure` or `release`.
 * Tickets are compared by identity: a ticket from before a transition (a slow call that started while the breaker was
 * closed, a probe already written off as failed) reports into nothing, so stale news never moves the state.
 */
export interface PassTicket {
  readonly kind: 'pass';
}
export interface ProbeTicket {
  readonly kind: 'probe';
}
export interface RejectTicket {
  readonly kind: 'reject';
}
export type Ticket = PassTicket | ProbeTicket | RejectTicket;
export type AdmittedTicket = PassTicket | ProbeTicket;

const REJECT: RejectTicket = Object.freeze({ kind: 'reject' });

export type TransitionReason =
  /** closed → open: `threshold` failures within the window, spanning `minDistinctKeys` keys. */
  | 'threshold'
  /** open → half-open: `openMs` elapsed. */
  | 'open-elapsed'
  /** half-open → closed. */
  | 'probe-succeeded'
  /** half-open → open. */
  | 'probe-failed'
  /** half-open → open: the probe did not report within `openMs`, so it is counted as failed. */
  | 'probe-timeout';

export interface BreakerTransition {
  /** The state entered. */
  readonly state: BreakerState;
  readonly previous: BreakerState;
  /** When the transition took effect by the breaker's clock (for lazy transitions, when it became due). */
  readonly at: number;
  readonly reason: TransitionReason;
  /** On opening: when the breaker will let a probe through. */
  readonly nextProbeAt?: number;
  /** On a `threshold` opening: the failures in the window and the distinct keys among them. */
  readonly failures?: number;
  readonly distinctKeys?: number;
}

export type BreakerEvent = 'open' | 'half-open' | 'close';
export type BreakerListener = (transition: BreakerTransition) => void;

export interface BreakerSnapshot {
  readonly state: BreakerState;
  /** Failures within the window now (at most `threshold`: older ones are forgotten once it is reached). */
  readonly failuresInWindow: number;
  /** Distinct keys among them, keyless failures counting one each (at most `threshold`). */
  readonly distinctKeysInWindow: number;
  /** Open or half-open: when the breaker last opened. */
  readonly openedAt?: number;
  /** Open: when it lets a probe through. Half-open with a probe out: when that probe counts as failed. */
  readonly nextProbeAt?: number;
  /** How many times each transition happened since the breaker was created. */
  readonly transitions: { readonly open: number; readonly halfOpen: number; readonly close: number };
  /** What the breaker holds in memory; both bounded by `threshold` whatever the traffic. */
  readonly retained: { readonly timestamps: number; readonly keys: number };
}

interface Probe extends ProbeTicket {
  readonly issuedAt: number;
}

/** The states as a discriminated union: each carries exactly the data that is meaningful in it. */
type State =
  | { readonly name: 'closed'; readonly pass: PassTicket }
  | { readonly name: 'open'; readonly openedAt: number; readonly until: number }
  | { readonly name: 'half-open'; readonly openedAt: number; readonly probe: Probe | undefined };

const EVENT_OF: Record<BreakerState, BreakerEvent> = { closed: 'close', open: 'open', 'half-open': 'half-open' };

/**
 * A circuit breaker as a state machine with no timers: every transition is computed from the injected clock when the
 * breaker is next used, so it costs nothing while idle, needs no cleanup, and is exact under a fake clock.
 *
 *     closed ──threshold failures in window, ≥ minDistinctKeys keys──▶ open
 *     open ──openMs elapsed──▶ half-open
 *     half-open ──the one probe succeeds──▶ closed (window cleared)
 *     half-open ──the probe fails, or has not reported after openMs──▶ open (for another openMs)
 *
 * While closed, `acquire()` reads no clock and allocates nothing.
 */
export class CircuitBreaker implements CallPolicy {
  readonly #options: ResolvedBreakerOptions;
  readonly #clock: Clock;
  #state: State = { name: 'closed', pass: Object.freeze({ kind: 'pass' }) };

  /** The timestamps of the last `threshold` failures, a ring: once full, `#head` is the oldest. */
  readonly #ring: Float64Array;
  #head = 0;
  #count = 0;
  /**
   * Each key's latest failure, least recent first (re-inserted on every failure). Capped at `threshold` entries by
   * dropping the least recent: if ≥ minDistinctKeys keys failed within the window, the most recent ones did, so the
   * cap never changes the decision.
   */
  readonly #keys = new Map<string | number, number>();
  /** Keyless failures each get a number of their own, so each counts as a distinct key. */
  #keyless = 0;

  readonly #transitions = { open: 0, halfOpen: 0, close: 0 };
  readonly #events = new Emitter<Record<BreakerEvent, BreakerTransition>>('breaker');
  /** Transitions waiting to be announced: emitted after the state is settled, so a listener sees a consistent one. */
  readonly #pending: BreakerTransition[] = [];

  constructor(options: BreakerOptions = {}, clock: Clock = systemClock) {
    this.#options = validateBreakerOptions(options);
    if (typeof clock !== 'object' || clock === null || typeof (clock as Partial<Clock>).now !== 'function') {
      throw new ConfigurationError(
        `Expected \`clock\` to be an object with a now() method, got ${describeValue(clock)}`,
      );
    }
    this.#clock = clock;
    this.#ring = new Float64Array(this.#options.threshold);
  }

  get options(): ResolvedBreakerOptions {
    return this.#options;
  }

  /** The current state; applies a transition that has become due. */
  get state(): BreakerState {
    if (this.#state.name !== 'closed') this.#settle(this.#clock.now());
    this.#flush();
    return this.#state.name;
  }

  /**
   * Asks to call the protected resource: a `pass` while closed, the single `probe` when half-open and no probe is
   * out, otherwise `reject` (skip the resource). However many callers arrive in half-open, one gets the probe.
   */
  acquire(): Ticket {
    const state = this.#state;
    if (state.name === 'closed') return state.pass;
    const now = this.#clock.now();
    this.#settle(now);
    this.#flush();
    // Re-read: a listener run by the flush may have moved the state on.
    const current = this.#state;
    if (current.name === 'closed') return current.pass;
    if (current.name === 'open' || current.probe !== undefined) return REJECT;
    const probe: Probe = Object.freeze({ kind: 'probe', issuedAt: now });
    this.#state = { name: 'half-open', openedAt: current.openedAt, probe };
    return probe;
  }

  /** The call answered. A probe's success closes the breaker; a pass's changes nothing (failures age out by time). */
  success(ticket: AdmittedTicket): void {
    if (this.#state.name === 'closed') return;
    const now = this.#clock.now();
    this.#settle(now);
    const state = this.#state;
    if (state.name === 'half-open' && state.probe !== undefined && ticket === state.probe) {
      this.#clear();
      // A fresh pass ticket: calls admitted before the breaker opened cannot report into the new closed period.
      this.#enter({ name: 'closed', pass: Object.freeze({ kind: 'pass' }) }, 'probe-succeeded', now);
    }
    this.#flush();
  }

  /**
   * The call failed in a way that counts (see `isOutageError`). `key` is the cache key it was about, or undefined
   * for a batch or connection-level failure.
   */
  failure(ticket: AdmittedTicket, key: string | undefined): void {
    const now = this.#clock.now();
    const state = this.#state;
    if (state.name === 'closed') {
      if (ticket !== state.pass) return;
      this.#record(now, key);
      this.#maybeOpen(now);
    } else {
      this.#settle(now);
      const current = this.#state;
      if (current.name === 'half-open' && current.probe !== undefined && ticket === current.probe) {
        this.#open(now, 'probe-failed');
      }
    }
    this.#flush();
  }

  countFailure(): void {
    const state = this.#state;
    if (state.name === 'closed') this.failure(state.pass, undefined);
  }

  /** The probe's outcome is unknown (the call was abandoned): frees the probe slot with no verdict. */
  release(ticket: AdmittedTicket): void {
    if (this.#state.name === 'closed') return;
    this.#settle(this.#clock.now());
    const state = this.#state;
    if (state.name === 'half-open' && state.probe !== undefined && ticket === state.probe) {
      this.#state = { name: 'half-open', openedAt: state.openedAt, probe: undefined };
    }
    this.#flush();
  }

  /**
   * Runs `fn` through the breaker (cockatiel's `execute`): rejects with `CircuitOpenError` without calling it while
   * open (or while the half-open probe is out), and reports its outcome, so callers never hold tickets. Only errors
   * `counts` accepts are failures; any other error is a sign of life (the server answered) and counts as a success.
   */
  execute<T>(
    fn: () => Promise<T>,
    key: string | undefined,
    counts: (error: unknown) => boolean = isOutageError,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.run(fn, key, counts, (outcome) => (outcome.ok ? resolve(outcome.value) : reject(outcome.error as Error)));
    });
  }

  /**
   * `execute` for the hottest path (every Redis call of the cache): the outcome goes to `settle` once the breaker has
   * counted it, in the one continuation on `fn`'s promise, instead of a promise of its own that the caller must
   * continue again. A call turned away is settled at once, synchronously, with a `CircuitOpenError`.
   */
  run<T>(
    fn: () => Promise<T>,
    key: string | undefined,
    counts: (error: unknown) => boolean,
    settle: (outcome: Settled<T>) => void,
  ): void {
    const ticket = this.acquire();
    if (ticket.kind === 'reject') {
      settle({ ok: false, error: new CircuitOpenError() });
      return;
    }
    let pending: Promise<T>;
    try {
      pending = fn();
    } catch (error) {
      pending = Promise.reject(error as Error);
    }
    pending.then(
      (value) => {
        this.success(ticket);
        settle({ ok: true, value });
      },
      (error: unknown) => {
        if (counts(error)) this.failure(ticket, key);
        else this.success(ticket);
        settle({ ok: false, error });
      },
    );
  }

  /** True while a call would be turned away untried: open, or half-open with its one probe out. */
  get rejecting(): boolean {
    const state = this.state;
    const current = this.#state;
    return state === 'open' || (current.name === 'half-open' && current.probe !== undefined);
  }

  /** Listens to one transition. A listener that throws is reported as a process warning; the breaker carries on. */
  on(event: BreakerEvent, listener: BreakerListener): Disposer {
    if (event !== 'open' && event !== 'half-open' && event !== 'close') {
      throw new ConfigurationError(
        `Expected the event to be 'open', 'half-open' or 'close', got ${describeValue(event)}`,
      );
    }
    if (typeof listener !== 'function') {
      throw new ConfigurationError(`Expected the listener to be a function, got ${describeValue(listener)}`);
    }
    // A wrapper, so the same function added twice is two subscriptions and each disposer removes only its own.
    return this.#events.on(event, (transition) => listener(transition));
  }

  snapshot(): BreakerSnapshot {
    const now = this.#clock.now();
    this.#settle(now);
    this.#flush();
    const state = this.#state;
    const { windowMs } = this.#options;
    let failures = 0;
    for (let i = 0; i < this.#count; i++) if (now - (this.#ring[i] as number) < windowMs) failures++;
    const base = {
      state: state.name,
      failuresInWindow: failures,
      distinctKeysInWindow: this.#distinctKeys(now),
      transitions: { ...this.#transitions },
      retained: { timestamps: this.#count, keys: this.#keys.size },
    };
    if (state.name === 'open') return { ...base, openedAt: state.openedAt, nextProbeAt: state.until };
    if (state.name === 'half-open') {
      return state.probe === undefined
        ? { ...base, openedAt: state.openedAt }
        : { ...base, openedAt: state.openedAt, nextProbeAt: state.probe.issuedAt + this.#options.openMs };
    }
    return base;
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Applies every transition due by `now`, each at the time it became due, so the state is a function of what
   * happened and when, not of when someone looked. At most two steps: a probe written off reopens the breaker, whose
   * open period may also have elapsed; half-open without a probe then waits for a caller.
   */
  #settle(now: number): void {
    for (;;) {
      const state = this.#state;
      if (state.name === 'open' && now >= state.until) {
        this.#enter({ name: 'half-open', openedAt: state.openedAt, probe: undefined }, 'open-elapsed', state.until);
      } else if (state.name === 'half-open' && state.probe !== undefined) {
        const deadline = state.probe.issuedAt + this.#options.openMs;
        if (now < deadline) return;
        this.#open(deadline, 'probe-timeout');
      } else {
        return;
      }
    }
  }

  #open(at: number, reason: TransitionReason, failures?: number, distinctKeys?: number): void {
    const until = at + this.#options.openMs;
    const extra = failures === undefined || distinctKeys === undefined ? {} : { failures, distinctKeys };
    this.#enter({ name: 'open', openedAt: at, until }, reason, at, { nextProbeAt: until, ...extra });
  }

  #enter(
    next: State,
    reason: TransitionReason,
    at: number,
    extra: Pick<BreakerTransition, 'nextProbeAt' | 'failures' | 'distinctKeys'> = {},
  ): void {
    const previous = this.#state.name;
    this.#state = next;
    if (next.name === 'open') this.#transitions.open++;
    else if (next.name === 'half-open') this.#transitions.halfOpen++;
    else this.#transitions.close++;
    this.#pending.push({ state: next.name, previous, at, reason, ...extra });
  }

  #flush(): void {
    // One FIFO shared with any re-entrant call a listener makes, so announcements keep their order.
    let transition: BreakerTransition | undefined;
    while ((transition = this.#pending.shift()) !== undefined)
      this.#events.emit(EVENT_OF[transition.state], transition);
  }

  #record(now: number, key: string | undefined): void {
    this.#ring[this.#head] = now;
    this.#head = (this.#head + 1) % this.#options.threshold;
    if (this.#count < this.#options.threshold) this.#count++;
    const id = key ?? this.#keyless++;
    this.#keys.delete(id);
    this.#keys.set(id, now);
    if (this.#keys.size > this.#options.threshold) {
      const oldest = this.#keys.keys().next();
      if (oldest.done !== true) this.#keys.delete(oldest.value);
    }
  }

  #maybeOpen(now: number): void {
    const { threshold, windowMs, minDistinctKeys } = this.#options;
    if (this.#count < threshold) return;
    // Full ring: the slot about to be overwritten holds the oldest of the last `threshold` failures.
    if (now - (this.#ring[this.#head] as number) >= windowMs) return;
    const distinct = this.#distinctKeys(now);
    if (distinct < minDistinctKeys) return;
    this.#open(now, 'threshold', threshold, distinct);
  }

  #distinctKeys(now: number): number {
    const windowMs = this.#options.windowMs;
    let distinct = 0;
    for (const at of this.#keys.values()) if (now - at < windowMs) distinct++;
    return distinct;
  }

  #clear(): void {
    this.#head = 0;
    this.#count = 0;
    this.#keys.clear();
  }
}
