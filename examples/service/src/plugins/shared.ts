import type { FastifyPluginAsync } from 'fastify';

/**
 * Marks a plugin as not encapsulated, so what it decorates (app.db, app.cache) is visible to the routes registered
 * after it. This is all `fastify-plugin` does for us; two symbols are not worth a dependency.
 */
export function shared<O extends Record<string, unknown>>(name: string, plugin: FastifyPluginAsync<O>) {
  return Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: name,
  });
}
