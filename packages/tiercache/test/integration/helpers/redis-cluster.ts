/**
 * A real 6-node Redis Cluster (3 masters, 3 replicas) for integration tests, built from the redis-server helper: each
 * node on its own free loopback port and temp dir (its nodes.conf lives there, so a restarted node rejoins), stopped by
 * pid. `redis-cli --cluster create` assigns the slots; the helper then waits until every node agrees the cluster is ok.
 */
import { execFile } from 'node:child_process';
import { Cluster } from 'ioredis';
import type { ClusterOptions } from 'ioredis';
import { sendCommand, startRedis } from './redis-server.js';
import type { RedisProcess } from './redis-server.js';

export const SLOT_COUNT = 16_384;

export interface StartClusterOptions {
  /** Masters; each gets `replicasPerMaster` replicas. @default 3 */
  readonly masters?: number;
  /** @default 1 */
  readonly replicasPerMaster?: number;
  /**
   * `cluster-node-timeout`: how long a master may be unreachable before its replica is promoted. Debian's default of
   * 15 000 ms makes a failover test wait for ages. @default 2000
   */
  readonly nodeTimeoutMs?: number;
  /** Longest wait for the cluster to form (slots assigned, every node `cluster_state:ok`). @default 20_000 */
  readonly readyTimeoutMs?: number;
  /** Extra redis-server arguments for every node. */
  readonly args?: readonly string[];
}

export interface ClusterNodeView {
  /** The node's cluster id (40 hex chars). */
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** The master this node replicates (its id); undefined for a master. */
  readonly masterId: string | undefined;
  /** Slot ranges served, inclusive, for a master. */
  readonly slots: readonly (readonly [number, number])[];
  /** The process, to kill, pause or restart it. */
  readonly process: RedisProcess;
}

export interface RedisClusterProcess {
  /** Every node's process, in start order. */
  readonly processes: readonly RedisProcess[];
  /** The `{host, port}` list to hand to an ioredis `Cluster` or to tiercache. */
  readonly startupNodes: readonly { host: string; port: number }[];
  /** How long forming the cluster took, from the first spawn to `cluster_state:ok` everywhere, in ms. */
  readonly startMs: number;
  /** The current topology as a running node sees it (roles change after a failover). */
  nodes(): Promise<ClusterNodeView[]>;
  /** The current masters. */
  masters(): Promise<ClusterNodeView[]>;
  /** The master that owns `key`'s slot right now (for failover tests: kill the one that holds a key). */
  masterFor(key: string): Promise<ClusterNodeView>;
  /** The slot of `key`, as the server computes it (hash tags included). */
  slotOf(key: string): Promise<number>;
  /** Waits until every running node says `cluster_state:ok` and all slots are served (e.g. after a failover). */
  waitReady(timeoutMs?: number): Promise<void>;
  /** A new ioredis `Cluster` on these nodes, connected; the caller closes it (or `stop()` disconnects it). */
  client(options?: ClusterOptions): Promise<Cluster>;
  /** Disconnects the clients made by `client()`, kills every node by pid, removes their dirs. Safe to call twice. */
  stop(): Promise<void>;
}

function redisCli(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', [...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')} failed: ${stderr || error.message}\n${stdout}`));
      else resolve(stdout);
    });
  });
}

/** Parses `CLUSTER NODES` (one line per node: id addr flags master ping pong epoch link slot…). */
function parseNodes(text: string, byPort: ReadonlyMap<number, RedisProcess>): ClusterNodeView[] {
  const views: ClusterNodeView[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 8) continue;
    const [id, address, flags, master] = fields as [string, string, string, string];
    if (flags.includes('fail') && !flags.includes('fail?')) continue;
    const port = Number(/:(\d+)@/.exec(address)?.[1]);
    const process = byPort.get(port);
    if (process === undefined) continue;
    const slots: [number, number][] = [];
    for (const range of fields.slice(8)) {
      if (range.startsWith('[')) continue; // a slot being migrated or imported
      const [from, to] = range.split('-').map(Number) as [number, number | undefined];
      slots.push([from, to ?? from]);
    }
    const isMaster = flags.includes('master');
    views.push({
      id,
      port,
      role: isMaster ? 'master' : 'replica',
      masterId: isMaster ? undefined : master,
      slots,
      process,
    });
  }
  return views;
}

/**
 * Why the cluster is not ready yet, or undefined once every running node says ok with all slots served, sees every
 * running node beyond the masters as a replica, and each running replica's link to its master is up (so a failover
 * can promote it). A node killed and not restarted is left out of the count.
 */
async function clusterReady(processes: readonly RedisProcess[], masters: number): Promise<string | undefined> {
  const replicas = processes.filter((node) => node.running).length - masters;
  for (const node of processes) {
    if (!node.running) continue;
    try {
      const info = await sendCommand(node.port, ['CLUSTER', 'INFO'], 1000);
      if (!/^cluster_state:ok\r?$/m.test(info)) return `node ${node.port} is not ok yet`;
      if (!new RegExp(`^cluster_slots_ok:${SLOT_COUNT}\\r?$`, 'm').test(info)) {
        return `node ${node.port} does not see all ${SLOT_COUNT} slots ok yet`;
      }
      const table = await sendCommand(node.port, ['CLUSTER', 'NODES'], 1000);
      const seen = table.split('\n').filter((line) => / (myself,)?slave /.test(line) && !/ fail /.test(line)).length;
      if (seen < replicas) return `node ${node.port} sees ${seen} of ${replicas} replicas`;
      const replication = await sendCommand(node.port, ['INFO', 'replication'], 1000);
      if (/^role:slave\r?$/m.test(replication) && !/^master_link_status:up\r?$/m.test(replication)) {
        return `replica ${node.port} has no link to its master yet`;
      }
    } catch (error) {
      return `node ${node.port}: ${(error as Error).message}`;
    }
  }
  return undefined;
}

/** Starts the nodes, forms the cluster and resolves once it is ok on every node. Rejects (stopping them) otherwise. */
export async function startRedisCluster(options: StartClusterOptions = {}): Promise<RedisClusterProcess> {
  const masterCount = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const args = [
    '--cluster-enabled',
    'yes',
    // Relative to --dir (the node's own temp dir), so a restart finds it and the node rejoins with its id.
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(options.nodeTimeoutMs ?? 2000),
    // A test that kills every master expects the survivors to refuse, not to serve a partial keyspace silently.
    '--cluster-require-full-coverage',
    'yes',
    // Redis 7 waits 5 s for more replicas before a diskless full sync; a replica with no link cannot be promoted.
    '--repl-diskless-sync-delay',
    '0',
    ...(options.args ?? []),
  ];
  const started = Date.now();
  const settled = await Promise.allSettled(
    Array.from({ length: masterCount * (1 + replicas) }, () => startRedis({ args })),
  );
  const processes = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const clients = new Set<Cluster>();
  const stop = async (): Promise<void> => {
    for (const client of clients) client.disconnect();
    clients.clear();
    await Promise.all(processes.map((node) => node.stop()));
  };
  try {
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await redisCli(
      [
        '--cluster',
        'create',
        ...processes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      readyTimeoutMs,
    );
    await waitClusterReady(processes, masterCount, readyTimeoutMs);
  } catch (error) {
    await stop();
    throw error;
  }
  const startMs = Date.now() - started;
  const byPort = new Map(processes.map((node) => [node.port, node]));

  const nodes = async (): Promise<ClusterNodeView[]> => {
    for (const node of processes) {
      if (!node.running) continue;
      try {
        return parseNodes(await sendCommand(node.port, ['CLUSTER', 'NODES'], 1000), byPort);
      } catch {
        // Stopped by SIGSTOP or just killed: ask the next one.
      }
    }
    throw new Error('no cluster node answers CLUSTER NODES');
  };
  const masters = async () => (await nodes()).filter((node) => node.role === 'master' && node.slots.length > 0);
  const slotOf = async (key: string): Promise<number> => {
    for (const node of processes) {
      if (!node.running) continue;
      try {
        return Number(await sendCommand(node.port, ['CLUSTER', 'KEYSLOT', key], 1000));
      } catch {
        // Try the next node.
      }
    }
    throw new Error('no cluster node answers CLUSTER KEYSLOT');
  };

  return {
    processes,
    startupNodes: processes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    startMs,
    nodes,
    masters,
    slotOf,
    async masterFor(key) {
      const slot = await slotOf(key);
      const owner = (await masters()).find((node) => node.slots.some(([from, to]) => slot >= from && slot <= to));
      if (owner === undefined) throw new Error(`no master serves slot ${slot} right now`);
      return owner;
    },
    waitReady: (timeoutMs = readyTimeoutMs) => waitClusterReady(processes, masterCount, timeoutMs),
    async client(clientOptions = {}) {
      // Replies as ioredis 5 shaped them (the default), stated so the options type narrows to Cluster<'legacy'>.
      const redisOptions = { maxRetriesPerRequest: 1, ...clientOptions.redisOptions, replyMapping: 'legacy' as const };
      const client = new Cluster(
        processes.map((node) => ({ host: '127.0.0.1', port: node.port })),
        {
          lazyConnect: true,
          clusterRetryStrategy: () => 200,
          ...clientOptions,
          redisOptions,
        },
      );
      client.on('error', () => {});
      clients.add(client);
      await client.connect();
      return client;
    },
    stop,
  };
}

async function waitClusterReady(processes: readonly RedisProcess[], masters: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = await clusterReady(processes, masters);
    if (pending === undefined) return;
    if (Date.now() > deadline) {
      const logs = processes.map((node) => `--- ${node.port}\n${node.log(8)}`).join('\n');
      throw new Error(`cluster not ready after ${timeoutMs} ms: ${pending}\n${logs}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
