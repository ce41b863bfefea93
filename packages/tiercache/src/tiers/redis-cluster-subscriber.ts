/**
 * The subscriber side of a cache on a Redis Cluster: one pub/sub connection per master, each the redirect target of
 * CLIENT TRACKING on the data connection to that same master (a RESP2 redirect only reaches a client of the same
 * node), so a foreign write under the prefix on any master drops the memory copy here, as on one server. One of them
 * also carries the bus and lock wake-up channels: PUBLISH reaches every node of a cluster, so one subscription hears
 * all of it. The set of links follows the cluster's masters (`refresh`, `+node`, `-node`): a new master (a failover, a
 * resharding) gets its link, a gone one loses it.
 */
import type { Cluster, Redis } from 'ioredis';
import type { SubscriberHandle, SubscriberOptions } from '../types.js';
import { quitOrDisconnect, reconnectDelay, switchTrackingOn } from './redis-connection.js';
import { INVALIDATE_CHANNEL, deliver } from './redis-subscriber.js';
import { withTimeout } from './errors.js';

const SLOT_COUNT = 16_384;
/** How often the slot table is asked for while a master's slots are untracked (a failover takes seconds). */
const REFRESH_MS = 250;

export interface ClusterSubscriberOptions extends SubscriberOptions {
  /** The tracked prefix as stored (ioredis keyPrefix included). */
  readonly storedPrefix: string;
}

/** One master: its data connection (owned by the Cluster) and our pub/sub connection to the same node. */
class NodeLink {
  readonly conn: Redis;
  readonly #sub: Redis;
  readonly #owner: ClusterSubscriber;
  /** Tracking is on for this node, redirected to our live subscription. */
  tracked = false;
  /** This link carries the bus channels. */
  #carriesBus = false;
  #busSubscribed = false;
  #invalidateSubscribed = false;
  /** The subscription connection's client id, the redirect target (until it reconnects). */
  #subId: string | undefined;
  #closed = false;
  #pinging = false;
  /** Counts the subscription's connections: a set-up begun on an earlier one must not mark this one tracked. */
  #connection = 0;
  /** The data connection connects lazily (on our first command); only a later `ready` means it lost its state. */
  #connWasReady: boolean;
  readonly #onConnClose = (): void => this.#untrack();
  readonly #onConnReady = (): void => {
    if (this.#connWasReady) void this.#setUp();
    this.#connWasReady = true;
  };

  constructor(conn: Redis, owner: ClusterSubscriber) {
    this.conn = conn;
    this.#owner = owner;
    this.#connWasReady = conn.status === 'ready';
    this.#sub = conn.duplicate({
      enableOfflineQueue: true,
      autoResubscribe: false,
      lazyConnect: false,
      readOnly: false,
      protocol: 2,
      retryStrategy: reconnectDelay,
      // The data connections' calls are bounded by the tier's deadlines; this one's few commands by ioredis.
      commandTimeout: owner.options.timeoutMs,
    });
    this.#sub.on('error', owner.options.onError);
    this.#sub.on('messageBuffer', (channel: Buffer, message: unknown) => deliver(owner.options, channel, message));
    this.#sub.on('ready', () => void this.#setUp());
    this.#sub.on('close', () => {
      this.#connection++;
      this.#busSubscribed = false;
      this.#invalidateSubscribed = false;
      this.#subId = undefined;
      this.#untrack();
    });
    // The data connection lost its tracking state if it reconnects (with a clusterNodeRetryStrategy) or goes away.
    conn.on('close', this.#onConnClose);
    conn.on('ready', this.#onConnReady);
  }

  get address(): string {
    return `${this.conn.options.host ?? ''}:${this.conn.options.port ?? ''}`;
  }

  carryBus(): void {
    if (this.#carriesBus) return;
    this.#carriesBus = true;
    if (this.#sub.status === 'ready') void this.#setUp();
  }

  #untrack(): void {
    if (!this.tracked) return;
    this.tracked = false;
    this.#owner.changed();
  }

  /** Subscribes, then points the master's tracking at this subscription; once per (re)connection of either side. */
  async #setUp(): Promise<void> {
    const { options } = this.#owner;
    if (this.#closed || this.#sub.status !== 'ready') return;
    const connection = this.#connection;
    try {
      // Before the first SUBSCRIBE of this connection: a RESP2 connection in subscriber mode runs nothing else.
      if (options.tracking && this.#subId === undefined) this.#subId = String(await this.#sub.client('ID'));
      const id = this.#subId ?? '';
      const channels = [
        ...(options.tracking && !this.#invalidateSubscribed ? [INVALIDATE_CHANNEL] : []),
        ...(this.#carriesBus && !this.#busSubscribed ? options.channels : []),
      ];
      if (channels.length > 0) await this.#sub.subscribe(...channels);
      if (options.tracking) this.#invalidateSubscribed = true;
      if (this.#carriesBus && !this.#busSubscribed) {
        this.#busSubscribed = true;
        this.#owner.busSubscribed();
      }
      if (!options.tracking || this.#closed) return;
      await switchTrackingOn(this.conn, id, this.#owner.options.storedPrefix, (p) =>
        withTimeout(p, options.timeoutMs, () => new Error('CLIENT TRACKING timed out')),
      );
      if (this.#closed || connection !== this.#connection || this.conn.status !== 'ready') return;
      this.tracked = true;
      this.#owner.changed(true);
    } catch (error) {
      options.onError(error);
    }
  }

  /**
   * PINGs the subscription; a silent one is dropped (it reconnects and sets up again). Resolves whether it answered,
   * or undefined when it was not asked (not connected, or a PING still out), as the standalone subscriber does.
   */
  async ping(timeoutMs: number): Promise<boolean | undefined> {
    if (this.#closed || this.#pinging || this.#sub.status !== 'ready') return undefined;
    this.#pinging = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#sub.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('heartbeat timed out')), timeoutMs);
        }),
      ]);
      return true;
    } catch {
      if (!this.#closed) this.#sub.disconnect(true);
      return false;
    } finally {
      clearTimeout(timer);
      this.#pinging = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.tracked = false;
    this.conn.off('close', this.#onConnClose);
    this.conn.off('ready', this.#onConnReady);
    this.#sub.removeAllListeners('messageBuffer');
    this.#sub.removeAllListeners('ready');
    this.#sub.removeAllListeners('close');
    await quitOrDisconnect(this.#sub);
  }
}

export class ClusterSubscriber implements SubscriberHandle {
  readonly options: ClusterSubscriberOptions;
  readonly #cluster: Cluster;
  readonly #links = new Map<string, NodeLink>();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #sync = (): void => this.#syncNodes();
  #busLink: NodeLink | undefined;
  #busSubscriptions = 0;
  #active = false;
  #everActive = false;
  #refreshTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(cluster: Cluster, options: ClusterSubscriberOptions) {
    this.#cluster = cluster;
    this.options = options;
    for (const event of ['refresh', '+node', '-node', 'ready']) cluster.on(event, this.#sync);
    this.#heartbeat = setInterval(() => void this.#ping(), options.heartbeatMs);
    this.#heartbeat.unref();
    this.#syncNodes();
  }

  /** Links exactly the current masters; the bus rides on one of them. */
  #syncNodes(): void {
    if (this.#closed) return;
    const masters = new Set(this.#cluster.nodes('master'));
    for (const [address, link] of this.#links) {
      if (masters.has(link.conn)) continue;
      this.#links.delete(address);
      if (this.#busLink === link) this.#busLink = undefined;
      void link.close();
    }
    const linked = new Set([...this.#links.values()].map((link) => link.conn));
    for (const conn of masters) {
      // Without tracking only the bus needs a link, on any one master.
      if (!this.options.tracking && this.#links.size > 0) break;
      if (linked.has(conn)) continue;
      const link = new NodeLink(conn, this);
      this.#links.set(link.address, link);
    }
    if (this.#busLink === undefined) {
      this.#busLink = this.#links.values().next().value;
      this.#busLink?.carryBus();
    }
    this.changed();
  }

  /** A link's subscription to the bus channels is in place (again: messages sent meanwhile were lost). */
  busSubscribed(): void {
    this.#busSubscriptions++;
    this.options.onSubscribed(undefined, this.#busSubscriptions > 1);
  }

  /**
   * Tracking came on or went off somewhere. The instance tracks when the master of every slot, as the client's slot
   * table has it, is linked and tracked: a master that went away leaves its slots uncovered until the table follows
   * the failover, so until then this says no (and the bus carries key changes). A master whose tracking came (back)
   * on after tracking was once complete may have had foreign writes nobody reported here: flush memory.
   */
  changed(cameOn = false): void {
    if (!this.options.tracking || this.#closed) return;
    if (cameOn && this.#everActive) this.options.onInvalidate(null);
    const active = this.#covered();
    if (active) this.#everActive = true;
    this.#followFailover(!active && this.#everActive);
    if (active === this.#active) return;
    this.#active = active;
    this.options.onTrackingActive?.(active);
  }

  #covered(): boolean {
    const tracked = new Set([...this.#links.values()].filter((link) => link.tracked).map((link) => link.address));
    if (tracked.size === 0) return false;
    const slots = this.#cluster.slots;
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const master = slots[slot]?.[0];
      if (master === undefined || !tracked.has(master)) return false;
    }
    return true;
  }

  /**
   * While some slots' master is not tracked, ask the cluster for its slot table every REFRESH_MS: without commands
   * failing on those slots, the client would not learn of the promoted replica (ioredis refreshes on errors only).
   * Stops once tracking is complete again, or on close.
   */
  #followFailover(on: boolean): void {
    if (on && this.#refreshTimer === undefined) {
      this.#refreshTimer = setInterval(() => this.#cluster.refreshSlotsCache(() => this.#syncNodes()), REFRESH_MS);
      this.#refreshTimer.unref();
    } else if (!on && this.#refreshTimer !== undefined) {
      clearInterval(this.#refreshTimer);
      this.#refreshTimer = undefined;
    }
  }

  async #ping(): Promise<void> {
    if (this.#closed) return;
    const bus = this.#busLink;
    const answers = await Promise.all(
      [...this.#links.values()].map(async (link) => [link, await link.ping(this.options.timeoutMs)] as const),
    );
    if (this.#closed) return;
    const busAnswer = answers.find(([link]) => link === bus)?.[1];
    if (busAnswer === true) this.options.onAlive();
    else if (busAnswer === false) this.options.onSilent();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#followFailover(false);
    for (const event of ['refresh', '+node', '-node', 'ready']) this.#cluster.off(event, this.#sync);
    const links = [...this.#links.values()];
    this.#links.clear();
    await Promise.all(links.map((link) => link.close()));
  }
}
