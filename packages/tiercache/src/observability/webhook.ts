/**
 * `tiercache/alerts`: a webhook notifier for the cache's `alerts.notify` (Slack incoming webhooks, or any endpoint that
 * takes JSON), and the alert types.
 */
import { hostname } from 'node:os';
import { ConfigurationError, describeValue } from '../errors.js';
import { FailureStreak, attempt, consoleLogger } from '../http/post.js';
import type { OutboundLogger } from '../http/post.js';
import { httpUrl, positiveInteger, toMs, warnLogger } from '../options.js';
import type { Duration } from '../types.js';
import type { AlertKind, AlertNotification } from './alerts.js';

export { ALERT_DEFAULTS, AlertGate } from './alerts.js';
export type {
  Alert,
  AlertDecision,
  AlertKind,
  AlertNotification,
  AlertNotify,
  AlertOptions,
  AlertStats,
} from './alerts.js';
export type { OutboundLogger } from '../http/post.js';

export interface WebhookNotifierOptions {
  /** Where to POST. For Slack, the incoming-webhook URL (it is a secret: only its origin is ever logged). */
  readonly url: string;
  /**
   * Longest time one POST may take; the returned promise resolves by then.
   * @default '3s'
   */
  readonly timeout?: Duration;
  /**
   * `'slack'`: `{ text, blocks }`, what Slack incoming webhooks (and Mattermost, Rocket.Chat) accept. `'json'`: the
   * alert as a flat JSON object, for your own receiver.
   * @default 'slack'
   */
  readonly format?: 'slack' | 'json';
  /** Extra request headers, e.g. an authorization header for your own receiver. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Where the alert comes from, shown in it.
   * @default os.hostname()
   */
  readonly label?: string;
  /**
   * Most POSTs in flight at once; alerts beyond it are dropped and counted, so a hung receiver cannot pile up
   * requests.
   * @default 4
   */
  readonly maxInFlight?: number;
  /** Where failures are reported: the first of a streak, and the recovery. @default console */
  readonly logger?: OutboundLogger;
}

export interface WebhookStats {
  /** POSTs answered with a 2xx. */
  readonly sent: number;
  /** POSTs that failed: network error, timeout, or a status other than 2xx. */
  readonly failed: number;
  /** Alerts not posted because `maxInFlight` POSTs were already running. */
  readonly dropped: number;
  readonly inFlight: number;
}

/** A `notify` function for `alerts.notify`, with its counters. The promise it returns never rejects. */
export interface WebhookNotifier {
  (alert: AlertNotification): Promise<void>;
  readonly stats: WebhookStats;
}

export const WEBHOOK_DEFAULTS = {
  /** ms */
  timeout: 3000,
  format: 'slack',
  maxInFlight: 4,
} as const;

export function createWebhookNotifier(options: WebhookNotifierOptions): WebhookNotifier {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`Expected the webhook options to be an object, got ${describeValue(options)}`);
  }
  const url = httpUrl('url', options.url);
  const timeoutMs = options.timeout === undefined ? WEBHOOK_DEFAULTS.timeout : toMs('timeout', options.timeout);
  const format = options.format ?? WEBHOOK_DEFAULTS.format;
  // Node loads its fetch implementation on first use, synchronously (120–400 ms measured here): pay that now, at
  // start-up, rather than on the request that reports the first alert.
  void new Request(url);
  if (format !== 'slack' && format !== 'json') {
    throw new ConfigurationError(`Expected \`format\` to be 'slack' or 'json', got ${describeValue(format)}`);
  }
  const maxInFlight = positiveInteger('maxInFlight', options.maxInFlight ?? WEBHOOK_DEFAULTS.maxInFlight);
  const logger = warnLogger('logger', options.logger ?? consoleLogger);
  const label = options.label ?? hostname();
  const headers = { ...options.headers, 'content-type': 'application/json' };
  const target = url.href;
  // Only the origin: for Slack the path is the secret.
  const streak = new FailureStreak(logger, `tiercache: alert webhook at ${url.origin}`);

  let sent = 0;
  let failed = 0;
  let dropped = 0;
  let inFlight = 0;

  const notify = async (alert: AlertNotification): Promise<void> => {
    if (inFlight >= maxInFlight) {
      dropped++;
      return;
    }
    inFlight++;
    try {
      const payload = JSON.stringify(format === 'slack' ? slackPayload(alert, label) : jsonPayload(alert, label));
      const result = await attempt(target, { method: 'POST', headers, body: payload }, timeoutMs);
      if ('status' in result && result.status >= 200 && result.status < 300) {
        sent++;
        streak.succeeded();
      } else {
        failed++;
        streak.failed('error' in result ? result.error : `HTTP ${result.status}`);
      }
    } catch (cause) {
      failed++;
      streak.failed(cause instanceof Error ? cause.message : String(cause));
    } finally {
      inFlight--;
    }
  };
  Object.defineProperty(notify, 'stats', {
    enumerable: true,
    get: (): WebhookStats => ({ sent, failed, dropped, inFlight }),
  });
  return notify as WebhookNotifier;
}

const TITLES: Record<AlertKind, string> = {
  'redis-error': 'Redis error',
  'breaker-open': 'Circuit breaker open: Redis is skipped, reads go to the origin',
  'breaker-half-open': 'Circuit breaker half-open: probing Redis',
  'breaker-close': 'Circuit breaker closed: Redis is back',
};

/** Slack treats `&`, `<` and `>` as markup; keys and messages are data. */
function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function summary(alert: AlertNotification): string {
  const parts: string[] = [];
  if (alert.repeats > 0) parts.push(`${alert.repeats} more like it since the last alert`);
  if (alert.suppressed > 0) parts.push(`${alert.suppressed} other alerts held back`);
  return parts.length === 0 ? '' : ` (${parts.join('; ')})`;
}

function describeError(error: unknown): { name: string; message: string; code?: string } | undefined {
  if (error === undefined) return undefined;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: typeof error, message: String(error) };
}

/** A clock that returns garbage must not cost the alert. */
function isoTime(time: number): string {
  return Number.isFinite(time) && Math.abs(time) <= 8.64e15 ? new Date(time).toISOString() : String(time);
}

export function slackPayload(alert: AlertNotification, label: string): { text: string; blocks: unknown[] } {
  const on = alert.key === undefined ? '' : ` on key \`${escapeSlack(alert.key)}\``;
  const text = `:rotating_light: [tiercache] ${TITLES[alert.kind]}${on}: ${escapeSlack(alert.message)}${summary(alert)}`;
  const code = describeError(alert.error)?.code;
  const context = [escapeSlack(label), alert.kind, isoTime(alert.time), ...(code ? [code] : [])];
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } },
      { type: 'context', elements: [{ type: 'mrkdwn', text: context.join(' · ') }] },
    ],
  };
}

export function jsonPayload(alert: AlertNotification, label: string): Record<string, unknown> {
  const error = describeError(alert.error);
  return {
    source: 'tiercache',
    label,
    kind: alert.kind,
    ...(alert.key === undefined ? {} : { key: alert.key }),
    message: alert.message,
    ...(error === undefined ? {} : { error }),
    time: isoTime(alert.time),
    repeats: alert.repeats,
    suppressed: alert.suppressed,
  };
}
