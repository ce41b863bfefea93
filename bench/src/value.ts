/** The benchmark's payload: a user-like record whose JSON is about 1 KB, the size the baseline was taken at. */
export interface BenchValue {
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly active: boolean;
  readonly score: number;
  readonly roles: readonly string[];
  readonly address: { readonly street: string; readonly city: string; readonly zip: string; readonly country: string };
  readonly history: readonly { readonly at: number; readonly event: string }[];
  readonly bio: string;
}

export function makeValue(id: number): BenchValue {
  return {
    id,
    name: `User Number ${id}`,
    email: `user${id}@example.test`,
    active: id % 2 === 0,
    score: (id * 7919) % 1000,
    roles: ['reader', 'writer', id % 3 === 0 ? 'admin' : 'member'],
    address: { street: `${id} Long Street`, city: 'Springfield', zip: String(10_000 + (id % 90_000)), country: 'US' },
    history: Array.from({ length: 8 }, (_, i) => ({ at: 1_700_000_000_000 + i * 86_400_000, event: `event-${i}` })),
    bio: 'x'.repeat(1024 - 536 - String(id).length * 4),
  };
}

/** True when `value` is the parsed object for `id` (not a string, not a stale or foreign record). */
export function isValue(value: unknown, id?: number): value is BenchValue {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<BenchValue>;
  return typeof v.bio === 'string' && Array.isArray(v.history) && (id === undefined || v.id === id);
}
