/**
 * `npm run load -w tiercache-example-service`: the same service twice, hot `GET /products/:id` under autocannon on
 * loopback, first with the cache and then with CACHE_DISABLED=1 (every request runs the page's four queries), and the
 * ratio of the two. Bounded: two runs of `--duration` seconds plus start-up; both servers are stopped at the end.
 *
 * The service and autocannon run as separate processes, so on a 2-core machine each gets a core. The service runs as
 * `node --import tsx` (as `npm start` does): one process, so SIGTERM reaches its graceful shutdown directly.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    product: { type: 'string', default: '1' },
  },
});
const duration = Number(args.duration);
const connections = Number(args.connections);
const path = `/products/${Number(args.product)}`;
if (!(duration > 0 && duration <= 60) || !(connections > 0 && connections <= 500)) {
  throw new Error('Expected --duration in 1..60 seconds and --connections in 1..500');
}

const serviceDir = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const autocannonCli = require.resolve('autocannon/autocannon.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Service {
  readonly url: string;
  stop(): Promise<void>;
}

async function startService(env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: serviceDir,
    env: {
      ...process.env,
      ...env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      WORKER_INTERVAL: '0',
      TRENDS_INTERVAL: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited during start-up:\n${output}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the service did not answer /health within 90 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface Result {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly dbQueries: string | null;
  readonly source: string;
}

async function measure(service: Service): Promise<Result> {
  // One request first: the cached run then measures hits only, and both runs report what one request costs.
  await fetch(service.url + path);
  const probe = await fetch(service.url + path);
  const body = (await probe.json()) as { meta?: { source?: string } };
  const child = spawn(
    process.execPath,
    // A long timeout: the uncached run queues requests for seconds, and those are slow answers, not failures.
    [autocannonCli, '--json', '-t', '30', '-c', String(connections), '-d', String(duration), service.url + path],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.resume();
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`autocannon exited with ${code}`))));
  });
  const r = JSON.parse(out) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
  };
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    dbQueries: probe.headers.get('x-db-queries'),
    source: body.meta?.source ?? '?',
  };
}

const fmt = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const line = (name: string, r: Result): string =>
  `${name.padEnd(28)} ${fmt.format(r.rps).padStart(8)} req/s   p50 ${r.p50} ms   p99 ${r.p99} ms   ` +
  `(${fmt.format(r.requests)} requests, ${r.non2xx + r.errors} failed; source ${r.source}, x-db-queries ${r.dbQueries})`;

const databaseUrl = process.env['DATABASE_URL'] || undefined;
// PGlite in a temp dir, or a schema of this run's own on the given server: the run leaves no tables behind.
const dataDir = databaseUrl === undefined ? await mkdtemp(join(tmpdir(), 'tiercache-load-')) : undefined;
const schema =
  databaseUrl !== undefined && !process.env['DATABASE_SCHEMA'] ? `tiercache_load_${process.pid}` : undefined;
const common: Record<string, string> = {
  CACHE_PREFIX: `tiercache-load-${process.pid}:`,
  ...(dataDir === undefined ? {} : { PGLITE_DIR: dataDir }),
  ...(schema === undefined ? {} : { DATABASE_SCHEMA: schema }),
};
console.log(
  `GET ${path}: ${duration} s, ${connections} connections, 127.0.0.1; database: ${databaseUrl === undefined ? 'PGlite (temp dir)' : `PostgreSQL (DATABASE_URL${schema === undefined ? '' : `, schema ${schema}`})`}`,
);
try {
  const results: Result[] = [];
  for (const disabled of [false, true]) {
    const service = await startService({ ...common, CACHE_DISABLED: disabled ? '1' : '0' });
    try {
      results.push(await measure(service));
    } finally {
      await service.stop();
    }
  }
  const [on, off] = results as [Result, Result];
  console.log(line('cache on', on));
  console.log(line('cache off (CACHE_DISABLED=1)', off));
  const ratio = on.rps / off.rps;
  console.log(`ratio: ${ratio.toFixed(1)}× (target ≥ 5×)${ratio >= 5 ? '' : ' — BELOW TARGET'}`);
  if (on.non2xx + on.errors + off.non2xx + off.errors > 0) {
    console.log('warning: some requests failed; the figures above are not comparable');
    process.exitCode = 1;
  }
} finally {
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  if (schema !== undefined) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
}
