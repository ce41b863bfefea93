import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from 'tiercache';
import { ZodError } from 'zod';

/** Errors the service raises itself. The code is stable; the message is for people. */
export const AppErrorCode = {
  NotFound: 'NOT_FOUND',
  BadRequest: 'BAD_REQUEST',
} as const;
export type AppErrorCode = (typeof AppErrorCode)[keyof typeof AppErrorCode];

export class AppError extends Error {
  readonly code: AppErrorCode;
  constructor(code: AppErrorCode, message: string) {
    super(message);
    this.name = 'AppError';
    this.code = code;
  }
}

/**
 * One table from error code to HTTP status, for our errors, Fastify's, tiercache's and the database drivers'. Whatever
 * is not listed is a 500. tiercache's read path never throws for Redis trouble (it falls back to the database), so its
 * codes only show up here if a write was configured to throw or the cache was closed during shutdown.
 */
export const ERROR_STATUS: Readonly<Record<string, number>> = {
  [AppErrorCode.NotFound]: 404,
  [AppErrorCode.BadRequest]: 400,
  FST_ERR_VALIDATION: 400,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  [ErrorCode.InvalidKey]: 400,
  [ErrorCode.Connection]: 503,
  [ErrorCode.Timeout]: 503,
  [ErrorCode.Closed]: 503,
  [ErrorCode.Serialization]: 500,
  [ErrorCode.Configuration]: 500,
  // node-postgres and PGlite: the server is unreachable or going away.
  ECONNREFUSED: 503,
  ECONNRESET: 503,
  '57P01': 503, // admin_shutdown
  '57P03': 503, // cannot_connect_now
  '53300': 503, // too_many_connections
};

function codeOf(error: unknown): string | undefined {
  if (error instanceof ZodError) return AppErrorCode.BadRequest;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function statusOf(error: unknown): number {
  const code = codeOf(error);
  const listed = code === undefined ? undefined : ERROR_STATUS[code];
  if (listed !== undefined) return listed;
  const own = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof own === 'number' && own >= 400 && own < 500 ? own : 500;
}

/** Answers `{ error: { code, message } }`; a 5xx is logged and its message withheld (it may name hosts or SQL). */
export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  const status = statusOf(error);
  const code = codeOf(error) ?? (status === 500 ? 'INTERNAL' : 'ERROR');
  let message = status >= 500 ? 'The service could not answer this request' : error.message;
  if (error instanceof ZodError) {
    message = error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ');
  }
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  void reply.code(status).send({ error: { code, message } });
}
