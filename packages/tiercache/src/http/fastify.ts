// Types only: fastify is an optional peer, and this module must load in a service that does not have it installed.
import type { FastifyError, FastifyPluginAsync } from 'fastify';
import { createEvictCore, error } from './core.js';
import type { EvictHandlerOptions } from './core.js';

export interface EvictPluginOptions extends EvictHandlerOptions {
  /**
   * The route the plugin registers for `DELETE`.
   * @default '/internal/cache'
   */
  readonly path?: string;
}

/**
 * The internal evict endpoint as a Fastify plugin: `app.register(evictPlugin, { cache, keys, path })` registers
 * `DELETE path` with the same contract as `createEvictHandler` (same key check, body rules, statuses and messages,
 * from the same code). The key is checked in the route's `onRequest` hook, before the body is read.
 *
 * Deliberately not wrapped in fastify-plugin (no `Symbol.for('skip-override')`): the plugin replaces the body parsers
 * of its own context so that it reads the body as text and applies its own JSON rules, and sets a route error handler;
 * encapsulation keeps both from leaking into the host application's other routes. Nothing it declares needs to be
 * visible outside (no decorators, no shared hooks).
 */
export const evictPlugin: FastifyPluginAsync<EvictPluginOptions> = async (app, options) => {
  const core = createEvictCore(options);
  const path = options.path ?? '/internal/cache';

  // Every content type (and none) is read as text under the body limit and judged by the shared parser, so a body
  // that is not JSON gets the same 400 as from the plain handler instead of Fastify's 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: core.maxBodyBytes }, (_request, body, done) => {
    done(null, body);
  });

  app.route({
    method: 'DELETE',
    url: path,
    bodyLimit: core.maxBodyBytes,
    onRequest: async (request, res) => {
      if (core.authorized(request.headers[core.header])) return;
      core.warn(`refused an eviction from ${request.ip}: missing or wrong key`);
      const refused = error(401, `Missing or wrong key in the ${core.header} header`);
      // Returning the reply tells Fastify the request is answered: no body parsing, no handler.
      return res.code(refused.status).header('cache-control', 'no-store').send(core.render(refused));
    },
    // Parser failures (body too large, length mismatch, aborted upload) arrive here with Fastify's status; they are
    // answered in the endpoint's JSON shape rather than the host application's error format.
    errorHandler: (failure: FastifyError, _request, res) => {
      const status = failure.statusCode;
      const answer =
        status === 413
          ? error(413, `The body exceeds ${core.maxBodyBytes} bytes`)
          : status !== undefined && status >= 400 && status < 500
            ? error(400, 'Malformed request body')
            : error(500, 'Internal error');
      if (answer.status === 500) core.warn(`unexpected failure: ${failure.message}`);
      void res.code(answer.status).header('cache-control', 'no-store').send(core.render(answer));
    },
    handler: async (request, res) => {
      const body: unknown = request.body;
      const answer = await core.evictText(typeof body === 'string' ? body : undefined);
      return res.code(answer.status).header('cache-control', 'no-store').send(core.render(answer));
    },
  });
};
