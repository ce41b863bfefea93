/**
 * A TCP proxy on 127.0.0.1 in front of a Redis port, for network faults that a real server cannot produce by itself
 * (`tc netem` is not available on these machines):
 *
 * - `pass`: bytes flow both ways.
 * - `delay(ms)`: every chunk, either way, is forwarded `ms` later; order is kept, also across mode changes.
 * - `blackhole`: connections are accepted and read, nothing is forwarded either way — a hung network.
 * - `hold`: client → server flows, server → client is held until the mode changes — the command ran, the reply is
 *   late. Lets a test see what reached Redis before the client saw any reply (one round trip or several).
 * - `reset`: every socket is destroyed with a RST, and new connections are reset on accept.
 *
 * Leaving `blackhole` destroys the connections that lost bytes in it: a RESP stream with a hole cannot be resumed
 * (the client would pair replies with the wrong commands), so clients must reconnect, as they would after a real
 * network partition. Leaving `hold` or `delay` flushes what was held, in order.
 */
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

export type ProxyMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'blackhole' }
  | { readonly kind: 'hold' }
  | { readonly kind: 'reset' };

export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly mode: ProxyMode;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  pass(): void;
  delay(ms: number): void;
  blackhole(): void;
  hold(): void;
  reset(): void;
  setMode(mode: ProxyMode): void;
  /** Destroys every socket and stops listening. */
  close(): Promise<void>;
}

/** One direction of a connection. Chunks wait here while delayed, and anything after them queues behind them. */
interface Lane {
  readonly to: Socket;
  readonly queue: { readonly at: number; readonly chunk: Buffer }[];
  timer: NodeJS.Timeout | undefined;
}

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  /** client → server */
  readonly up: Lane;
  /** server → client */
  readonly down: Lane;
  /** Chunks kept for the server → client direction while holding. */
  readonly held: Buffer[];
  /** Bytes were dropped in a blackhole: the stream is broken. */
  tainted: boolean;
}

/** Writes `chunk` after `delayMs`, never ahead of a chunk sent earlier (a shorter delay or `pass` waits its turn). */
function send(lane: Lane, chunk: Buffer, delayMs: number): void {
  if (delayMs <= 0 && lane.queue.length === 0) {
    if (!lane.to.destroyed) lane.to.write(chunk);
    return;
  }
  lane.queue.push({ at: performance.now() + delayMs, chunk });
  drainLater(lane);
}

function drainLater(lane: Lane): void {
  const head = lane.queue[0];
  if (lane.timer !== undefined || head === undefined) return;
  lane.timer = setTimeout(
    () => {
      lane.timer = undefined;
      const now = performance.now();
      while (lane.queue[0] !== undefined && lane.queue[0].at <= now + 1) {
        const { chunk } = lane.queue.shift() as { chunk: Buffer };
        if (!lane.to.destroyed) lane.to.write(chunk);
      }
      drainLater(lane);
    },
    Math.max(0, head.at - performance.now()),
  );
}

export async function startTcpProxy(targetPort: number, initial: ProxyMode = { kind: 'pass' }): Promise<TcpProxy> {
  let mode: ProxyMode = initial;
  let accepted = 0;
  const links = new Set<Link>();

  const destroyLink = (link: Link, rst: boolean) => {
    for (const lane of [link.up, link.down]) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
      lane.queue.length = 0;
    }
    links.delete(link);
    for (const socket of [link.client, link.upstream]) {
      if (rst && !socket.destroyed && typeof socket.resetAndDestroy === 'function' && socket.readyState === 'open') {
        socket.resetAndDestroy();
      } else socket.destroy();
    }
  };

  const forward = (link: Link, lane: Lane, chunk: Buffer) => {
    switch (mode.kind) {
      case 'pass':
        send(lane, chunk, 0);
        return;
      case 'delay':
        send(lane, chunk, mode.ms);
        return;
      case 'blackhole':
        link.tainted = true;
        return;
      case 'hold':
        if (lane === link.up) send(lane, chunk, 0);
        else link.held.push(chunk);
        return;
      case 'reset':
        destroyLink(link, true);
        return;
    }
  };

  const server: Server = createServer((client) => {
    accepted++;
    if (mode.kind === 'reset') {
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    const link: Link = {
      client,
      upstream,
      up: { to: upstream, queue: [], timer: undefined },
      down: { to: client, queue: [], timer: undefined },
      held: [],
      tainted: false,
    };
    links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    // A closed or failed side ends the other; errors are expected here (that is what the proxy is for).
    client.on('error', () => destroyLink(link, false));
    upstream.on('error', () => destroyLink(link, false));
    client.on('close', () => destroyLink(link, false));
    upstream.on('close', () => destroyLink(link, false));
    client.on('data', (chunk: Buffer) => forward(link, link.up, chunk));
    upstream.on('data', (chunk: Buffer) => forward(link, link.down, chunk));
  });
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
  const port = address.port;

  const setMode = (next: ProxyMode) => {
    const previous = mode;
    mode = next;
    if (next.kind === 'reset') {
      for (const link of [...links]) destroyLink(link, true);
      return;
    }
    if (previous.kind === 'blackhole' && next.kind !== 'blackhole') {
      for (const link of [...links]) if (link.tainted) destroyLink(link, true);
    }
    if (previous.kind === 'hold' && next.kind !== 'hold') {
      for (const link of links) {
        for (const chunk of link.held.splice(0)) forward(link, link.down, chunk);
      }
    }
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return links.size;
    },
    pass: () => setMode({ kind: 'pass' }),
    delay: (ms: number) => setMode({ kind: 'delay', ms }),
    blackhole: () => setMode({ kind: 'blackhole' }),
    hold: () => setMode({ kind: 'hold' }),
    reset: () => setMode({ kind: 'reset' }),
    setMode,
    close: () =>
      new Promise<void>((resolve) => {
        for (const link of [...links]) destroyLink(link, false);
        server.close(() => resolve());
      }),
  };
}
