/**
 * A private 3-master Redis Cluster for the cluster workload: three redis-server processes from startRedisServer (each
 * in its own temp dir, nodes.conf there), slots assigned by `redis-cli --cluster create`, no replicas (reads go to
 * masters; replicas would only take CPU from the measurement). Stopped by the caller, or by killAllStarted.
 */
import { execFile } from 'node:child_process';
import { rawCommand, startRedisServer } from './redis-server.js';
import type { RedisServer } from './redis-server.js';

export interface RedisClusterServers {
  readonly nodes: readonly { host: string; port: number }[];
  readonly formedMs: number;
  stop(): Promise<void>;
}

const MASTERS = 3;

function createCluster(ports: readonly number[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ];
    execFile('redis-cli', args, { timeout: 20_000 }, (error, _stdout, stderr) =>
      error ? reject(new Error(`redis-cli --cluster create failed: ${stderr || error.message}`)) : resolve(),
    );
  });
}

export async function startRedisCluster(): Promise<RedisClusterServers> {
  const started = performance.now();
  const servers: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.stop()));
  };
  try {
    for (let i = 0; i < MASTERS; i++) {
      servers.push(
        await startRedisServer([
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '2000',
        ]),
      );
    }
    await createCluster(servers.map((server) => server.port));
    const deadline = Date.now() + 20_000;
    for (const server of servers) {
      while (!/cluster_state:ok/.test(await rawCommand(server.port, 'CLUSTER INFO'))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${server.port} never reported cluster_state:ok`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes: servers.map((server) => ({ host: server.host, port: server.port })),
    formedMs: Math.round(performance.now() - started),
    stop,
  };
}
