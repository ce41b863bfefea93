import { createInvalidationClient } from 'tiercache/http';

export interface TrendBatchOptions {
  /** The API's evict endpoint, e.g. http://api.internal:3000/internal/cache; unset disables the eviction. */
  readonly evictUrl: string | undefined;
  readonly internalKey: string | undefined;
  /** The batch's own work: rank and upsert into the database. */
  readonly upsertRanking: () => Promise<void>;
}

// The seed's CacheEvictionClient: after the upsert, ask the API to drop its 6-hour copy, and never fail the batch.
export async function runTrendBatch({ evictUrl, internalKey, upsertRanking }: TrendBatchOptions) {
  const invalidation = createInvalidationClient({ url: evictUrl, key: internalKey, timeout: '2s', retries: 1 });
  await upsertRanking();
  return invalidation.evict({ keys: ['trends:top'] }); // { ok, status?, error? } — never throws
}
