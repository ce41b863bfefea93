import { createCache } from 'tiercache';
import type { Cache } from 'tiercache';

export interface User {
  id: number;
  name: string;
  since: Date;
}

export interface UserDb {
  find(id: number): Promise<User | undefined>;
}

export function createUserCache(redisUrl: string): Cache {
  return createCache({
    prefix: 'shop', // every Redis key lives under 'shop:'
    redis: redisUrl, // or ioredis options, or an ioredis client; omitted → memory only
    ttl: '5m', // fresh for 5 minutes …
    grace: '1h', // … then kept as a stale copy for an hour, served if the database fails
  });
}

export async function quickStart(cache: Cache, db: UserDb) {
  // Cache-aside: 100 concurrent callers, one database query.
  const users = await Promise.all(
    Array.from({ length: 100 }, () => cache.getOrSet('user:42', () => db.find(42), { tags: ['users'] })),
  );

  // Where did it come from? 'memory' | 'redis' | 'origin' | 'stale'
  const { source } = await cache.getOrSetWithMeta('user:42', () => db.find(42));

  // A tag invalidation reaches every instance's memory tier.
  await cache.invalidateTags(['users']);
  const afterInvalidation = await cache.get<User>('user:42');

  return { user: users[0], source, afterInvalidation };
}
