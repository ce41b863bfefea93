/**
 * Coherence: what a write or an invalidation anywhere does to this instance's memory tier — the bus, Redis' tracking
 * invalidations and their echoes, guards for reads and loads in flight, and the replay of invalidations after an
 * outage. Functions over the cache's shared state (core.ts); the facade calls them on its write path.
 */
import { performance } from 'node:perf_hooks';
import type { Core, ReadWatch } from '../core.js';
import { CacheError, ConnectionError } from '../errors.js';
import { DEFAULTS } from '../options.js';
import type { ResolvedOptions } from '../options.js';
import { isOutageError } from '../resilience/breaker.js';
import { lockKeyFor } from '../resilience/lock.js';
import type { RedisTier } from '../tiers/redis.js';
import type { RemoteTier } from '../types.js';
import { MAX_KEYS_PER_MESSAGE, decodeBusMessage, encodeBusMessage } from './messages.js';
import type { BusMessage } from './messages.js';
import type { PendingInvalidation } from './replay.js';
import { Subscriber } from './subscriber.js';
import { sharesTag, tagKeyFor } from './tags.js';

// ── coherence: what a write or an invalidation anywhere does to this instance's memory ────────────────────────────

/** How long an expected tracking echo of our own script write is waited for. */
const ECHO_WINDOW_MS = 2_000;

/** Our own script is about to write `value` at `fullKey`: its tracking invalidation will come back to us (see verifyEchoes). */
export function expectEcho(core: Core, fullKey: string, value: string): void {
  if (!core.trackingActive) return;
  const now = performance.now();
  if (core.echoes.size > 1000) for (const [key, echo] of core.echoes) if (echo.until < now) core.echoes.delete(key);
  const echo = core.echoes.get(fullKey);
  core.echoes.set(fullKey, { count: (echo?.count ?? 0) + 1, until: now + ECHO_WINDOW_MS, value });
}

export function cancelEcho(core: Core, fullKey: string): void {
  const echo = core.echoes.get(fullKey);
  if (echo === undefined) return;
  if (echo.count > 1) core.echoes.set(fullKey, { count: echo.count - 1, until: echo.until, value: echo.value });
  else core.echoes.delete(fullKey);
}

/** What our own script wrote, when this invalidation may be its echo (consumed); undefined when it is someone else's. */
export function consumeEcho(core: Core, fullKey: string): string | undefined {
  const echo = core.echoes.get(fullKey);
  if (echo === undefined) return undefined;
  cancelEcho(core, fullKey);
  return echo.until >= performance.now() ? echo.value : undefined;
}

/**
 * BCAST tracking reports a key once per turn of Redis' event loop, naming only its last writer: another client's write
 * in the same turn as our own script write arrives as the one message we took for our echo. So an echo is checked
 * against Redis (one MGET for the whole message, off the caller's path): the copy stays only if Redis still holds what
 * we wrote. A write after that check is reported in a message of its own.
 */
export function verifyEchoes(core: Core, remote: RemoteTier, echoed: ReadonlyMap<string, string>): void {
  const keys = [...echoed.keys()];
  const check = remote.getMany(keys).then(
    (current) =>
      dropKeys(
        core,
        keys.filter((key, i) => current[i] !== echoed.get(key)),
      ),
    () => dropKeys(core, keys),
  );
  core.background.add(check);
  void check.finally(() => core.background.delete(check));
}

/** A read of `fullKey` from Redis starts (see Core.reads). */
export function watchRead(core: Core, fullKey: string): ReadWatch {
  if (core.memory === undefined) return undefined;
  let mark = core.reads.get(fullKey);
  if (mark === undefined) {
    mark = { pending: 0, generation: 0 };
    core.reads.set(fullKey, mark);
  }
  mark.pending++;
  return { mark, generation: mark.generation, epoch: core.epoch };
}

/** The read ended: true when nothing invalidated the key meanwhile, so what it read may be kept in memory. */
export function endRead(core: Core, fullKey: string, watch: ReadWatch): boolean {
  if (watch === undefined) return true;
  const { mark } = watch;
  if (--mark.pending === 0 && core.reads.get(fullKey) === mark) core.reads.delete(fullKey);
  return mark.generation === watch.generation && core.epoch === watch.epoch;
}

export function invalidateReads(core: Core, fullKey: string): void {
  if (core.reads.size === 0) return;
  const mark = core.reads.get(fullKey);
  if (mark !== undefined) mark.generation++;
}

/** Drops memory copies of these keys, and keeps reads and loads of them in flight out of the tiers. */
export function dropKeys(core: Core, fullKeys: readonly string[]): void {
  for (const fullKey of fullKeys) {
    core.memory?.delete(fullKey);
    if (core.loading.size > 0) core.loading.delete(fullKey);
    invalidateReads(core, fullKey);
  }
}

export function dropTags(core: Core, prefix: string, tags: readonly string[]): void {
  core.epoch++;
  core.memory?.deleteWhere(prefix, (entry) => sharesTag(entry.tags, tags));
  for (const [fullKey, mark] of [...core.loading]) {
    if (fullKey.startsWith(prefix) && sharesTag(mark.tags, tags)) core.loading.delete(fullKey);
  }
}

export function dropPrefix(core: Core, prefix: string): void {
  core.epoch++;
  core.memory?.deleteByPrefix(prefix);
  for (const fullKey of [...core.loading.keys()]) if (fullKey.startsWith(prefix)) core.loading.delete(fullKey);
}

/** Invalidations may have been missed (the subscriber was down or silent): nothing in memory can be trusted. */
export function flushMemory(core: Core): void {
  core.counters.busResets++;
  core.epoch++;
  core.memory?.clear();
  core.loading.clear();
}

/** Publishes a bus message; best-effort (pub/sub is at-most-once anyway: resets and maxTtl cover a loss). */
export async function publish(core: Core, message: BusMessage): Promise<void> {
  const { remote, busChannel, counters } = core;
  if (remote === undefined || busChannel === undefined || !remote.available) return;
  try {
    await remote.publish(busChannel, encodeBusMessage(message));
    counters.busPublished++;
  } catch {
    counters.busPublishErrors++;
  }
}

/** Whether key changes must be published (the bus is on and Redis is not already telling everyone: no tracking). */
export function mustPublishKeys(core: Core): boolean {
  return core.busChannel !== undefined && !core.trackingActive;
}

/** Tells the other instances which keys changed, unless Redis already does (tracking). */
export async function publishKeys(core: Core, fullKeys: readonly string[]): Promise<void> {
  if (core.busChannel === undefined || core.trackingActive || fullKeys.length === 0) return;
  for (let i = 0; i < fullKeys.length; i += MAX_KEYS_PER_MESSAGE) {
    await publish(core, { kind: 'keys', from: core.instanceId, keys: fullKeys.slice(i, i + MAX_KEYS_PER_MESSAGE) });
  }
}

export function onBusMessage(core: Core, raw: string): void {
  const message = decodeBusMessage(raw, core.options.maxKeyLength + core.options.prefix.length + 512);
  if (message === undefined) {
    core.counters.busDropped++;
    return;
  }
  if (message.from === core.instanceId) return;
  core.counters.busReceived++;
  const root = core.options.prefix;
  switch (message.kind) {
    case 'keys':
      dropKeys(
        core,
        message.keys.filter((key) => key.startsWith(root)),
      );
      break;
    case 'tags':
      if (message.prefix.startsWith(root)) dropTags(core, message.prefix, message.tags);
      break;
    case 'clear':
      if (message.prefix.startsWith(root)) dropPrefix(core, message.prefix);
      break;
  }
}

/**
 * Replays queued invalidations once Redis answers again, oldest first; stops at the first outage and keeps the rest
 * queued. Returns the run in progress (started if needed), which resolves with the error that stopped it, if any.
 */
export function scheduleReplay(core: Core): Promise<CacheError | undefined> | undefined {
  const { replay, remote } = core;
  if (core.replaying !== undefined) return core.replaying;
  if (replay === undefined || remote === undefined || replay.size === 0 || core.closing) return undefined;
  const run = (async (): Promise<CacheError | undefined> => {
    while (replay.size > 0 && remote.available) {
      const batch = replay.take(500);
      try {
        await replayBatch(core, remote, batch);
        core.counters.replayed += batch.length;
      } catch (error) {
        for (const item of batch) replay.add(item);
        return error instanceof CacheError ? error : new ConnectionError(String(error), { cause: error });
      }
    }
    return undefined;
  })().finally(() => {
    core.replaying = undefined;
    core.background.delete(run);
  });
  core.replaying = run;
  core.background.add(run);
  return run;
}

/**
 * One replayed command. An error about the command itself (a tag key overwritten with another type) would fail every
 * retry alike and hold up every call behind the replay: that one is skipped. Outages are thrown, to retry later.
 */
export async function replayStep(step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (isOutageError(error)) throw error;
  }
}

export async function replayBatch(
  core: Core,
  remote: RemoteTier,
  batch: readonly PendingInvalidation[],
): Promise<void> {
  const keys: { prefix: string; fullKey: string }[] = [];
  for (const item of batch) {
    if (item.kind === 'key') keys.push(item);
    else if (item.kind === 'tag') {
      await replayStep(() =>
        remote.invalidateTags([tagKeyFor(item.prefix, item.tag)], (member) => lockKeyFor(item.prefix, member)),
      );
      await publish(core, { kind: 'tags', from: core.instanceId, prefix: item.prefix, tags: [item.tag] });
    } else {
      await replayStep(() => remote.deleteByPrefix(item.prefix));
      await publish(core, { kind: 'clear', from: core.instanceId, prefix: item.prefix });
    }
  }
  if (keys.length > 0) {
    await replayStep(() =>
      remote.deleteMany(
        keys.map((k) => k.fullKey),
        keys.map((k) => lockKeyFor(k.prefix, k.fullKey)),
      ),
    );
    // Published even with tracking on: instances that kept copies through the outage must hear of these now.
    for (let i = 0; i < keys.length; i += MAX_KEYS_PER_MESSAGE) {
      const chunk = keys.slice(i, i + MAX_KEYS_PER_MESSAGE).map((k) => k.fullKey);
      await publish(core, { kind: 'keys', from: core.instanceId, keys: chunk });
    }
  }
}

/**
 * The cache's pub/sub connection: lock wake-ups, the bus, and Redis' tracking invalidations. Tracking is switched on
 * for the data connection once the subscriber's client id is known, and again after either connection reconnects;
 * every reconnect flushes memory, since invalidations sent meanwhile were lost.
 */
export function connectSubscriber(core: Core, remote: RedisTier, bus: ResolvedOptions['bus']): Subscriber {
  const { counters, options } = core;
  const tracking = bus !== false && bus.tracking && !remote.isCluster;
  let subscriberId: number | undefined;
  // 'never' until tracking first comes on: from then on (or after a failed attempt), memory is flushed every time it
  // comes on, since writes made while it was off were reported to nobody here (the other instances, tracking, do not
  // publish key messages).
  let trackingHistory: 'never' | 'failed' | 'was-on' = 'never';
  let enabling = false;
  const enableTracking = (): void => {
    if (!tracking || subscriberId === undefined || core.closing || enabling) return;
    const id = subscriberId;
    enabling = true;
    remote.enableTracking(id, options.prefix).then(
      (enabled) => {
        enabling = false;
        if (!enabled || subscriberId !== id) return;
        if (trackingHistory !== 'never') flushMemory(core);
        trackingHistory = 'was-on';
        core.trackingActive = true;
      },
      () => {
        enabling = false;
        core.trackingActive = false;
        if (trackingHistory === 'never') trackingHistory = 'failed';
        counters.connectionErrors++;
      },
    );
  };
  let dataReadyBefore = false;
  remote.onReady(() => {
    // A reconnect of the data connection lost its tracking state and maybe invalidations: flush, re-enable, replay.
    if (dataReadyBefore) {
      core.trackingActive = false;
      flushMemory(core);
    }
    dataReadyBefore = true;
    enableTracking();
    void scheduleReplay(core);
  });
  const channels = [core.loadedChannel, ...(core.busChannel === undefined ? [] : [core.busChannel])];
  return new Subscriber(remote.client, {
    channels,
    tracking,
    heartbeatMs: bus === false ? DEFAULTS.bus.heartbeatMs : bus.heartbeatMs,
    timeoutMs: Math.max(options.redisTimeoutMs * 5, 500),
    onMessage: (channel, message) => {
      if (channel === core.loadedChannel) core.waiters.signal(message);
      else if (channel === core.busChannel) onBusMessage(core, message);
    },
    onInvalidate: (keys) => {
      if (keys === null) return flushMemory(core);
      counters.trackingInvalidations += keys.length;
      const foreign: string[] = [];
      let echoed: Map<string, string> | undefined;
      for (const key of keys) {
        if (!key.startsWith(options.prefix)) continue;
        const written = consumeEcho(core, key);
        if (written === undefined) foreign.push(key);
        else (echoed ??= new Map()).set(key, written);
      }
      dropKeys(core, foreign);
      if (echoed !== undefined) verifyEchoes(core, remote, echoed);
    },
    onSubscribed: (clientId, resubscribed) => {
      subscriberId = clientId;
      core.subscriberReady = true;
      if (resubscribed && core.busChannel !== undefined) flushMemory(core);
      core.trackingActive = false;
      enableTracking();
    },
    // Redis answers: invalidations queued during an outage go now, even if this instance makes no call of its own.
    onAlive: () => {
      // Tracking that could not be switched on (a timeout, a refusal) is tried again rather than left off for good.
      if (!core.trackingActive) enableTracking();
      void scheduleReplay(core);
    },
    onSilent: () => {
      core.trackingActive = false;
      core.subscriberReady = false;
      if (core.busChannel !== undefined) flushMemory(core);
    },
    onError: () => {
      counters.connectionErrors++;
    },
  });
}
