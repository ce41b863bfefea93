export { CacheEvict, CachePut, Cacheable } from './decorators.js';
export type { AsyncMethodDecorator, CacheEvictOptions, CachePutOptions, CacheableOptions } from './decorators.js';
export { cached } from './cached.js';
export type { CachedFunction, CachedOptions } from './cached.js';
export { setDefaultCache } from './default-cache.js';
export type { CacheOption, KeySpec, TagSpec } from './spec.js';
