/** Small shared pieces of the integration tests: raw clients, unique prefixes, polling, timing. */
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';

let counter = 0;

/** A prefix no other test (in this file, another file or an earlier run) uses. Ends in `:`. */
export function uniquePrefix(label: string): string {
  counter++;
  return `it:${process.pid}:${Date.now().toString(36)}:${counter}:${label}:`;
}

const clients = new Set<Redis>();

/**
 * A plain ioredis client for setting up and inspecting state behind the cache's back. It fails fast like the cache's
 * own, so a test against a dead server fails instead of hanging. Close them all with `closeRawClients()`.
 */
export async function rawClient(port: number, options: Pick<RedisOptions, 'keyPrefix'> = {}): Promise<Redis> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    ...options,
  });
  client.on('error', () => {});
  clients.add(client);
  await client.connect();
  return client;
}

export async function closeRawClients(): Promise<void> {
  await Promise.all(
    [...clients].map(async (client) => {
      clients.delete(client);
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    }),
  );
}

/** `INFO commandstats` as command → calls. */
export async function commandCalls(client: Redis): Promise<Map<string, number>> {
  const info = await client.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

/** How many more calls each command had in `after` than in `before`; commands with no change are left out. */
export function callDeltas(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0);
    if (delta !== 0) out[command] = delta;
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 20 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Runs `fn` and returns its value with the wall time it took, in ms. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

/**
 * Records unhandled rejections while installed. The cache promises that none ever happens, so tests install this and
 * assert the list is empty; vitest would also fail the run, but without saying which test caused it.
 */
export function trackUnhandledRejections(): { readonly reasons: unknown[]; dispose(): void } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown) => reasons.push(reason);
  process.on('unhandledRejection', listener);
  return { reasons, dispose: () => process.off('unhandledRejection', listener) };
}
