/**
 * A TCP proxy on 127.0.0.1 in front of a Redis port, for network faults that a real server cannot produce by itself
 * (`tc netem` is not available on these machines):
 *
 * - `pass`: bytes flow both ways.
 * - `delay(ms)`: every chunk, either way, is forwarded `ms` later (order kept).
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

interface Link {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Chunks kept for the server → client direction while holding. */
  readonly held: Buffer[];
  /** Bytes were dropped in a blackhole: the stream is broken. */
  tainted: boolean;
  /** Delay timers, cleared when the link closes. */
  readonly timers: Set<NodeJS.Timeout>;
}

export async function startTcpProxy(targetPort: number, initial: ProxyMode = { kind: 'pass' }): Promise<TcpProxy> {
  let mode: ProxyMode = initial;
  let accepted = 0;
  const links = new Set<Link>();

  const destroyLink = (link: Link, rst: boolean) => {
    for (const timer of link.timers) clearTimeout(timer);
    link.timers.clear();
    links.delete(link);
    for (const socket of [link.client, link.upstream]) {
      if (rst && !socket.destroyed && typeof socket.resetAndDestroy === 'function' && socket.readyState === 'open') {
        socket.resetAndDestroy();
      } else socket.destroy();
    }
  };

  const forward = (link: Link, to: Socket, chunk: Buffer, direction: 'up' | 'down') => {
    switch (mode.kind) {
      case 'pass':
        to.write(chunk);
        return;
      case 'delay': {
        const timer = setTimeout(() => {
          link.timers.delete(timer);
          if (!to.destroyed) to.write(chunk);
        }, mode.ms);
        link.timers.add(timer);
        return;
      }
      case 'blackhole':
        link.tainted = true;
        return;
      case 'hold':
        if (direction === 'up') to.write(chunk);
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
    const link: Link = { client, upstream, held: [], tainted: false, timers: new Set() };
    links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    // A closed or failed side ends the other; errors are expected here (that is what the proxy is for).
    client.on('error', () => destroyLink(link, false));
    upstream.on('error', () => destroyLink(link, false));
    client.on('close', () => destroyLink(link, false));
    upstream.on('close', () => destroyLink(link, false));
    client.on('data', (chunk: Buffer) => forward(link, upstream, chunk, 'up'));
    upstream.on('data', (chunk: Buffer) => forward(link, client, chunk, 'down'));
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
        for (const chunk of link.held.splice(0)) forward(link, link.client, chunk, 'down');
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
