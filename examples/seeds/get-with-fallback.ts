import { createCache } from 'tiercache';
import type { Cache } from 'tiercache';
import { createWebhookNotifier } from 'tiercache/alerts';

export interface Product {
  id: number;
  name: string;
}

export interface ProductDb {
  find(id: number): Promise<Product>;
}

// The seed's rules: 100 ms per Redis call, 10 errors from at least 3 keys in 60 s open the breaker for 3 minutes,
// one Slack message per key per 10 minutes, at most 6 keys per window.
export function createProductCache(redisUrl: string, slackWebhookUrl: string): Cache {
  return createCache({
    prefix: 'shop',
    redis: redisUrl,
    timeouts: { redisMs: 100 },
    breaker: { threshold: 10, windowMs: '60s', openMs: '3m', minDistinctKeys: 3 },
    alerts: {
      notify: createWebhookNotifier({ url: slackWebhookUrl, format: 'slack', label: 'shop-api' }),
      cooldown: '10m',
      maxDistinctKeys: 6,
    },
  });
}

// get_with_fallback: Redis fails or times out → the database answers; the caller never sees the Redis error.
export function getProduct(cache: Cache, db: ProductDb, id: number): Promise<Product> {
  return cache.getOrSet(`product:${id}`, () => db.find(id), { ttl: '10m', grace: '1h' });
}
