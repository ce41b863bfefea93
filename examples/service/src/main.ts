import { buildApp } from './app.js';
import { ConfigError, DEV_INTERNAL_KEY, loadConfig } from './config.js';
import type { Config } from './config.js';

/** How long a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

const config = configOrExit();

const app = await buildApp({ config });

let closing = false;
const shutdown = (signal: NodeJS.Signals): void => {
  if (closing) {
    app.log.warn(`${signal} again: exiting now`);
    process.exit(1);
  }
  closing = true;
  app.log.info(`${signal}: closing (stop accepting, finish requests, stop jobs, close cache and database)`);
  const force = setTimeout(() => {
    app.log.error(`shutdown took longer than ${SHUTDOWN_GRACE_MS} ms: exiting`);
    process.exit(1);
  }, SHUTDOWN_GRACE_MS);
  force.unref();
  app.close().then(
    () => process.exit(0),
    (error: unknown) => {
      app.log.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

try {
  const address = await app.listen({ port: config.port, host: config.host });
  const key = config.internalKeyIsDefault ? ` — internal key (development): ${DEV_INTERNAL_KEY}` : '';
  app.log.info(`tiercache reference service on ${address} — dashboard: ${address}/dashboard${key}`);
} catch (error) {
  app.log.error({ err: error }, 'could not start');
  await app.close();
  process.exit(1);
}
