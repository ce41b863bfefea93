/**
 * The Redis key of a tag's index: a sorted set of the keys written with that tag, scored by each key's expiry. It
 * lives under the same prefix as the keys it indexes (a namespace's tags are its own), so `clear()` removes it too.
 * Keys starting with `__` are reserved, so it cannot collide with a user key.
 */
export function tagKeyFor(prefix: string, tag: string): string {
  return `${prefix}__tag:${tag}`;
}

export function sharesTag(entryTags: readonly string[], tags: readonly string[]): boolean {
  for (const tag of entryTags) if (tags.includes(tag)) return true;
  return false;
}
