// The README's quick start, runnable: `npx tsx examples/quickstart.ts` (Redis at REDIS_URL or 127.0.0.1:6379;
// without Redis it runs memory-only and says so).
import { createCache } from 'tiercache';

const db = new Map([[42, { id: 42, name: 'Ada', since: new Date('2020-01-01') }]]);
let queries = 0;
async function loadUser(id: number) {
  queries++;
  await new Promise((resolve) => setTimeout(resolve, 20)); // a slow database
  return db.get(id);
}

const redis = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const cache = createCache({ prefix: 'quickstart', redis, ttl: '5m', grace: '1h' });
const other = createCache({ prefix: 'quickstart', redis }); // a second instance of the same service
// No waiting for the connection: a call made while it is being set up waits for it (within the Redis timeout).
cache.on('redis:down', () => console.log(`Redis not reachable at ${redis}: memory + the loader only`));

// Cache-aside with single-flight: 100 concurrent callers, one database query.
const users = await Promise.all(
  Array.from({ length: 100 }, () => cache.getOrSet('user:42', () => loadUser(42), { tags: ['users'] })),
);
console.log(users[0], `queries: ${queries}`); // the Date comes back as a Date

// Where each answer came from.
console.log((await cache.getOrSetWithMeta('user:42', () => loadUser(42))).source); // 'memory'
console.log((await other.getOrSetWithMeta('user:42', () => loadUser(42))).source); // 'redis'

// A write on one instance is seen by the other at once; a tag invalidation reaches every instance.
await cache.set('user:42', { id: 42, name: 'Ada Lovelace', since: new Date('2020-01-01') }, { tags: ['users'] });
await new Promise((resolve) => setTimeout(resolve, 10));
console.log((await other.get<{ name: string }>('user:42'))?.name); // 'Ada Lovelace'
await other.invalidateTags(['users']);
console.log(await cache.get('user:42')); // undefined

console.log(cache.stats().hits, `loader calls: ${cache.stats().loader.calls}`);
await cache.clear(); // SCAN + UNLINK under 'quickstart:' only
await Promise.all([cache.close(), other.close()]);
