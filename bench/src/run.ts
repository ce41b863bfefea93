/**
 * `npm run bench [-- --quick] [-- --filter <substring>] [-- --json <path>]`: runs the workloads against a private
 * redis-server and prints one markdown table per workload. Bounded: a watchdog ends the run if it overstays its
 * budget by a minute, whatever is stuck.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, SETTINGS, parseArgs, runBench } from './bench.js';
import { killAllStarted } from './redis-server.js';
import { killChildren } from './workloads/w6-cross-process.js';
import { killServices } from './workloads/w9-service-batching.js';

function abort(reason: string, code: number): never {
  process.stderr.write(`\n${reason}\n`);
  killChildren();
  killServices();
  killAllStarted();
  process.exit(code);
}

let options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  abort(error instanceof Error ? error.message : String(error), 2);
}

if (!existsSync(join(BENCH_DIR, '..', 'packages', 'tiercache', 'dist', 'index.js'))) {
  abort(
    'tiercache is not built: run `npm run bench` from the repository root (it builds first), or `npm run build`.',
    2,
  );
}

process.once('SIGINT', () => abort('interrupted: stopped redis-server and child processes', 130));
process.once('SIGTERM', () => abort('terminated: stopped redis-server and child processes', 143));
const watchdog = setTimeout(
  () => abort('the bench overstayed its budget by a minute; stopped', 3),
  SETTINGS[options.mode].budgetMs + 60_000,
);
watchdog.unref();

try {
  await runBench(options);
  clearTimeout(watchdog);
} catch (error) {
  abort(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 1);
}
// Peers leave sockets and timers behind (reconnect loops to the dead port, bus subscribers); the run is over.
process.exit(0);
