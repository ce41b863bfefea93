import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { FastifyPluginAsync } from 'fastify';
import { errorBody } from '../errors.js';

const require = createRequire(import.meta.url);

/** uPlot straight from its package (no bundler, no CDN: the page works offline). */
const ASSETS = {
  'uplot.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
} as const;

export const dashboardRoutes: FastifyPluginAsync = async (app) => {
  const page = await readFile(new URL('./dashboard.html', import.meta.url), 'utf8');
  const assets = new Map<string, { body: string; type: string }>();
  for (const [name, { file, type }] of Object.entries(ASSETS)) {
    assets.set(name, { body: await readFile(file, 'utf8'), type });
  }

  app.get('/dashboard', async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page);
  });

  app.get<{ Params: { asset: string } }>('/dashboard/:asset', async (request, reply) => {
    const asset = assets.get(request.params.asset);
    if (asset === undefined) return reply.code(404).send(errorBody(404, 'No such asset'));
    return reply.type(asset.type).header('cache-control', 'public, max-age=3600').send(asset.body);
  });
};
