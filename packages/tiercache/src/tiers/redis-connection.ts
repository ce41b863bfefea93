/** How the Redis tier talks to ioredis: fail-fast options, reconnect backoff, connection states, hash slots. */
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { RemoteStatus } from '../types.js';

/** QUITs a ready connection, so the server sees it leave cleanly; drops any other (or one whose QUIT fails) at once. */
export async function quitOrDisconnect(connection: Redis | Cluster): Promise<void> {
  if (connection.status !== 'ready') {
    connection.disconnect();
    return;
  }
  try {
    await connection.quit();
  } catch {
    connection.disconnect();
  }
}

/**
 * Backoff between reconnect attempts: doubling from 50 ms, capped at `ceilingMs` (2 s), with full jitter on the upper
 * half so a fleet that lost Redis together does not reconnect in lockstep.
 */
export function reconnectDelay(attempt: number, random: () => number = Math.random, ceilingMs = 2000): number {
  const ceiling = Math.min(ceilingMs, 50 * 2 ** Math.min(attempt, 6));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Behind Sentinel every reconnect asks a sentinel where the master is, so the cap is what a cache may lag behind a
 * promotion: at 2 s a cache that began retrying when the master died could find the new one ~2 s late (measured: the
 * sentinels promote ~2.4 s after a SIGKILL with down-after 1000 ms). 500 ms costs a sentinel query and a refused
 * connect per attempt, which both answer at once.
 */
export const SENTINEL_RECONNECT_CEILING_MS = 500;

/** A master demoted under a client's feet answers writes with READONLY: reconnect, so the sentinels are asked again. */
function reconnectOnReadonly(error: Error): boolean {
  return error.message.startsWith('READONLY');
}

/**
 * What a connection through Sentinel needs on top of the fail-fast settings, unless the user chose: a sentinel query
 * bounded like a connect (ioredis leaves it unbounded, so a blackholed sentinel would hang the reconnect), the faster
 * reconnect above, and a reconnect on READONLY. Never a resend: `reconnectOnError` returns true (1), not 2.
 */
function sentinelDefaults(user: RedisOptions, connectTimeout: number): Partial<RedisOptions> {
  if (user.sentinels === undefined || user.sentinels === null) return {};
  return {
    sentinelCommandTimeout: connectTimeout,
    sentinelRetryStrategy: (attempt: number) => reconnectDelay(attempt, Math.random, SENTINEL_RECONNECT_CEILING_MS),
    retryStrategy: (attempt: number) => reconnectDelay(attempt, Math.random, SENTINEL_RECONNECT_CEILING_MS),
    reconnectOnError: reconnectOnReadonly,
  };
}

/**
 * The options that make ioredis fail fast, applied over whatever the user passed: no offline queue (measured: with
 * defaults a GET waits ~73 s for a dead server, forever on a blackholed socket), and no resend of in-flight commands
 * after a reconnect (a write the caller saw fail must not land later). The per-command timeout is the tier's own
 * (deadlines.ts), not ioredis' `commandTimeout`, which arms a timer per command. Sentinel options (`sentinels`,
 * `name`) get the settings of `sentinelDefaults` too.
 */
export function failFastOptions(user: RedisOptions, timeoutMs: number): Omit<RedisOptions, 'replyMapping'> {
  // The tier parses replies itself in the classic (RESP2-style) shapes, whatever the user's client prefers.
  // A commandTimeout of the user's is dropped too: the tier's own timeout bounds every call, with one timer for all.
  const { replyMapping: _replyMapping, commandTimeout: _commandTimeout, ...rest } = user;
  const connectTimeout = Math.max(1000, timeoutMs * 10);
  return {
    connectTimeout,
    // disconnect() arms a timer of this length to destroy a socket that does not close, even when the socket is long
    // dead (a refused connection): at the default 2 s, close() would leave a timer behind for 2 s.
    disconnectTimeout: 200,
    retryStrategy: reconnectDelay,
    ...sentinelDefaults(user, connectTimeout),
    ...rest,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: false,
  };
}

/**
 * ioredis' connection states as the cache needs them: a call made while a connection is being established waits for
 * it (within the timeout); one made while the client waits to retry, or after it gave up, is skipped at once.
 */
export function statusOf(status: string): RemoteStatus {
  if (status === 'ready') return 'ready';
  if (status === 'connecting' || status === 'connect') return 'connecting';
  return 'down';
}

export function isClient(value: unknown): value is Redis | Cluster {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Redis).pipeline === 'function' &&
    typeof (value as Redis).status === 'string'
  );
}

export function groupBySlot<T>(items: readonly T[], keyOf: (item: T) => string): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  items.forEach((item, index) => {
    const slot = calculateSlot(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(index);
    else groups.set(slot, [index]);
  });
  return groups;
}

/**
 * A cluster's commands grouped for the fewest round trips: by node (an ioredis Cluster pipeline may span the slots
 * that one set of nodes serves, not more), then by hash slot within it (one command's keys must share a slot). Until
 * the slot table is known, every slot is its own group.
 */
export function groupByNodeAndSlot<T>(
  cluster: Cluster,
  items: readonly T[],
  keyOf: (item: T) => string,
): Map<string, Map<number, number[]>> {
  const nodes = new Map<string, Map<number, number[]>>();
  items.forEach((item, index) => {
    const slot = calculateSlot(keyOf(item));
    const node = cluster.slots[slot]?.join(';') ?? `slot:${slot}`;
    let slots = nodes.get(node);
    if (slots === undefined) nodes.set(node, (slots = new Map()));
    const group = slots.get(slot);
    if (group) group.push(index);
    else slots.set(slot, [index]);
  });
  return nodes;
}

/** Every `[error, reply]` of a pipeline, with a missing reply as an error (an aborted or empty exec). */
export function repliesOf(results: [Error | null, unknown][] | null, count: number): [Error | null, unknown][] {
  const out = results ?? [];
  for (let i = out.length; i < count; i++) out.push([new Error('missing pipeline reply'), undefined]);
  return out;
}

/**
 * Points a data connection's client-side tracking at a subscriber connection, in one round trip: `OFF` first (a
 * connection still tracking for a gone subscriber is refused a second `ON` for the same prefix), then `ON` in BCAST
 * mode for `prefix`, redirected to `redirectId`, with NOLOOP. `bound` applies the caller's timeout. Throws what failed.
 */
export async function switchTrackingOn(
  connection: Redis,
  redirectId: string,
  prefix: string,
  bound: <T>(promise: Promise<T>) => Promise<T>,
): Promise<void> {
  const replies = await bound(
    connection
      .pipeline()
      .call('CLIENT', 'TRACKING', 'off')
      .call('CLIENT', 'TRACKING', 'on', 'REDIRECT', redirectId, 'BCAST', 'PREFIX', prefix, 'NOLOOP')
      .exec(),
  );
  if (replies === null || replies.length !== 2) throw new Error('empty pipeline reply');
  for (const [error] of replies) if (error) throw error;
}
