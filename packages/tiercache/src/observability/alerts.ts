/**
 * The gate between the cache's failures and a human's phone. The cache reports every Redis error and breaker
 * transition here; the gate lets through at most one alert per (kind, key) per cooldown and at most
 * `maxDistinctKeys` keys per cooldown window, and counts the rest so the next alert can say how much was held back.
 *
 * Pure: no timers, no I/O, time from the injected clock. `notify` is called synchronously and never awaited, so a
 * slow or dead webhook costs the request path nothing; its rejection is caught and counted.
 */
import { ConfigurationError, describeValue } from '../errors.js';
import { positiveInteger, toMs } from '../options.js';
import type { Clock, Duration } from '../types.js';

export type AlertKind = 'redis-error' | 'breaker-open' | 'breaker-half-open' | 'breaker-close';

/** What the cache reports. `key` is the cache key a Redis error was about (none for connection errors and breakers). */
export interface Alert {
  readonly kind: AlertKind;
  readonly key?: string;
  readonly message: string;
  readonly error?: unknown;
}

/** What `notify` receives: the alert, when it happened, and what the gate held back before it. */
export interface AlertNotification extends Alert {
  /** Milliseconds since the epoch, from the cache's clock. */
  readonly time: number;
  /** Alerts of this same kind and key held back by the cooldown since the previous notification of it. */
  readonly repeats: number;
  /**
   * Alerts of other kinds or keys held back since the previous notification and not reported in any other: those
   * over the distinct-key cap, and repeats of keys that did not come back after their cooldown.
   */
  readonly suppressed: number;
}

/** Receives alerts. May return a promise; it is not awaited, and a rejection is counted in `failed`. */
export type AlertNotify = (alert: AlertNotification) => void | Promise<unknown>;

export interface AlertOptions {
  readonly notify: AlertNotify;
  /**
   * Least time between two alerts of the same kind and key, and the length of the window the distinct-key cap
   * counts over.
   * @default '10m'
   */
  readonly cooldown?: Duration;
  /**
   * Most distinct keys alerted per cooldown window; alerts for further keys are counted as suppressed. Alerts without a
   * key (breaker transitions, connection errors) are not counted against it: there are only a few of them and each
   * one matters.
   * @default 6
   */
  readonly maxDistinctKeys?: number;
}

export interface AlertStats {
  /** `notify` calls. */
  readonly sent: number;
  /** Alerts held back by the distinct-key cap. */
  readonly suppressed: number;
  /** Alerts held back by the cooldown of their kind and key. */
  readonly deduplicated: number;
  /** `notify` calls that threw or rejected. */
  readonly failed: number;
}

export type AlertDecision = 'sent' | 'deduplicated' | 'suppressed';

export const ALERT_DEFAULTS = {
  /** ms */
  cooldown: 10 * 60_000,
  maxDistinctKeys: 6,
  /** Characters of a key kept in the gate's map and in the alert: bounds memory whatever the keys look like. */
  maxKeyLength: 256,
  /** Characters of a message passed on. */
  maxMessageLength: 2000,
} as const;

interface Group {
  lastSent: number;
  repeats: number;
}

export class AlertGate {
  readonly #notify: AlertNotify;
  readonly #cooldown: number;
  readonly #maxDistinctKeys: number;
  readonly #clock: Clock;
  /**
   * Groups sent within the last cooldown, oldest first (a group is re-inserted when sent again), so pruning stops at
   * the first live one. Only sent groups get an entry: at most two windows' worth of keys plus the few keyless ones.
   */
  readonly #groups = new Map<string, Group>();
  #windowStart = Number.NEGATIVE_INFINITY;
  #windowKeys = 0;
  #heldBack = 0;
  #sent = 0;
  #suppressed = 0;
  #deduplicated = 0;
  #failed = 0;
  readonly #onFailure = (): void => {
    this.#failed++;
  };

  constructor(options: AlertOptions, clock: Clock) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigurationError(`Expected \`alerts\` to be an object, got ${describeValue(options)}`);
    }
    if (typeof options.notify !== 'function') {
      throw new ConfigurationError(`Expected \`alerts.notify\` to be a function, got ${describeValue(options.notify)}`);
    }
    const max = positiveInteger('alerts.maxDistinctKeys', options.maxDistinctKeys ?? ALERT_DEFAULTS.maxDistinctKeys);
    this.#notify = options.notify;
    this.#cooldown =
      options.cooldown === undefined
        ? ALERT_DEFAULTS.cooldown
        : toMs('alerts.cooldown', options.cooldown, { allowZero: true });
    this.#maxDistinctKeys = max;
    this.#clock = clock;
  }

  /** Sends the alert, or counts it. Never throws, never waits. */
  report(alert: Alert): AlertDecision {
    const now = this.#clock.now();
    const key = alert.key === undefined ? undefined : String(alert.key).slice(0, ALERT_DEFAULTS.maxKeyLength);
    // A separator no kind contains, so a kind and a key can never run together into another group's id.
    const id = key === undefined ? alert.kind : `${alert.kind}\n${key}`;

    let repeats = 0;
    const group = this.#groups.get(id);
    if (group !== undefined) {
      if (now - group.lastSent < this.#cooldown) {
        group.repeats++;
        this.#deduplicated++;
        return 'deduplicated';
      }
      // Cooled down and back: its held-back repeats go into its own alert rather than into `suppressed`.
      repeats = group.repeats;
      this.#groups.delete(id);
    }
    this.#prune(now);

    if (key !== undefined) {
      if (now - this.#windowStart >= this.#cooldown) {
        this.#windowStart = now;
        this.#windowKeys = 0;
      }
      if (this.#windowKeys >= this.#maxDistinctKeys) {
        this.#suppressed++;
        this.#heldBack += 1 + repeats;
        return 'suppressed';
      }
      this.#windowKeys++;
    }

    this.#groups.set(id, { lastSent: now, repeats: 0 });
    const suppressed = this.#heldBack;
    this.#heldBack = 0;
    this.#send({
      kind: alert.kind,
      ...(key === undefined ? {} : { key }),
      message: String(alert.message).slice(0, ALERT_DEFAULTS.maxMessageLength),
      ...(alert.error === undefined ? {} : { error: alert.error }),
      time: now,
      repeats,
      suppressed,
    });
    return 'sent';
  }

  stats(): AlertStats {
    return {
      sent: this.#sent,
      suppressed: this.#suppressed,
      deduplicated: this.#deduplicated,
      failed: this.#failed,
    };
  }

  /** Groups tracked now: those alerted within the last cooldown. */
  get size(): number {
    return this.#groups.size;
  }

  /** Forgets groups whose cooldown is over; repeats they held back are reported as `suppressed` in the next alert. */
  #prune(now: number): void {
    for (const [id, group] of this.#groups) {
      if (now - group.lastSent < this.#cooldown) break;
      this.#groups.delete(id);
      this.#heldBack += group.repeats;
    }
  }

  #send(notification: AlertNotification): void {
    this.#sent++;
    try {
      const result = this.#notify(notification);
      if (typeof result === 'object' && result !== null && typeof result.then === 'function') {
        result.then(undefined, this.#onFailure);
      }
    } catch {
      this.#failed++;
    }
  }
}
