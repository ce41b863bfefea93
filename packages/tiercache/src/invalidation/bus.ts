/**
 * The bus: how this instance tells the others what changed (keys, tags, a clear; never values) over Redis pub/sub,
 * and how it hears of theirs, and of foreign writes through Redis' tracking invalidations, on one subscriber
 * connection that also carries the stampede lock's wake-ups.
 */
import { counted } from '../observability/channels.js';
import type { Counters } from '../observability/stats.js';
import type { LockWaiters } from '../resilience/lock.js';
import type { BackgroundTasks } from '../tasks.js';
import type { RemoteTier, SubscriberHandle } from '../types.js';
import type { Coherence } from './coherence.js';
import { MAX_KEYS_PER_MESSAGE, decodeBusMessage, encodeBusMessage } from './messages.js';
import type { BusMessage } from './messages.js';

export interface BusOptions {
  readonly tier: RemoteTier;
  /** The bus channel, or undefined when the bus is off (the subscriber then carries lock wake-ups only). */
  readonly channel: string | undefined;
  readonly instanceId: string;
  readonly root: string;
  /** Longest full key a message may carry (longer ones are garbage). */
  readonly maxKeyLength: number;
  readonly coherence: Coherence;
  readonly counters: Counters;
}

export class Bus {
  readonly #tier: RemoteTier;
  readonly channel: string | undefined;
  readonly instanceId: string;
  readonly #root: string;
  readonly #maxKeyLength: number;
  readonly #coherence: Coherence;
  readonly #counters: Counters;

  constructor(options: BusOptions) {
    this.#tier = options.tier;
    this.channel = options.channel;
    this.instanceId = options.instanceId;
    this.#root = options.root;
    this.#maxKeyLength = options.maxKeyLength;
    this.#coherence = options.coherence;
    this.#counters = options.counters;
  }

  /** Publishes a bus message; best-effort (pub/sub is at-most-once anyway: resets and maxTtl cover a loss). */
  async publish(message: BusMessage): Promise<void> {
    if (this.channel === undefined || !this.#tier.available) return;
    try {
      await this.#tier.publish(this.channel, encodeBusMessage(message));
      this.#counters.busPublished++;
      counted(this.#counters.prefix, 'busPublished');
    } catch {
      this.#counters.busPublishErrors++;
      counted(this.#counters.prefix, 'busPublishErrors');
    }
  }

  /** Whether key changes must be published (the bus is on and Redis is not already telling everyone: no tracking). */
  get mustPublishKeys(): boolean {
    return this.channel !== undefined && !this.#coherence.trackingActive;
  }

  /** Tells the other instances which keys changed, unless Redis already does (tracking); `always` for replays. */
  async publishKeys(fullKeys: readonly string[], always = false): Promise<void> {
    if (this.channel === undefined || fullKeys.length === 0 || (!always && this.#coherence.trackingActive)) return;
    for (let i = 0; i < fullKeys.length; i += MAX_KEYS_PER_MESSAGE) {
      await this.publish({ kind: 'keys', from: this.instanceId, keys: fullKeys.slice(i, i + MAX_KEYS_PER_MESSAGE) });
    }
  }

  /** A message from the channel: validated, then applied unless it is our own. */
  receive(raw: string): void {
    const message = decodeBusMessage(raw, this.#maxKeyLength);
    if (message === undefined) {
      this.#counters.busDropped++;
      counted(this.#counters.prefix, 'busDropped');
      return;
    }
    if (message.from === this.instanceId) return;
    this.#counters.busReceived++;
    counted(this.#counters.prefix, 'busReceived');
    const root = this.#root;
    const coherence = this.#coherence;
    switch (message.kind) {
      case 'keys':
        coherence.dropKeys(message.keys.filter((key) => key.startsWith(root)));
        break;
      case 'tags':
        if (message.prefix.startsWith(root)) coherence.dropTags(message.prefix, message.tags);
        break;
      case 'clear':
        if (message.prefix.startsWith(root)) coherence.dropPrefix(message.prefix);
        break;
    }
  }
}

export interface SubscriberWiring {
  readonly tier: RemoteTier;
  readonly bus: Bus;
  readonly coherence: Coherence;
  readonly counters: Counters;
  readonly waiters: LockWaiters;
  readonly tasks: BackgroundTasks;
  readonly loadedChannel: string;
  readonly root: string;
  /** Ask Redis to report foreign writes (the bus is on, with `tracking`). */
  readonly tracking: boolean;
  /** The key prefix Redis tracks: `root`, or one no key has when there is no memory to keep coherent. */
  readonly trackingPrefix: string;
  readonly heartbeatMs: number;
  readonly timeoutMs: number;
  /** Replays queued invalidations (Redis answers again). */
  readonly replay: () => void;
  readonly isClosing: () => boolean;
}

/**
 * Opens the cache's subscriber connection and keeps coherence through reconnects: tracking is switched on for the
 * data connection once the subscriber's client id is known, and again after either connection reconnects; every
 * reconnect flushes memory, since invalidations sent meanwhile were lost. Undefined when the tier has no pub/sub.
 */
export function connectSubscriber(wiring: SubscriberWiring): SubscriberHandle | undefined {
  const { tier, bus, coherence, counters } = wiring;
  if (tier.openSubscriber === undefined) return undefined;
  const tracking = wiring.tracking && tier.enableTracking !== undefined;
  let subscriberId: number | undefined;
  // Writes made while tracking was off were reported to nobody here (the other instances, tracking, publish no key
  // messages). So when it comes on memory is flushed, or, the first time (the start-up, not a lost connection), each
  // copy kept so far is checked against Redis in one read and kept only if Redis still holds the entry it was made
  // from: a fresh instance's first copies survive, a stale one does not.
  let trackingHistory: 'never' | 'failed' | 'was-on' = 'never';
  coherence.trackingWanted = tracking;
  const cameOn = (): void => {
    if (trackingHistory === 'never') {
      const checked = coherence.copiesToCheck();
      if (checked.length > 0) {
        wiring.tasks.track(
          tier.getMany(checked.map(([key]) => key)).then(
            (current) => coherence.dropChanged(checked, current),
            () => coherence.flushMemory(false),
          ),
        );
      }
    } else coherence.flushMemory();
    trackingHistory = 'was-on';
  };
  let enabling = false;
  // Set once the tier reports tracking itself (a cluster's per-master redirects): it alone then says whether it is on,
  // and its subscriber flushes memory when a node's tracking comes back.
  let selfTracked = false;
  const trackingLost = (): void => {
    if (!selfTracked) coherence.trackingActive = false;
  };
  const enableTracking = (): void => {
    if (!tracking || subscriberId === undefined || wiring.isClosing() || enabling) return;
    const id = subscriberId;
    enabling = true;
    (tier.enableTracking?.(id, wiring.trackingPrefix) ?? Promise.resolve(false)).then(
      (enabled) => {
        enabling = false;
        if (!enabled || subscriberId !== id) return;
        cameOn();
        coherence.trackingActive = true;
      },
      () => {
        enabling = false;
        coherence.trackingActive = false;
        if (trackingHistory === 'never') trackingHistory = 'failed';
        counters.connectionErrors++;
      },
    );
  };
  let dataReadyBefore = false;
  tier.onStatus((status) => {
    if (status !== 'ready') return;
    // A reconnect of the data connection lost its tracking state and maybe invalidations: flush, re-enable, replay.
    if (dataReadyBefore) {
      trackingLost();
      coherence.flushMemory();
    }
    dataReadyBefore = true;
    enableTracking();
    wiring.replay();
  });
  if (tier.status === 'ready') dataReadyBefore = true;
  const verifyEchoes = (echoed: ReadonlyMap<string, string>): void => {
    const keys = [...echoed.keys()];
    wiring.tasks.track(
      tier.getMany(keys).then(
        (current) => coherence.dropKeys(keys.filter((key, i) => current[i] !== echoed.get(key))),
        () => coherence.dropKeys(keys),
      ),
    );
  };
  const channels = [wiring.loadedChannel, ...(bus.channel === undefined ? [] : [bus.channel])];
  return tier.openSubscriber({
    channels,
    tracking,
    trackingPrefix: wiring.trackingPrefix,
    onTrackingActive: (active) => {
      selfTracked = true;
      // The tier flushes when tracking comes back; the first time is ours (see cameOn).
      if (active && trackingHistory === 'never') cameOn();
      coherence.trackingActive = active;
    },
    heartbeatMs: wiring.heartbeatMs,
    timeoutMs: wiring.timeoutMs,
    onMessage: (channel, message) => {
      if (channel === wiring.loadedChannel) wiring.waiters.signal(message);
      else if (channel === bus.channel) bus.receive(message);
    },
    onInvalidate: (keys) => {
      if (keys === null) return coherence.flushMemory();
      const echoed = coherence.onTracked(keys, wiring.root);
      if (echoed !== undefined) verifyEchoes(echoed);
    },
    onSubscribed: (clientId, resubscribed) => {
      subscriberId = clientId;
      coherence.subscriberReady = true;
      if (resubscribed && bus.channel !== undefined) coherence.flushMemory();
      trackingLost();
      enableTracking();
    },
    // Redis answers: invalidations queued during an outage go now, even if this instance makes no call of its own.
    onAlive: () => {
      // Tracking that could not be switched on (a timeout, a refusal) is tried again rather than left off for good.
      if (!coherence.trackingActive) enableTracking();
      wiring.replay();
    },
    onSilent: () => {
      trackingLost();
      coherence.subscriberReady = false;
      if (bus.channel !== undefined) coherence.flushMemory();
    },
    onError: () => {
      counters.connectionErrors++;
    },
  });
}
