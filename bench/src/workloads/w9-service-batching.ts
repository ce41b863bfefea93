import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runThroughput } from '../harness.js';
import type { BenchConfig, ThroughputCase, Workload } from '../harness.js';
import { freePort } from '../redis-server.js';

const CONNECTIONS = 64;
/** Hot product pages: every one in Redis after the first request, none in memory (the tier is off). */
const PAGES = 8;
const START_TIMEOUT_MS = 120_000;
const SERVICE_DIR = fileURLToPath(new URL('../../../examples/service/', import.meta.url));

const running = new Set<ChildProcess>();

/** Kills the services still running; called on SIGINT and at the end of the workload. */
export function killServices(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

interface Service {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * The reference service as `npm start` runs it (its own process, so the load generator here and the service each get
 * a core), on PGlite in a temp dir, with its memory tier off so every page read is a Redis read.
 */
async function startService(config: BenchConfig, batching: boolean): Promise<Service> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'tiercache-bench-w9-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: SERVICE_DIR,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      WORKER_INTERVAL: '0',
      TRENDS_INTERVAL: '0',
      REDIS_URL: `redis://${config.redis.host}:${config.redis.port}`,
      CACHE_PREFIX: `w9-${batching ? 'on' : 'off'}-${process.pid}:`,
      CACHE_MEMORY: '0',
      CACHE_BATCHING: batching ? '1' : '0',
      PGLITE_DIR: dir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    running.delete(child);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`the service exited during start-up: ${output.slice(-500)}`);
    }
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('the service did not answer /health in time');
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { port, stop };
}

/** A keep-alive GET that resolves with the parsed JSON body. */
function getJson(agent: http.Agent, port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        if (response.statusCode !== 200) reject(new Error(`HTTP ${response.statusCode ?? '?'} for ${path}`));
        else {
          try {
            resolve(JSON.parse(body));
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        }
      });
    });
    request.on('error', reject);
  });
}

function serviceCase(
  config: BenchConfig,
  system: string,
  role: ThroughputCase['role'],
  batching: boolean,
): ThroughputCase {
  let service: Service | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  return {
    system,
    role,
    note: `CACHE_MEMORY=0 CACHE_BATCHING=${batching ? 1 : 0}, ${CONNECTIONS} keep-alive connections`,
    async setup() {
      service = await startService(config, batching);
      const port = service.port;
      // Every page loaded once (from the database into Redis), so the run measures Redis hits.
      for (let page = 1; page <= PAGES; page++) await getJson(agent, port, `/products/${page}`);
      return { kind: 'async', run: (i: number) => getJson(agent, port, `/products/${1 + (i % PAGES)}`) };
    },
    async teardown() {
      agent.destroy();
      await service?.stop();
    },
  };
}

export const w9: Workload = {
  id: 'W9',
  title: 'The reference service, memory tier off: hot product pages over 64 HTTP connections, batching on vs off',
  systems: ['service batching off', 'service batching on'],
  async run(config, select) {
    try {
      return await runThroughput(
        {
          id: 'W9',
          title: this.title,
          description:
            `Two instances of the reference service (Fastify, PGlite) on the bench Redis, memory tier off, one with ` +
            `same-turn batching and one without; ${CONNECTIONS} keep-alive connections from this process request ` +
            `${PAGES} hot product pages in turn (each a Redis hit; real request arrival, not a loop of calls).`,
          concurrency: CONNECTIONS,
          batch: undefined,
          check: (value) => typeof value === 'object' && value !== null,
        },
        [
          serviceCase(config, 'service batching off', 'reference', false),
          serviceCase(config, 'service batching on', 'subject', true),
        ].filter((c) => c.role === 'reference' || select(c.system)),
        // A request takes milliseconds under 64 connections: slices long enough to hold many of them.
        {
          ...config,
          sliceMs: Math.max(config.sliceMs, config.mode === 'full' ? 500 : 200),
          slices: Math.min(config.slices, 12),
        },
      );
    } finally {
      killServices();
    }
  },
};
