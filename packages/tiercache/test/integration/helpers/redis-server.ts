/**
 * Real redis-server processes for integration tests: each on its own free loopback port, with no persistence and its
 * own temp dir, killed by pid when done. Nothing here touches the machine's shared Redis on 6379.
 *
 * No orphans: every live process is in a registry that `stopAllRedis()` (call it from afterAll) and a process `exit`
 * hook kill. A worker killed hard runs no hook, so each start also sweeps the temp dirs of owners that are gone and
 * kills their servers.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StartRedisOptions {
  /** Extra redis-server arguments, e.g. `['--enable-debug-command', 'local']` or cluster settings. */
  readonly args?: readonly string[];
  /** Longest wait for the first PING to answer, in ms. @default 10_000 */
  readonly readyTimeoutMs?: number;
  /**
   * A config file's text, written to `<dir>/redis.conf` and passed first: a sentinel (with `args: ['--sentinel']`)
   * needs a file it can rewrite. The command-line settings above still apply over it.
   */
  readonly config?: string;
}

export interface RedisProcess {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** The pid of the current process (it changes on restart). */
  readonly pid: number;
  /** The server's own temp dir (its --dir and log file). */
  readonly dir: string;
  /** Whether the current process is running (it may be stopped by SIGSTOP, which still counts as running). */
  readonly running: boolean;
  /** Sends a signal; for a terminating one, resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port, with the same arguments (killing it first if it still runs). */
  restart(): Promise<void>;
  /**
   * `CLIENT PAUSE <ms> ALL`: the server stalls every client for `ms` while keeping their sockets open. It cannot be
   * ended early: under a pause of ALL, `CLIENT UNPAUSE` from any client is stalled too.
   */
  pause(ms: number): Promise<void>;
  /** Runs `redis-cli -p <port> <args>` and resolves with its stdout (raw, trailing newline removed). */
  cli(...args: string[]): Promise<string>;
  /** Kills the process, waits for it to exit, removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** The last lines of the server's log, for failure messages. */
  log(lines?: number): string;
}

const DIR_PREFIX = 'tiercache-redis-';
const OWNER_FILE = 'owner.json';
const registry = new Set<ManagedRedis>();

/** A port nothing listens on right now: bind port 0 on loopback, read the port, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port assigned'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** A Redis URL on which nothing listens: connections are refused at once. */
export async function deadUrl(): Promise<string> {
  return `redis://127.0.0.1:${await freePort()}`;
}

/** Encodes a command in RESP, so control commands need no client library. */
function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * Sends one command on a fresh socket and resolves with its reply: a status (`+OK` → `OK`), an integer (as text) or a
 * bulk string (`INFO`). Rejects on an error reply, a connection failure, an array reply, or after `timeoutMs`.
 */
export function sendCommand(port: number, args: readonly string[], timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let buffer = Buffer.alloc(0);
    const finish = (error: Error | undefined, reply?: string) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(reply ?? '');
    };
    const timer = setTimeout(() => finish(new Error(`${args.join(' ')} got no reply in ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (error) => finish(error));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n');
      if (end === -1) return;
      const line = buffer.subarray(1, end).toString('utf8');
      switch (String.fromCharCode(buffer[0] ?? 0)) {
        case '+':
        case ':':
          finish(undefined, line);
          return;
        case '-':
          finish(new Error(`${args.join(' ')}: ${line}`));
          return;
        case '$': {
          const length = Number(line);
          if (length < 0) finish(undefined, '');
          else if (buffer.length >= end + 2 + length + 2) {
            finish(undefined, buffer.subarray(end + 2, end + 2 + length).toString('utf8'));
          }
          return;
        }
        default:
          finish(new Error(`${args.join(' ')}: unsupported reply type ${line.slice(0, 20)}`));
      }
    });
    socket.once('connect', () => socket.write(encodeCommand(args)));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is still a redis-server of ours on `port` (pids get reused; never kill the wrong process). */
function isOurRedis(pid: number, port: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('redis-server') && cmdline.includes(`:${port}`);
  } catch {
    return false;
  }
}

let swept = false;

/**
 * Kills servers left by test processes that died without running their hooks, and removes their dirs. Runs once per
 * process from startRedis; `again` runs it regardless (for the helper's own test).
 */
export function sweepOrphans({ again = false } = {}): void {
  if (swept && !again) return;
  swept = true;
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((name) => name.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    try {
      const owner = JSON.parse(readFileSync(join(dir, OWNER_FILE), 'utf8')) as {
        ownerPid: number;
        redisPid: number;
        port: number;
      };
      if (isAlive(owner.ownerPid)) continue;
      if (isOurRedis(owner.redisPid, owner.port)) process.kill(owner.redisPid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A dir being created right now by another process has no owner file yet: leave it.
    }
  }
}

function killAllSync(): void {
  for (const redis of registry) redis.killSync();
}

let hooked = false;
function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAllSync();
      // Re-raise so the default action (exit) still happens when nobody else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

const BIND_FAILURE = /Could not create server TCP listening socket|Address already in use/;
const NON_TERMINATING = new Set<NodeJS.Signals>(['SIGSTOP', 'SIGCONT', 'SIGTSTP', 'SIGWINCH']);

class ManagedRedis implements RedisProcess {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly #args: readonly string[];
  readonly #readyTimeoutMs: number;
  readonly #configFile: string | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(port: number, dir: string, args: readonly string[], readyTimeoutMs: number, config?: string) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = dir;
    this.#args = args;
    this.#readyTimeoutMs = readyTimeoutMs;
    if (config !== undefined) {
      this.#configFile = join(dir, 'redis.conf');
      writeFileSync(this.#configFile, config);
    }
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Spawns the server and waits for PING. Rejects (after cleaning up the child) if it exits or never answers. */
  async spawn(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        ...(this.#configFile === undefined ? [] : [this.#configFile]),
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        '--logfile',
        join(this.dir, 'redis.log'),
        ...this.#args,
      ],
      { stdio: 'ignore' },
    );
    this.#child = child;
    let exitedEarly = false;
    let spawnError: Error | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        exitedEarly = true;
        resolve();
      });
      child.once('error', (error) => {
        spawnError = error;
        exitedEarly = true;
        resolve();
      });
    });
    if (child.pid !== undefined) {
      writeFileSync(
        join(this.dir, OWNER_FILE),
        JSON.stringify({ ownerPid: process.pid, redisPid: child.pid, port: this.port }),
      );
    }
    const deadline = Date.now() + this.#readyTimeoutMs;
    for (;;) {
      if (exitedEarly) throw new RedisStartError(this.port, this.log(20), spawnError);
      try {
        // Ask for the pid, not just PING: if another process took the port first, its server would answer too.
        const info = await sendCommand(this.port, ['INFO', 'server'], 500);
        if (new RegExp(`^process_id:${child.pid}\\r?$`, 'm').test(info)) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        await this.kill('SIGKILL');
        throw new Error(
          `redis-server on port ${this.port} did not answer PING in ${this.#readyTimeoutMs} ms\n${this.log(20)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    child.kill(signal);
    if (!NON_TERMINATING.has(signal)) await this.#exited;
  }

  killSync(): void {
    if (this.running) this.#child?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    if (this.#stopped) throw new Error('restart() after stop()');
    await this.kill('SIGKILL');
    // The port was just released; another process may have taken it in between, so retry a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawn();
        return;
      } catch (error) {
        if (!(error instanceof RedisStartError) || attempt >= 5) throw error;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  async pause(ms: number): Promise<void> {
    await sendCommand(this.port, ['CLIENT', 'PAUSE', String(ms), 'ALL']);
  }

  cli(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile('redis-cli', ['-p', String(this.port), ...args], { timeout: 10_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${stderr || error.message}`));
        else resolve(stdout.replace(/\n$/, ''));
      });
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // SIGKILL also ends a process stopped by SIGSTOP; with --save '' there is nothing to flush.
    await this.kill('SIGKILL');
    registry.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  log(lines = 20): string {
    try {
      return readFileSync(join(this.dir, 'redis.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

class RedisStartError extends Error {
  constructor(port: number, log: string, spawnError?: Error) {
    super(
      spawnError
        ? `Could not run redis-server (${spawnError.message}); install it (Debian: apt-get install redis-server)`
        : `redis-server exited before answering on port ${port}\n${log}`,
    );
  }

  get bindFailure(): boolean {
    return BIND_FAILURE.test(this.message);
  }
}

/**
 * Starts a redis-server on a free loopback port and resolves once it answers PING. A port taken between the probe and
 * the bind is retried with another port.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisProcess> {
  sweepOrphans();
  installExitHooks();
  const args = options.args ?? [];
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
    const redis = new ManagedRedis(await freePort(), dir, args, readyTimeoutMs, options.config);
    registry.add(redis);
    try {
      await redis.spawn();
      return redis;
    } catch (error) {
      registry.delete(redis);
      rmSync(dir, { recursive: true, force: true });
      if (!(error instanceof RedisStartError && error.bindFailure) || attempt >= 5) throw error;
    }
  }
}

/** Stops every server this process started and has not stopped. Use in afterAll as a safety net. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...registry].map((redis) => redis.stop()));
}

/** How many servers this process has running, for tests of the helper itself. */
export function liveRedisCount(): number {
  return [...registry].filter((redis) => redis.running).length;
}
