import { ConfigurationError, describeValue } from '../errors.js';
import { httpUrl, toMs, warnLogger } from '../options.js';
import type { Duration } from '../types.js';
import { EVICT_DEFAULTS } from './core.js';
import { FailureStreak, attempt, consoleLogger, redactUrl } from './post.js';
import type { OutboundLogger, PostOutcome } from './post.js';

export interface InvalidationClientOptions {
  /**
   * The evict endpoint, e.g. `http://api.internal:3000/internal/cache`. Unset or empty: the client is disabled and
   * every call resolves `{ ok: false, error: 'disabled' }` (one line is logged, once), so a job can run where no API
   * is deployed.
   */
  readonly url?: string | undefined;
  /** The shared key. Required when `url` is set. Never logged. */
  readonly key?: string | undefined;
  /**
   * The header that carries the key.
   * @default 'x-internal-key'
   */
  readonly header?: string;
  /**
   * Longest time one `evict` call takes, retries and backoff included; the call resolves by then whatever the
   * network does.
   * @default '2s'
   */
  readonly timeout?: Duration;
  /**
   * Further attempts after a network error or a 5xx (a 4xx is final: sending it again would not help).
   * @default 1
   */
  readonly retries?: number;
  /** Where failures are reported: the first of a streak, and the recovery. @default console */
  readonly logger?: OutboundLogger;
}

/** What to evict. Same contract as the endpoint's body. */
export interface EvictBody {
  readonly keys?: readonly string[];
  readonly tags?: readonly string[];
  readonly all?: boolean;
}

export interface InvalidationClient {
  /** Sends one eviction. Never throws and never rejects: the outcome says what happened. */
  evict(body: EvictBody): Promise<PostOutcome>;
  /** False when no URL was configured. */
  readonly enabled: boolean;
}

export const CLIENT_DEFAULTS = {
  /** ms */
  timeout: 2000,
  retries: 1,
  /** ms before the first retry; doubled for each further one. */
  backoff: 100,
} as const;

const MAX_RETRIES = 5;

/**
 * The client a batch job uses to tell the API to drop what the job just rewrote. Best-effort by design: the job's own
 * work is done when it calls this, and a cache that misses the eviction still expires by TTL, so a failure is
 * reported (`{ ok: false }`, one warning per failure streak) and never thrown.
 *
 * Throws `ConfigurationError` at construction for options that can never work (a malformed URL, a URL without a key),
 * so a misconfiguration shows at startup rather than as a warning at the end of a run.
 */
export function createInvalidationClient(options: InvalidationClientOptions = {}): InvalidationClient {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigurationError(`Expected the client options to be an object, got ${describeValue(options)}`);
  }
  const timeoutMs = options.timeout === undefined ? CLIENT_DEFAULTS.timeout : toMs('timeout', options.timeout);
  const retries = options.retries ?? CLIENT_DEFAULTS.retries;
  if (!Number.isSafeInteger(retries) || retries < 0 || retries > MAX_RETRIES) {
    throw new ConfigurationError(
      `Expected \`retries\` to be an integer from 0 to ${MAX_RETRIES}, got ${describeValue(retries)}`,
    );
  }
  const header = options.header ?? EVICT_DEFAULTS.header;
  if (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(header)) {
    throw new ConfigurationError(`Expected \`header\` to be an HTTP header name, got ${describeValue(header)}`);
  }
  const logger = warnLogger('logger', options.logger ?? consoleLogger);

  if (options.url === undefined || options.url === '') {
    let told = false;
    return {
      enabled: false,
      evict: () => {
        if (!told) {
          told = true;
          try {
            logger.warn('tiercache: cache invalidation is disabled (no URL configured); evictions are skipped');
          } catch {
            // Best-effort, like the rest of the client.
          }
        }
        return Promise.resolve({ ok: false, error: 'disabled' });
      },
    };
  }

  const url = httpUrl('url', options.url);
  const key = options.key;
  if (typeof key !== 'string' || key.length === 0) {
    throw new ConfigurationError('Expected `key` to be a non-empty string when `url` is set');
  }

  const target = url.href;
  const streak = new FailureStreak(logger, `tiercache: cache invalidation at ${redactUrl(url)}`);
  const headers = { 'content-type': 'application/json', [header]: key };

  return {
    enabled: true,
    async evict(body) {
      let payload: string;
      try {
        payload = JSON.stringify(body);
      } catch (cause) {
        return { ok: false, error: `unencodable body: ${cause instanceof Error ? cause.message : String(cause)}` };
      }
      const outcome = await send(target, { method: 'DELETE', headers, body: payload }, timeoutMs, retries);
      if (outcome.ok) streak.succeeded();
      else streak.failed(outcome.status === undefined ? (outcome.error ?? 'error') : `HTTP ${outcome.status}`);
      return outcome;
    },
  };
}

/** Sends with retries on network errors and 5xx, within one overall deadline. */
async function send(target: string, init: RequestInit, timeoutMs: number, retries: number): Promise<PostOutcome> {
  const deadline = performance.now() + timeoutMs;
  let last: PostOutcome = { ok: false, error: 'timeout' };
  for (let tries = 0; tries <= retries; tries++) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) break;
    const result = await attempt(target, init, remaining);
    if ('error' in result) {
      last = { ok: false, error: result.error };
    } else if (result.status >= 200 && result.status < 300) {
      return { ok: true, status: result.status };
    } else {
      last = result.detail
        ? { ok: false, status: result.status, error: result.detail }
        : { ok: false, status: result.status };
      if (result.status < 500) return last;
    }
    if (tries === retries) break;
    // Jittered so that the jobs of a fleet do not retry in step against an API that is restarting.
    const pause = CLIENT_DEFAULTS.backoff * 2 ** tries * (0.5 + Math.random() / 2);
    if (deadline - performance.now() <= pause) break;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
  return last;
}
