/**
 * `npm run trends`: one run of the trends batch on its own, as a cron job would run it. It evicts the API's cached
 * `/trends` through `DELETE /internal/cache` when TRENDS_EVICT_URL and INTERNAL_KEY are both set, and says so in one
 * line when they are not (unlike the service, it does not fall back to the development key).
 */
import { ConfigError, loadConfig } from './config.js';
import { openDb } from './db/index.js';
import { migrate } from './db/migrate.js';
import { consoleLogger } from './meta.js';
import { runTrendsBatch, trendsEvictor } from './trends/batch.js';

try {
  const config = loadConfig();
  const db = await openDb(config.database);
  try {
    await migrate(db);
    const evictor = trendsEvictor(
      { url: config.trendsEvictUrl, key: config.internalKeyIsDefault ? undefined : config.internalKey },
      consoleLogger,
    );
    await runTrendsBatch(db, evictor, consoleLogger);
  } finally {
    await db.close();
  }
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : `trends batch failed: ${String(error)}`);
  process.exitCode = 1;
}
