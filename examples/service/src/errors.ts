import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from 'tiercache';
import { ZodError } from 'zod';

/**
 * The codes of every error body the service sends, whoever raised the error (a route, Fastify's body parser, the
 * router, the evict endpoint, tiercache, the database driver). The code is stable; the message is for people.
 */
export const AppErrorCode = {
  BadRequest: 'BAD_REQUEST',
  Unauthorized: 'UNAUTHORIZED',
  NotFound: 'NOT_FOUND',
  MethodNotAllowed: 'METHOD_NOT_ALLOWED',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  UnsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  Internal: 'INTERNAL',
  Unavailable: 'UNAVAILABLE',
} as const;
export type AppErrorCode = (typeof AppErrorCode)[keyof typeof AppErrorCode];

/** The one error body of the service: `{ "error": { "code": "NOT_FOUND", "message": "No product 999" } }`. */
export interface ErrorBody {
  readonly error: { readonly code: AppErrorCode; readonly message: string };
}

/** The code of each status the service answers with; anything else is named by its class (4xx, 5xx). */
const CODE_OF_STATUS: Readonly<Record<number, AppErrorCode>> = {
  400: AppErrorCode.BadRequest,
  401: AppErrorCode.Unauthorized,
  404: AppErrorCode.NotFound,
  405: AppErrorCode.MethodNotAllowed,
  413: AppErrorCode.PayloadTooLarge,
  415: AppErrorCode.UnsupportedMediaType,
  500: AppErrorCode.Internal,
  503: AppErrorCode.Unavailable,
};

export function errorBody(status: number, message: string): ErrorBody {
  const code = CODE_OF_STATUS[status] ?? (status >= 500 ? AppErrorCode.Internal : AppErrorCode.BadRequest);
  return { error: { code, message } };
}

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
  [AppErrorCode.BadRequest]: 400,
  [AppErrorCode.Unauthorized]: 401,
  [AppErrorCode.NotFound]: 404,
  [AppErrorCode.MethodNotAllowed]: 405,
  [AppErrorCode.PayloadTooLarge]: 413,
  [AppErrorCode.UnsupportedMediaType]: 415,
  [AppErrorCode.Internal]: 500,
  [AppErrorCode.Unavailable]: 503,
  FST_ERR_VALIDATION: 400,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
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

/** What Fastify's body parser says, in words that do not name Fastify's internals. */
const PARSER_MESSAGES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_EMPTY_JSON_BODY: 'Expected a JSON body, got an empty body with content-type application/json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'Expected a JSON body, got malformed JSON',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Expected content-type application/json',
};

/**
 * Answers `{ error: { code, message } }` for every error of a route or of the body parser; a 5xx is logged and its
 * message withheld (it may name hosts or SQL).
 */
export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  const status = statusOf(error);
  let message = status >= 500 ? 'The service could not answer this request' : error.message;
  if (error instanceof ZodError) {
    message = error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ');
  } else {
    const code = codeOf(error);
    message = (code === undefined ? undefined : PARSER_MESSAGES[code]) ?? message;
  }
  if (status >= 500) request.log.error({ err: error }, 'request failed');
  void reply.code(status).send(errorBody(status, message));
}
