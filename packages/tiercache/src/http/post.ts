/**
 * The best-effort HTTP call shared by the invalidation client and the webhook notifier: one JSON request over the
 * global `fetch`, bounded by a deadline, that reports its outcome instead of throwing.
 */

/** What an outbound call reports. `status` is there whenever a response arrived. */
export type PostOutcome =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly status?: number; readonly error?: string };

export interface OutboundLogger {
  warn(message: string): void;
  /** Used, when present, for the one line that says calls work again after a failure streak. */
  info?(message: string): void;
}

export const consoleLogger: OutboundLogger = {
  warn: (message) => console.warn(message),
  info: (message) => console.info(message),
};

/** One attempt: a status (with a short excerpt of the body on failures), or the reason no response came. */
type Attempt = { readonly status: number; readonly detail: string } | { readonly error: string };

/** Characters of a failed response's body kept for the error message. */
const DETAIL_CHARS = 200;

export async function attempt(url: string, init: RequestInit, timeoutMs: number): Promise<Attempt> {
  const signal = AbortSignal.timeout(Math.max(1, Math.round(timeoutMs)));
  try {
    const response = await fetch(url, { ...init, signal, redirect: 'manual' });
    let detail = '';
    if (response.ok) await response.body?.cancel();
    else detail = await readDetail(response);
    return { status: response.status, detail };
  } catch (cause) {
    return { error: describeFailure(cause) };
  }
}

/**
 * The message of a JSON error body — `{ "error": "…" }` (the evict endpoint's default) or `{ "error": { "message":
 * "…" } }` (a host application's shape, see the endpoint's `errorBody`) — or the start of the text.
 */
async function readDetail(response: Response): Promise<string> {
  try {
    const text = (await response.text()).slice(0, 4096);
    try {
      const parsed: unknown = JSON.parse(text);
      const failure: unknown = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? parsed.error : null;
      if (typeof failure === 'string') return failure.slice(0, DETAIL_CHARS);
      if (typeof failure === 'object' && failure !== null && 'message' in failure) {
        if (typeof failure.message === 'string') return failure.message.slice(0, DETAIL_CHARS);
      }
    } catch {
      // Not JSON: the raw text below.
    }
    return text.slice(0, DETAIL_CHARS);
  } catch {
    return '';
  }
}

/** `timeout`, or the network error's code (`ECONNREFUSED`), or the error's message. */
export function describeFailure(cause: unknown): string {
  if (cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError')) return 'timeout';
  const inner: unknown = cause instanceof Error ? cause.cause : undefined;
  if (typeof inner === 'object' && inner !== null && 'code' in inner && typeof inner.code === 'string') {
    return inner.code;
  }
  if (inner instanceof Error) return inner.message;
  return cause instanceof Error ? cause.message : String(cause);
}

/** A URL fit for a log line: no credentials, no query string (either may hold a secret). */
export function redactUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/**
 * Logs the first failure of a streak and the recovery after it, not every failure: a batch job that calls a dead
 * endpoint ten thousand times writes one warning, not ten thousand.
 */
export class FailureStreak {
  readonly #logger: OutboundLogger;
  readonly #label: string;
  #failures = 0;

  constructor(logger: OutboundLogger, label: string) {
    this.#logger = logger;
    this.#label = label;
  }

  get failing(): boolean {
    return this.#failures > 0;
  }

  failed(reason: string): void {
    if (this.#failures++ > 0) return;
    this.#log('warn', `${this.#label} failed (${reason}); further failures are not logged until a call succeeds`);
  }

  succeeded(): void {
    if (this.#failures === 0) return;
    const failures = this.#failures;
    this.#failures = 0;
    this.#log('info', `${this.#label} works again after ${failures} failed call${failures === 1 ? '' : 's'}`);
  }

  #log(level: 'warn' | 'info', message: string): void {
    try {
      this.#logger[level]?.(message);
    } catch {
      // A broken logger must not turn a best-effort call into a thrown one.
    }
  }
}
