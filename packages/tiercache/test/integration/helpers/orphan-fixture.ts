/**
 * Run as a child process by the helper's own test: starts a server, reports it, then waits to be killed hard, which
 * leaves the server orphaned (no exit hook runs on SIGKILL) for sweepOrphans() to find.
 */
import { startRedis } from './redis-server.js';

const redis = await startRedis();
process.stdout.write(`${JSON.stringify({ pid: redis.pid, port: redis.port, dir: redis.dir })}\n`);
setInterval(() => {}, 60_000);
