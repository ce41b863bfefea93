import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly version: string;
  stop(): Promise<void>;
}

/** A loopback port nobody listens on right now (the kernel's pick, released before returning). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Sends one inline command and resolves with the raw reply (enough for PING and INFO, no client library needed). */
export function rawCommand(port: number, command: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on port ${port} did not answer \`${command}\` within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      // A bulk reply announces its length first; wait until all of it has arrived.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (bulk && reply.length < bulk[0].length + Number(bulk[1]) + 2) return;
      clearTimeout(timer);
      socket.end();
      resolve(reply);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

const live = new Set<ChildProcess>();

/** Kills every redis-server this process started; safe to call from a signal handler. */
export function killAllStarted(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

/**
 * Starts a private redis-server on a free loopback port, without persistence, in its own temp dir. Retries on the
 * rare race where another process takes the port between our probe and the server's bind.
 */
export async function startRedisServer(args: readonly string[] = []): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'tiercache-bench-'));
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args],
      { stdio: 'ignore' },
    );
    live.add(child);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => live.delete(child));
    child.once('error', (error) => (lastError = error));
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if ((await rawCommand(port, 'PING', 200)).startsWith('+PONG')) {
          const info = await rawCommand(port, 'INFO server');
          const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
          return { host: '127.0.0.1', port, version, stop };
        }
      } catch (error) {
        lastError = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await stop();
  }
  throw new Error(`could not start redis-server: ${String(lastError)}`);
}
