import { Registry } from 'prom-client';
import { createCacheFromEnv } from 'tiercache';
import type { Cache } from 'tiercache';
import { Cacheable, CacheEvict } from 'tiercache/decorators';
import { registerPrometheus } from 'tiercache/prometheus';

export interface Product {
  id: number;
  name: string;
}

export interface ProductDb {
  find(id: number): Promise<Product>;
  rename(id: number, name: string): Promise<void>;
}

// spakky-redis read REDIS_HOST, REDIS_PORT, CACHE_TTL …; tiercache reads TIERCACHE_REDIS_URL, TIERCACHE_TTL, … and
// refuses a wrong or unknown variable by name.
export function createServiceCache(env: NodeJS.ProcessEnv = process.env): Cache {
  return createCacheFromEnv(env, { prefix: 'TIERCACHE_' });
}

export class ProductService {
  constructor(
    readonly cache: Cache,
    private readonly db: ProductDb,
  ) {}

  // @cacheable(key="product:{id}", ttl=600, tags=["products"]) — with single-flight and the stampede lock built in.
  @Cacheable({
    key: 'product:{0}',
    ttl: '10m',
    tags: ['products', 'product:{0}'],
    cache: (self: ProductService) => self.cache,
  })
  async find(id: number): Promise<Product> {
    return this.db.find(id);
  }

  // @cache_evict(key="product:{id}") — after the method succeeded; nothing is evicted when it throws.
  @CacheEvict({ key: 'product:{0}', cache: (self: ProductService) => self.cache })
  async rename(id: number, name: string): Promise<void> {
    await this.db.rename(id, name);
  }

  // @cache_evict(tags=["products"])
  @CacheEvict({ tags: ['products'], cache: (self: ProductService) => self.cache })
  async renameAll(names: ReadonlyMap<number, string>): Promise<void> {
    for (const [id, name] of names) await this.db.rename(id, name);
  }
}

// Metrics and health: the seed's get_metrics() / health_check().
export function operations(cache: Cache) {
  const registry = new Registry();
  registerPrometheus(cache, { registry });
  return {
    metrics: () => registry.metrics(), // Prometheus text for GET /metrics
    stats: () => cache.stats(), // hits by tier, misses, loader calls, lock waits, Redis errors, breaker …
    health: () => cache.health(), // { status: 'ok' | 'degraded' | 'down', redis, breaker, … } — no I/O
  };
}
