import type { FastifyInstance, HTTPMethods } from 'fastify';
import { errorBody } from '../errors.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * 405 instead of 404 for a known path asked with a method it does not serve (`POST /products/7`), with the `allow`
 * header. Call it before registering the routes; it records each path's methods through `onRoute` and returns the
 * function to call after the last route, which adds one route per path for the remaining methods. Those answer in
 * `onRequest`, before any body is read, so a 405 does not depend on the body being valid.
 */
export function methodNotAllowed(app: FastifyInstance): () => void {
  const byUrl = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = byUrl.get(route.url) ?? new Set<string>();
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) methods.add(method);
    byUrl.set(route.url, methods);
  });
  return () => {
    const answered = [...byUrl].map(([url, methods]) => {
      // Fastify answers HEAD for every GET route by itself.
      if (methods.has('GET')) methods.add('HEAD');
      return { url, allowed: METHODS.filter((m) => methods.has(m)) };
    });
    for (const { url, allowed } of answered) {
      const missing: HTTPMethods[] = METHODS.filter((m) => !allowed.includes(m));
      if (missing.length === 0 || allowed.length === 0) continue;
      const allow = allowed.join(', ');
      app.route({
        method: missing,
        url,
        onRequest: async (request, reply) =>
          reply
            .code(405)
            .header('allow', allow)
            .send(errorBody(405, `${request.method} is not allowed here; use ${allowed.join(' or ')}`)),
        handler: async () => undefined,
      });
    }
  };
}
