import { Cluster } from 'ioredis';
import type { Redis } from 'ioredis';

export interface SubscriberOptions {
  readonly channels: readonly string[];
  readonly onMessage: (channel: string, message: string) => void;
  /** Called after every (re)subscription: messages may have been lost while the connection was down. */
  readonly onSubscribed?: () => void;
  readonly onError: (error: unknown) => void;
}

/**
 * One pub/sub connection per cache, a duplicate of the data connection (a connection in subscriber mode can run
 * nothing else). ioredis resubscribes by itself after a reconnect; `onSubscribed` lets the cache react to that.
 */
export class Subscriber {
  readonly #connection: Redis | Cluster;
  readonly #options: SubscriberOptions;
  #closed = false;

  constructor(client: Redis | Cluster, options: SubscriberOptions) {
    this.#options = options;
    // The offline queue holds only SUBSCRIBE here, sent once connected; the data connection keeps it off.
    // Subscriptions are made on every 'ready' by us, so ioredis' own resubscribe is off (no double SUBSCRIBE).
    const overrides = { enableOfflineQueue: true, autoResubscribe: false, lazyConnect: false };
    this.#connection =
      client instanceof Cluster ? client.duplicate([], { redisOptions: overrides }) : client.duplicate(overrides);
    this.#connection.on('error', options.onError);
    this.#connection.on('message', (channel: string, message: string) => options.onMessage(channel, message));
    this.#connection.on('ready', () => this.#subscribe());
  }

  #subscribe(): void {
    if (this.#closed) return;
    this.#connection.subscribe(...this.#options.channels).then(
      () => this.#options.onSubscribed?.(),
      (error: unknown) => this.#options.onError(error),
    );
  }

  get connection(): Redis | Cluster {
    return this.#connection;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connection.removeAllListeners('message');
    this.#connection.removeAllListeners('ready');
    if (this.#connection.status !== 'ready') {
      this.#connection.disconnect();
      return;
    }
    try {
      await this.#connection.quit();
    } catch {
      this.#connection.disconnect();
    }
  }
}
