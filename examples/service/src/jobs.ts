import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { Logger } from './meta.js';
import { runNewsWorker } from './news/worker.js';
import { runTrendsBatch, trendsEvictor } from './trends/batch.js';

/**
 * A background task on an interval: never two runs at once, failures logged (never an unhandled rejection), and
 * `stop()` waits for a run in progress so the database and cache it uses are closed after it, not under it.
 */
export class IntervalJob {
  readonly #name: string;
  readonly #run: () => Promise<void>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(name: string, run: () => Promise<void>, log: Logger) {
    this.#name = name;
    this.#run = run;
    this.#log = log;
  }

  /** Runs now, then every `intervalMs`. */
  start(intervalMs: number): void {
    if (this.#stopped) return;
    void this.runOnce();
    this.#timer = setInterval(() => void this.runOnce(), intervalMs);
  }

  runOnce(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#running ??= this.#run()
      .catch((error: unknown) =>
        this.#log.error(`${this.#name} failed: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}

function logger(app: FastifyInstance): Logger {
  return { info: (m) => app.log.info(m), warn: (m) => app.log.warn(m), error: (m) => app.log.error(m) };
}

/**
 * The news worker and the trends batch, in-process on their intervals (0 turns one off; `npm run worker` and
 * `npm run trends` run them alone). The batch starts once the server listens, because by default it calls this very
 * service's evict endpoint, the way a batch running elsewhere would.
 */
export function scheduleJobs(app: FastifyInstance, config: Config): void {
  const log = logger(app);
  const jobs: IntervalJob[] = [];

  if (config.workerIntervalMs > 0) {
    const worker = new IntervalJob(
      'news worker',
      async () => {
        const started = performance.now();
        const r = await runNewsWorker(app.db, app.cache);
        log.info(
          `news worker: ${r.fetched} fetched, ${r.unique} unique, ${r.inserted} new, ${r.updated} updated, ${r.warmed} cache entries warmed in ${Math.round(performance.now() - started)} ms`,
        );
      },
      log,
    );
    jobs.push(worker);
    app.addHook('onReady', async () => {
      // Give a Redis that is starting with us a moment, so the first warm-up reaches it and not only this memory tier.
      void app.cache.ready('2s').then(() => worker.start(config.workerIntervalMs));
    });
  }

  if (config.trendsIntervalMs > 0) {
    app.addHook('onListen', async () => {
      const address = app.server.address() as AddressInfo | null;
      const own =
        address === null
          ? undefined
          : `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/internal/cache`;
      const evictor = trendsEvictor({ url: config.trendsEvictUrl ?? own, key: config.internalKey }, log);
      const batch = new IntervalJob('trends batch', async () => void (await runTrendsBatch(app.db, evictor, log)), log);
      jobs.push(batch);
      batch.start(config.trendsIntervalMs);
    });
  }

  app.addHook('onClose', async () => {
    await Promise.all(jobs.map((job) => job.stop()));
  });
}
