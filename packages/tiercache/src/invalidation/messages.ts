/**
 * Bus messages: what one instance tells the others after a write or an invalidation. They carry keys, tags or a
 * clear, never values (a value on the bus would be a second, unversioned copy). Anyone who can PUBLISH on the channel
 * can send one, so every message is validated, and anything else is dropped and counted.
 */

export const BUS_VERSION = 1;
/** Messages larger than this are dropped unread. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** A batch of keys larger than this is split over several messages. */
export const MAX_KEYS_PER_MESSAGE = 1000;

export type BusMessage =
  /** Full keys (prefix included) that were written or deleted. */
  | { readonly kind: 'keys'; readonly from: string; readonly keys: readonly string[] }
  /** Tags invalidated under `prefix` (the cache's or a namespace's). */
  | { readonly kind: 'tags'; readonly from: string; readonly prefix: string; readonly tags: readonly string[] }
  /** Everything under `prefix` was cleared. */
  | { readonly kind: 'clear'; readonly from: string; readonly prefix: string };

export function encodeBusMessage(message: BusMessage): string {
  switch (message.kind) {
    case 'keys':
      return JSON.stringify({ v: BUS_VERSION, from: message.from, keys: message.keys });
    case 'tags':
      return JSON.stringify({ v: BUS_VERSION, from: message.from, prefix: message.prefix, tags: message.tags });
    case 'clear':
      return JSON.stringify({ v: BUS_VERSION, from: message.from, clear: message.prefix });
  }
}

function stringArray(value: unknown, max: number, maxLength: number): value is string[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.length <= max &&
    value.every((item) => typeof item === 'string' && item.length > 0 && item.length <= maxLength)
  );
}

/**
 * Parses and validates a message. Returns undefined for anything that is not exactly a message of this version:
 * oversize, not JSON, unknown fields, wrong types. JSON.parse keeps an own `__proto__` key as data, and only named
 * fields are read, so a hostile payload cannot reach Object.prototype.
 */
export function decodeBusMessage(raw: string, maxKeyLength: number): BusMessage | undefined {
  if (raw.length > MAX_MESSAGE_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const fields = Object.keys(record);
  const from = record['from'];
  if (record['v'] !== BUS_VERSION || typeof from !== 'string' || from.length === 0 || from.length > 64)
    return undefined;
  if (fields.length === 3 && stringArray(record['keys'], MAX_KEYS_PER_MESSAGE, maxKeyLength)) {
    return { kind: 'keys', from, keys: record['keys'] };
  }
  const prefix = record['prefix'];
  if (
    fields.length === 4 &&
    typeof prefix === 'string' &&
    prefix.length > 0 &&
    prefix.length <= maxKeyLength &&
    stringArray(record['tags'], 64, 256)
  ) {
    return { kind: 'tags', from, prefix, tags: record['tags'] };
  }
  const clear = record['clear'];
  if (fields.length === 3 && typeof clear === 'string' && clear.length > 0 && clear.length <= maxKeyLength) {
    return { kind: 'clear', from, prefix: clear };
  }
  return undefined;
}
