// The README's typed keys and decorators, runnable: `npm run example:keys` (memory only; set REDIS_URL to use Redis).
// Compiled as TC39 standard decorators (TypeScript's default); `experimentalDecorators` works too (see examples/nestjs).
import { createCache, defineKey, defineKeys, listKeys } from 'tiercache';
import { CacheEvict, Cacheable, setDefaultCache } from 'tiercache/decorators';

interface Product {
  id: number;
  name: string;
}

// Every key of the application in one place, with its TTL, tags and version (bump it: old entries are never read).
export const Keys = defineKeys({
  product: defineKey<Product, [id: number]>('product:{0}', {
    ttl: '1h',
    version: 2,
    tags: (id) => ['products', `product:${id}`],
  }),
});

const cache = createCache({ prefix: 'shop', ...(process.env['REDIS_URL'] && { redis: process.env['REDIS_URL'] }) });
setDefaultCache(cache); // once, at startup: the decorators below use it

const db = new Map([[42, 'Ada']]);
class ProductService {
  queries = 0;

  @Cacheable({ key: Keys.product }) // its TTL, tags and version come with the key
  async find(id: number): Promise<Product> {
    this.queries++;
    await new Promise((resolve) => setTimeout(resolve, 20)); // a slow database
    return { id, name: db.get(id) ?? '?' };
  }

  @CacheEvict({ key: Keys.product })
  async rename(id: number, name: string): Promise<void> {
    db.set(id, name);
  }
}

const products = new ProductService();
await Promise.all(Array.from({ length: 100 }, () => products.find(42))); // 100 concurrent calls, one query
console.log(Keys.product(42), (await products.find(42)).name, `queries: ${products.queries}`);

// The key carries the value's type: `product` is a Product, and a loader of another type would not compile.
const product = await cache.getOrSet(Keys.product(42), () => products.find(42));
console.log(product.name.toUpperCase());

await products.rename(42, 'Ada Lovelace'); // evicts product:42@v2
console.log((await products.find(42)).name, `queries: ${products.queries}`);
console.log(
  listKeys(Keys).map(({ name, template, version, ttl }) => `${name}: ${template} v${version} ttl ${String(ttl)}`),
);
await cache.close();
