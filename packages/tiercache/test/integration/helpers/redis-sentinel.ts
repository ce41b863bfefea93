/**
 * A Sentinel set for integration tests: one master, one replica (`--replicaof`) and three sentinels (quorum 2,
 * down-after 1000 ms), each a redis-server of `redis-server.ts` (free loopback port, own temp dir, registry, orphan
 * sweep, stopped by pid). `startSentinelSet()` resolves once every sentinel knows the master, the replica and the two
 * other sentinels, so a failover test starts from a set that can actually fail over.
 */
import { Redis } from 'ioredis';
import { startRedis } from './redis-server.js';
import type { RedisProcess } from './redis-server.js';
import { sleep } from './support.js';

export interface SentinelSetOptions {
  /** The monitored master's name. @default 'mymaster' */
  readonly name?: string;
  /** `down-after-milliseconds`: how long the master must be silent before a sentinel calls it down. @default 1000 */
  readonly downAfterMs?: number;
  /** `failover-timeout`: also the wait before a failed failover is tried again. @default 3000 */
  readonly failoverTimeoutMs?: number;
  /** Longest wait for the set to be complete at start, or for a failover, in ms. @default 20_000 */
  readonly timeoutMs?: number;
}

export interface SentinelEndpoint {
  readonly host: string;
  readonly port: number;
}

export interface SentinelFailover {
  /** When the master was SIGKILLed (`Date.now()`). */
  readonly killedAt: number;
  /** When the sentinels first reported the new master (`Date.now()`, polled every 20 ms). */
  readonly promotedAt: number;
  /**
   * The killed server, still in the registry. `restart()` brings it back as a master that the sentinels demote, but
   * they notice only at their 10 s INFO period: start a fresh set for a second failover instead.
   */
  readonly old: RedisProcess;
}

export interface SentinelKill {
  /** When the master was SIGKILLed (`Date.now()`). */
  readonly killedAt: number;
  /** Resolves with the time the sentinels first all named the replica as master (polled every 20 ms). */
  readonly promoted: Promise<number>;
  readonly old: RedisProcess;
}

export interface SentinelSet {
  readonly name: string;
  readonly downAfterMs: number;
  /** The server the sentinels currently name as master. */
  readonly master: RedisProcess;
  /** The data servers, master and replica, in start order (a killed one stays listed). */
  readonly servers: readonly RedisProcess[];
  readonly sentinels: readonly RedisProcess[];
  /** `[{ host: '127.0.0.1', port }, …]`, as ioredis' `sentinels` option takes them. */
  readonly endpoints: readonly SentinelEndpoint[];
  /** What the sentinels answer to `GET-MASTER-ADDR-BY-NAME`, or undefined when none answers. */
  masterPort(): Promise<number | undefined>;
  /** SIGKILLs the current master and resolves once the sentinels name the replica as master. */
  failover(): Promise<SentinelFailover>;
  /** SIGKILLs the current master and resolves right after, with the promotion still to come (to probe in between). */
  killMaster(): Promise<SentinelKill>;
  /** Stops the five processes (safe to call twice). */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/** `SENTINEL MASTER <name>` and friends print field and value on alternate lines. */
function fields(text: string): Map<string, string> {
  const lines = text.split('\n');
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) map.set(lines[i] ?? '', lines[i + 1] ?? '');
  return map;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // A server being killed or restarted: ask again.
    }
    if (Date.now() > deadline) throw new Error(`Sentinel set: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function sentinelConfig(name: string, masterPort: number, options: Required<SentinelSetOptions>): string {
  return [
    'sentinel resolve-hostnames no',
    // Every process is on loopback: announce it, so no sentinel reports an address another one cannot reach.
    `sentinel announce-ip ${HOST}`,
    `sentinel monitor ${name} ${HOST} ${masterPort} 2`,
    `sentinel down-after-milliseconds ${name} ${options.downAfterMs}`,
    `sentinel failover-timeout ${name} ${options.failoverTimeoutMs}`,
    `sentinel parallel-syncs ${name} 1`,
    '',
  ].join('\n');
}

async function sentinelClient(port: number): Promise<Redis> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, commandTimeout: 1000 });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function linkUp(replica: RedisProcess): Promise<boolean> {
  return /^master_link_status:up\r?$/m.test(await replica.cli('INFO', 'replication'));
}

/** Starts the set; see the file comment. Stop it with `stop()` (or the file's `stopAllRedis()`). */
export async function startSentinelSet(options: SentinelSetOptions = {}): Promise<SentinelSet> {
  const settings: Required<SentinelSetOptions> = {
    name: options.name ?? 'mymaster',
    downAfterMs: options.downAfterMs ?? 1000,
    failoverTimeoutMs: options.failoverTimeoutMs ?? 3000,
    timeoutMs: options.timeoutMs ?? 20_000,
  };
  const { name, timeoutMs } = settings;
  const first = await startRedis();
  const servers: RedisProcess[] = [first];
  const sentinels: RedisProcess[] = [];
  try {
    servers.push(await startRedis({ args: ['--replicaof', HOST, String(first.port)] }));
    for (let i = 0; i < 3; i++) {
      sentinels.push(await startRedis({ config: sentinelConfig(name, first.port, settings), args: ['--sentinel'] }));
    }
  } catch (error) {
    await Promise.all([...servers, ...sentinels].map((server) => server.stop()));
    throw error;
  }
  const set = new ManagedSentinelSet(settings, servers, sentinels);
  try {
    await until('the replica to sync', timeoutMs, () => linkUp(servers[1] as RedisProcess));
    await until('every sentinel to know the master, the replica and the other sentinels', timeoutMs, async () => {
      const views = await Promise.all(sentinels.map((s) => s.cli('SENTINEL', 'MASTER', name).then(fields)));
      return views.every((v) => v.get('num-slaves') === '1' && v.get('num-other-sentinels') === '2');
    });
  } catch (error) {
    await set.stop();
    throw error;
  }
  return set;
}

class ManagedSentinelSet implements SentinelSet {
  readonly name: string;
  readonly downAfterMs: number;
  readonly servers: readonly RedisProcess[];
  readonly sentinels: readonly RedisProcess[];
  readonly endpoints: readonly SentinelEndpoint[];
  readonly #timeoutMs: number;
  #master: RedisProcess;

  constructor(settings: Required<SentinelSetOptions>, servers: RedisProcess[], sentinels: RedisProcess[]) {
    this.name = settings.name;
    this.downAfterMs = settings.downAfterMs;
    this.#timeoutMs = settings.timeoutMs;
    this.servers = servers;
    this.sentinels = sentinels;
    this.endpoints = sentinels.map((s) => ({ host: HOST, port: s.port }));
    this.#master = servers[0] as RedisProcess;
  }

  get master(): RedisProcess {
    return this.#master;
  }

  async masterPort(): Promise<number | undefined> {
    for (const sentinel of this.sentinels) {
      if (!sentinel.running) continue;
      try {
        const [, port] = (await sentinel.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)).split('\n');
        if (port !== undefined && port !== '') return Number(port);
      } catch {
        // Ask the next one.
      }
    }
    return undefined;
  }

  async failover(): Promise<SentinelFailover> {
    const { killedAt, promoted, old } = await this.killMaster();
    return { killedAt, promotedAt: await promoted, old };
  }

  async killMaster(): Promise<SentinelKill> {
    const old = this.#master;
    const next = this.servers.find((server) => server !== old && server.running);
    if (next === undefined) throw new Error('Sentinel set: no replica left to fail over to');
    // One connection per sentinel, opened before the kill: polling with redis-cli would spawn 150 processes a second
    // on the machine whose failover is being timed.
    const clients = await Promise.all(this.sentinels.map((s) => sentinelClient(s.port)));
    try {
      await old.kill('SIGKILL');
    } catch (error) {
      for (const client of clients) client.disconnect();
      throw error;
    }
    const killedAt = Date.now();
    // Every sentinel, not just one: a client may ask any of them.
    const promoted = until(`the sentinels to promote port ${next.port}`, this.#timeoutMs, async () => {
      const answers = await Promise.all(
        clients.map((c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name) as Promise<unknown>),
      );
      return answers.every((answer) => Array.isArray(answer) && String(answer[1]) === String(next.port));
    })
      .then(() => {
        this.#master = next;
        return Date.now();
      })
      .finally(() => {
        for (const client of clients) client.disconnect();
      });
    return { killedAt, promoted, old };
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((server) => server.stop()));
  }
}
