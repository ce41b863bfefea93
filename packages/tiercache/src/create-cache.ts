/**
 * The composition root: validates the options, builds the parts and wires them. The only module that knows the
 * concrete classes; everything below it is written against the contracts in types.ts and the parts' own APIs.
 */
import { randomBytes } from 'node:crypto';
import type { Cache } from './cache/contract.js';
import { TierCache } from './cache/facade.js';
import { LoadCoordinator } from './cache/load-coordinator.js';
import { LoaderRunner } from './cache/loader-runner.js';
import { ReadPath } from './cache/read-path.js';
import type { Reporter } from './cache/view.js';
import { WritePath } from './cache/write-path.js';
import { EntryCodec } from './entry.js';
import type { Entry } from './entry.js';
import { CacheTimeoutError, SerializationError } from './errors.js';
import { Bus, connectSubscriber } from './invalidation/bus.js';
import { Coherence } from './invalidation/coherence.js';
import { ReplayQueue, Replayer } from './invalidation/replay.js';
import { AlertGate } from './observability/alerts.js';
import type { Alert } from './observability/alerts.js';
import { Emitter } from './observability/events.js';
import { Instruments } from './observability/instruments.js';
import { HitClock } from './cache/hit-clock.js';
import { Counters } from './observability/stats.js';
import { DEFAULTS } from './options.js';
import { validateOptions } from './resolve-options.js';
import type { CacheOptions, ResolvedOptions } from './options.js';
import { CircuitBreaker, validateBreakerOptions } from './resilience/breaker.js';
import { LockWaiters } from './resilience/lock.js';
import { remoteRunner } from './strategies/context.js';
import { Strategies } from './strategies/registry.js';
import { BackgroundTasks } from './tasks.js';
import { TurnBatcher } from './tiers/batcher.js';
import { LruMemoryTier } from './tiers/memory.js';
import { RedisTier } from './tiers/redis.js';
import { RemoteAccessor } from './tiers/remote-accessor.js';
import { systemClock } from './types.js';
import type { Clock, MemoryTier, RemoteTier, SubscriberHandle } from './types.js';

/** How long close() waits for loads and refreshes in flight before closing connections under them. */
const CLOSE_WAIT_MS = 1_000;
/** How long close() spends writing what write-behind queues hold and flushing counters, before anything else. */
const STRATEGIES_CLOSE_MS = 5_000;
/**
 * `breaker.openMs` on a Redis Cluster unless the user set it, in ms. One shard's failover trips the breaker, which is
 * per cache, and an open breaker skips the healthy shards too: with the general default (10 s) Redis hits came back
 * up to 10 s after the promotion. A probe a second while everything is down is the price.
 */
const CLUSTER_BREAKER_OPEN_MS = 1_000;

/** A tier object passed as `redis` (tiercache/testing's in-memory and chaos tiers), told apart from ioredis options. */
function isRemoteTier(value: unknown): value is RemoteTier {
  const tier = value as Partial<RemoteTier> | null;
  return (
    typeof tier === 'object' &&
    tier !== null &&
    typeof tier.setLoaded === 'function' &&
    typeof tier.acquireLock === 'function' &&
    typeof tier.write === 'function' &&
    typeof tier.available === 'boolean'
  );
}

/** Every Redis error and breaker transition goes through the alert gate: a cooldown per kind and key, a cap on keys. */
function reporter(counters: Counters, events: Emitter, alert: (alert: Alert) => void): Reporter {
  return (asked, key, error) => {
    // A lock step is part of a read, for the people reading the events.
    const operation = asked === 'lock' ? 'get' : asked;
    if (operation === 'decode') counters.decodeErrors++;
    else if (error instanceof SerializationError) counters.uncached++;
    else {
      counters.redisErrors++;
      if (error instanceof CacheTimeoutError) counters.redisTimeouts++;
      const message = `${operation}: ${error.message}`;
      alert(key === undefined ? { kind: 'redis-error', message, error } : { kind: 'redis-error', key, message, error });
    }
    events.emit('error', { operation, key, error });
  };
}

function buildRemote(
  resolved: ResolvedOptions,
  counters: Counters,
  events: Emitter,
  alert: (alert: Alert) => void,
): { readonly tier: RemoteTier; readonly owned: boolean } | undefined {
  if (resolved.redis === undefined) return undefined;
  // A tier passed in (a testing tier) belongs to the caller, like a Redis client passed in.
  if (isRemoteTier(resolved.redis)) return { tier: resolved.redis, owned: false };
  const tier = new RedisTier(resolved.redis, {
    timeoutMs: resolved.redisTimeoutMs,
    onConnectionError: (error) => {
      counters.connectionErrors++;
      events.emit('error', { operation: 'connection', key: undefined, error });
      // Keyless, so the gate's cooldown deduplicates a reconnect loop into one alert.
      alert({ kind: 'redis-error', message: `connection: ${error.message}`, error });
    },
  });
  return { tier, owned: true };
}

/**
 * On a Redis Cluster a batch of 32 keys (the default) reaches each master as ~10: a batch is split per node anyway, and
 * the nodes answer in parallel. 96 keeps ~32 per master of a 3-master cluster (measured, C1: 0.85× ioredis Cluster at
 * 32, 0.96× at 96, 0.91× at 1000).
 */
const CLUSTER_BATCH_KEYS = 96;

/** The defaults that differ on a Redis Cluster (breaker.openMs, batching.maxKeys), each unless the user set it. */
function clusterDefaults(
  resolved: ResolvedOptions,
  tier: RemoteTier | undefined,
  options: CacheOptions,
): ResolvedOptions {
  if (!(tier instanceof RedisTier && tier.isCluster)) return resolved;
  const { breaker, batching } = resolved;
  const ownOpenMs = typeof options.breaker === 'object' && options.breaker.openMs !== undefined;
  const ownMaxKeys = typeof options.batching === 'object' && options.batching.maxKeys !== undefined;
  return {
    ...resolved,
    breaker: breaker === false || ownOpenMs ? breaker : { ...breaker, openMs: CLUSTER_BREAKER_OPEN_MS },
    batching: batching === false || ownMaxKeys ? batching : { ...batching, maxKeys: CLUSTER_BATCH_KEYS },
  };
}

function wireBreaker(breaker: CircuitBreaker, events: Emitter, alert: (alert: Alert) => void): void {
  breaker.on('open', (t) => {
    events.emit('breaker:open', t);
    alert({ kind: 'breaker-open', message: `Redis circuit breaker opened (${t.reason})` });
  });
  breaker.on('half-open', (t) => {
    events.emit('breaker:half-open', t);
    alert({ kind: 'breaker-half-open', message: 'Redis circuit breaker half-open' });
  });
  breaker.on('close', (t) => {
    events.emit('breaker:close', t);
    alert({ kind: 'breaker-close', message: 'Redis circuit breaker closed' });
  });
}

function memoryTier(resolved: ResolvedOptions): MemoryTier<Entry> | undefined {
  if (resolved.memory === false) return undefined;
  const { maxEntries, maxBytes } = resolved.memory;
  return new LruMemoryTier<Entry>({ maxEntries, maxBytes, root: resolved.prefix });
}

/** Creates a cache. Throws `ConfigurationError` for invalid options; never waits for Redis. */
export function createCache(options: CacheOptions = {}): Cache {
  const resolved = validateOptions(options);
  const clock: Clock = resolved.clock ?? systemClock;
  const hitClock = new HitClock(resolved.clock);
  const counters = new Counters(resolved.prefix);
  const events = new Emitter();
  const instruments = new Instruments({
    enabled: resolved.instrumentation,
    prefix: resolved.prefix,
    maxGroups: resolved.maxKeyGroups,
    keyGroup: resolved.keyGroup,
    // An injected clock times loads too, so tests measure the fake time they advance.
    now: resolved.clock === undefined ? () => performance.now() : () => clock.now(),
  });
  const gate = resolved.alerts === undefined ? undefined : new AlertGate(resolved.alerts, clock);
  const alert = (payload: Alert): void => {
    gate?.report(payload);
  };
  const report = reporter(counters, events, alert);
  // Validated whether or not Redis is configured, and before any connection is opened.
  if (resolved.breaker !== false) validateBreakerOptions(resolved.breaker);
  const memory = memoryTier(resolved);
  const remote = buildRemote(resolved, counters, events, alert);
  const { breaker: breakerSettings, batching } = clusterDefaults(resolved, remote?.tier, options);
  const breaker =
    remote === undefined || breakerSettings === false ? undefined : new CircuitBreaker(breakerSettings, clock);
  if (breaker !== undefined) wireBreaker(breaker, events, alert);

  const state: { closing: Promise<void> | undefined } = { closing: undefined };
  const isClosing = (): boolean => state.closing !== undefined;
  const tasks = new BackgroundTasks();
  const waiters = new LockWaiters();
  const coherence = new Coherence(memory, counters);
  const codec = new EntryCodec(resolved.maxValueBytes);
  const busSettings = remote === undefined ? false : resolved.bus;
  const lockTtlMs = resolved.lock === false ? DEFAULTS.lock.ttlMs : resolved.lock.ttlMs;
  const instanceId = randomBytes(9).toString('base64url');

  const accessor =
    remote === undefined
      ? undefined
      : new RemoteAccessor({
          tier: remote.tier,
          policy: breaker,
          timeoutMs: resolved.redisTimeoutMs,
          counters,
          report,
          onTransition: (up, error) => {
            const at = clock.now();
            if (up) events.emit('redis:up', { at });
            else events.emit('redis:down', { at, error });
          },
          instruments,
        });
  const batcher =
    accessor === undefined
      ? undefined
      : new TurnBatcher({
          accessor,
          limits: batching,
          lockTtlMs,
          // Without memory there is no copy for an echo to drop; without tracking no echo comes back.
          // With tracking on or being set up, plain SETs: NOLOOP keeps their invalidations from our own copies.
          scripted: () => memory === undefined || !(coherence.trackingActive || coherence.trackingWanted),
          report,
          instruments,
        });
  const bus =
    remote === undefined
      ? undefined
      : new Bus({
          tier: remote.tier,
          channel: busSettings === false ? undefined : `${resolved.prefix}__bus`,
          instanceId,
          root: resolved.prefix,
          maxKeyLength: resolved.maxKeyLength + resolved.prefix.length + 512,
          coherence,
          counters,
        });
  const replayer =
    remote === undefined || bus === undefined || busSettings === false
      ? undefined
      : new Replayer({
          tier: remote.tier,
          queue: new ReplayQueue(busSettings.replayMax),
          bus,
          counters,
          tasks,
          isClosing,
        });
  if (accessor !== undefined && replayer !== undefined) {
    accessor.useReplay(
      () => replayer.pending,
      () => replayer.schedule(),
      () => {
        if (replayer.queue.size > 0) void replayer.schedule();
      },
    );
    breaker?.on('close', () => void replayer.schedule());
  }

  const remember = (fullKey: string, entry: Entry, size: number, now: number): void => {
    if (memory === undefined || resolved.memory === false) return;
    instruments.tag(fullKey, entry);
    memory.set(fullKey, entry, size, Math.min(entry.graceUntil, now + resolved.memory.maxTtl));
  };
  const loadedChannel = `${resolved.prefix}__loaded`;
  const reads = new ReadPath({
    memory,
    batcher,
    lockRemote: accessor,
    coherence,
    codec,
    clock,
    hitClock,
    counters,
    report,
    remember,
    instruments,
  });
  const writes = new WritePath({
    options: resolved,
    memory,
    batcher,
    accessor,
    coherence,
    bus: busSettings === false ? undefined : bus,
    replay: replayer?.queue,
    codec,
    clock,
    counters,
    events,
    tasks,
    report,
    remember,
    loadedChannel,
  });
  const strategies = new Strategies({
    remote: remoteRunner(accessor),
    clock,
    rootPrefix: resolved.prefix,
    instanceId,
    report,
  });
  const runner = new LoaderRunner({ counters, clock, coherence, lockTtlMs, instruments });
  const loads = new LoadCoordinator({
    options: resolved,
    reads,
    writes,
    runner,
    accessor,
    waiters,
    clock,
    counters,
    tasks,
    isClosing,
    instruments,
  });

  let subscriber: SubscriberHandle | undefined;
  if (remote !== undefined && bus !== undefined && (busSettings !== false || resolved.lock !== false)) {
    subscriber = connectSubscriber({
      tier: remote.tier,
      bus,
      coherence,
      counters,
      waiters,
      tasks,
      loadedChannel,
      root: resolved.prefix,
      tracking: busSettings !== false && busSettings.tracking,
      // Without memory nothing here needs invalidating, but tracking on still tells that Redis reports writes to the
      // instances that have memory (so no key messages are published for them). A prefix no key has keeps away the
      // echo of every key our scripts write: measured ~2.7 µs of CPU per set (W3), and Redis' work to send it.
      trackingPrefix: memory === undefined ? `${resolved.prefix}__untracked` : resolved.prefix,
      heartbeatMs: busSettings === false ? DEFAULTS.bus.heartbeatMs : busSettings.heartbeatMs,
      timeoutMs: Math.max(resolved.redisTimeoutMs * 5, 500),
      replay: () => void replayer?.schedule(),
      isClosing,
    });
  }

  const close = (): Promise<void> =>
    (state.closing ??= (async () => {
      // Queued origin writes and counter deltas go out first, while Redis and the origin are still reachable.
      await strategies.close(STRATEGIES_CLOSE_MS);
      loads.close();
      // What was accepted before close() goes out now; then loads and refreshes in flight finish (bounded: a loader
      // that never settles must not hold close() hostage), then the replies of everything sent are waited for.
      batcher?.flush();
      await tasks.settle(CLOSE_WAIT_MS);
      batcher?.flush();
      await accessor?.drain(resolved.redisTimeoutMs * 2);
      await Promise.allSettled([subscriber?.close(), remote?.owned === true ? remote.tier.close() : undefined]);
      accessor?.close();
      hitClock.close();
      memory?.clear();
      events.removeAll();
    })());

  return new TierCache(
    {
      options: resolved,
      clock,
      hitClock,
      memory,
      accessor,
      breaker,
      coherence,
      busOn: busSettings !== false,
      replay: replayer?.queue,
      reads,
      writes,
      loads,
      strategies,
      counters,
      events,
      instruments,
      alerts: gate,
      isClosing,
      close,
    },
    resolved.prefix,
  );
}
