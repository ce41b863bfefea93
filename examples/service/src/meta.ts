/** `cacheExpiresIn` in answers: whole seconds, for people reading the JSON; null when the answer is not a cached one. */
export function secondsLeft(expiresInMs: number | undefined): number | null {
  return expiresInMs === undefined || expiresInMs <= 0 ? null : Math.round(expiresInMs / 1000);
}

/** What the jobs and scripts log through: pino in the service, the console when a job runs on its own. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const consoleLogger: Logger = {
  info: (m) => console.info(m),
  warn: (m) => console.warn(m),
  error: (m) => console.error(m),
};
