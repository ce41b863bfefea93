import { Cluster } from 'ioredis';
import type { Redis } from 'ioredis';
import type { SubscriberHandle, SubscriberOptions } from '../types.js';
import { quitOrDisconnect } from './redis-connection.js';

/** The channel Redis sends tracked keys' invalidations to (RESP2 redirect mode). */
export const INVALIDATE_CHANNEL = '__redis__:invalidate';

/** Hands a pub/sub message to the cache: a tracking invalidation (keys, or null for a flush) or a channel message. */
export function deliver(options: SubscriberOptions, channelBuffer: Buffer, message: unknown): void {
  const channel = channelBuffer.toString();
  if (channel === INVALIDATE_CHANNEL) {
    if (message === null) options.onInvalidate(null);
    else if (Array.isArray(message)) options.onInvalidate(message.map((key: Buffer) => key.toString()));
    else if (Buffer.isBuffer(message)) options.onInvalidate([message.toString()]);
    return;
  }
  if (Buffer.isBuffer(message)) options.onMessage(channel, message.toString());
}

/**
 * One pub/sub connection per cache, a duplicate of the data connection (a connection in subscriber mode can run
 * nothing else). RESP2 on purpose: ioredis delivers tracking invalidations to RESP2 subscribers as messages, and drops
 * the RESP3 `invalidate` push. It resubscribes itself on every `ready`, and a heartbeat finds a connection that looks
 * open but delivers nothing.
 */
export class Subscriber implements SubscriberHandle {
  readonly #connection: Redis | Cluster;
  readonly #options: SubscriberOptions;
  readonly #heartbeat: NodeJS.Timeout;
  #subscriptions = 0;
  #pinging = false;
  #closed = false;

  /** `commandTimeoutMs`: the Redis timeout of the data connection, which bounds the heartbeat's PING too. */
  constructor(client: Redis | Cluster, options: SubscriberOptions, commandTimeoutMs: number) {
    this.#options = options;
    // The offline queue holds only our own few commands here, sent once connected; the data connection keeps it off.
    // Its few commands (CLIENT ID, SUBSCRIBE) may arm a timer each: the data connection's deadlines do not reach here.
    const overrides = {
      enableOfflineQueue: true,
      autoResubscribe: false,
      lazyConnect: false,
      protocol: 2 as const,
      commandTimeout: commandTimeoutMs,
    };
    this.#connection =
      client instanceof Cluster ? client.duplicate([], { redisOptions: overrides }) : client.duplicate(overrides);
    this.#connection.on('error', options.onError);
    this.#connection.on('messageBuffer', (channel: Buffer, message: unknown) => deliver(options, channel, message));
    this.#connection.on('ready', () => void this.#subscribe());
    this.#heartbeat = setInterval(() => void this.#ping(), options.heartbeatMs);
    this.#heartbeat.unref();
  }

  async #subscribe(): Promise<void> {
    if (this.#closed) return;
    try {
      const connection = this.#connection;
      const id =
        this.#options.tracking && !(connection instanceof Cluster) ? Number(await connection.client('ID')) : undefined;
      const channels = this.#options.tracking
        ? [...this.#options.channels, INVALIDATE_CHANNEL]
        : this.#options.channels;
      await connection.subscribe(...channels);
      this.#subscriptions++;
      this.#options.onSubscribed(id, this.#subscriptions > 1);
    } catch (error) {
      this.#options.onError(error);
    }
  }

  async #ping(): Promise<void> {
    if (this.#closed || this.#pinging || this.#subscriptions === 0 || this.#connection.status !== 'ready') return;
    this.#pinging = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#connection.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('heartbeat timed out')), this.#options.timeoutMs);
        }),
      ]);
      if (!this.#closed) this.#options.onAlive();
    } catch {
      if (this.#closed) return;
      this.#options.onSilent();
      // Drop the socket: ioredis reconnects, and the new subscription is announced as a resubscribe.
      this.#connection.disconnect(true);
    } finally {
      clearTimeout(timer);
      this.#pinging = false;
    }
  }

  get connection(): Redis | Cluster {
    return this.#connection;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#connection.removeAllListeners('messageBuffer');
    this.#connection.removeAllListeners('ready');
    await quitOrDisconnect(this.#connection);
  }
}
