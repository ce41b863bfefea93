/**
 * `npm run worker`: one run of the news worker on its own (cron-style), against the same database and Redis as the
 * service. The service's own in-process worker does the same on WORKER_INTERVAL.
 */
import { ConfigError, loadConfig } from './config.js';
import { openDb } from './db/index.js';
import { migrate } from './db/migrate.js';
import { runNewsWorker } from './news/worker.js';
import { createServiceCache } from './plugins/cache.js';

try {
  const config = loadConfig();
  const db = await openDb(config.database);
  const cache = createServiceCache(config);
  try {
    await migrate(db);
    if (!config.cacheDisabled && !(await cache.ready('3s'))) {
      console.warn(
        `Redis is not reachable at ${config.redisTarget}: articles are stored, but the lists are not warmed (the API serves them from the database). Start Redis with \`redis-server --daemonize yes\`.`,
      );
    }
    const started = performance.now();
    const r = await runNewsWorker(db, cache);
    console.info(
      `news worker: ${r.fetched} fetched, ${r.unique} unique, ${r.inserted} new, ${r.updated} updated, ${r.warmed} cache entries warmed in ${Math.round(performance.now() - started)} ms`,
    );
  } finally {
    await cache.close();
    await db.close();
  }
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : `news worker failed: ${String(error)}`);
  process.exitCode = 1;
}
