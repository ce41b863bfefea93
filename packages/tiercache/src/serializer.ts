/**
 * JSON with tagged types (docs/wire-format.md). Values that are plain JSON are written as plain JSON; only values that
 * hold a Date, BigInt, Map, Set, Uint8Array, undefined or a non-finite number are rewritten into tagged objects, and
 * the entry says so (`k: 1`) so readers revive only when they must.
 *
 * Safety: parsing is JSON.parse (never eval); revived objects are built with defineProperty, so an own `__proto__`
 * key in the data stays data and never reaches Object.prototype.
 */

const TAG = '$t';
/** A user key that looks like the tag key (`$t`, `$$t`, …) is stored with one more `$` and restored on read. */
const TAG_LIKE = /^\$+t$/;

export class EncodeError extends Error {}

/**
 * Looks for anything that plain JSON would lose or mangle. Throws EncodeError on what cannot be encoded at all.
 * `ancestors` holds the objects on the current path, which finds cycles without marking shared references.
 * `jsonDone` says `value` is already what a toJSON() returned, which JSON.stringify does not call toJSON() on again.
 */
function needsTagging(value: unknown, ancestors: unknown[], jsonDone = false): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return false;
    case 'number':
      return !Number.isFinite(value) || Object.is(value, -0);
    case 'bigint':
    case 'undefined':
      return true;
    case 'function':
      throw new EncodeError('a function cannot be cached');
    case 'symbol':
      throw new EncodeError('a symbol cannot be cached');
  }
  if (value === null) return false;
  if (ancestors.includes(value)) throw new EncodeError('a circular value cannot be cached');
  // The common shapes first, told by their prototype: a plain object or an array skips the instanceof chain below.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) {
    const array = value as unknown[];
    ancestors.push(array);
    let tagged = false;
    for (let i = 0; i < array.length; i++) if (needsTagging(array[i], ancestors)) tagged = true;
    ancestors.pop();
    return tagged;
  }
  if ((proto === Object.prototype || proto === null) && typeof (value as { toJSON?: unknown }).toJSON !== 'function') {
    const object = value as Record<string, unknown>;
    ancestors.push(object);
    let tagged = false;
    for (const key in object) {
      if (!Object.prototype.hasOwnProperty.call(object, key)) continue;
      if (key.charCodeAt(0) === 36 && TAG_LIKE.test(key)) tagged = true;
      if (needsTagging(object[key], ancestors)) tagged = true;
    }
    ancestors.pop();
    return tagged;
  }
  if (value instanceof Date || value instanceof Uint8Array) return true;
  // Other binary views and buffers would degrade silently into `{"0":…}` or `{}`: refuse them rather than corrupt.
  if (
    value instanceof Promise ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value)
  ) {
    throw new EncodeError(`a ${value.constructor.name} cannot be cached`);
  }
  ancestors.push(value);
  let tagged = value instanceof Map || value instanceof Set;
  if (value instanceof Map) {
    for (const [k, v] of value) {
      needsTagging(k, ancestors);
      needsTagging(v, ancestors);
    }
  } else if (value instanceof Set) {
    for (const v of value) needsTagging(v, ancestors);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (needsTagging(value[i], ancestors)) tagged = true;
  } else {
    const object = value as Record<string, unknown>;
    // Once, like JSON.stringify: a toJSON() that returns `this` (or a fresh object with a toJSON) must not recurse.
    if (!jsonDone && typeof object['toJSON'] === 'function') {
      ancestors.pop();
      return needsTagging(object['toJSON'](), ancestors, true);
    }
    for (const key in object) {
      if (!Object.prototype.hasOwnProperty.call(object, key)) continue;
      if (TAG_LIKE.test(key)) tagged = true;
      if (needsTagging(object[key], ancestors)) tagged = true;
    }
  }
  ancestors.pop();
  return tagged;
}

function defineData(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Rewrites a value into a JSON-safe tree with tagged objects. Only called once needsTagging said so. */
function tag(value: unknown, jsonDone = false): unknown {
  switch (typeof value) {
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value;
      return { [TAG]: 'Number', v: Object.is(value, -0) ? '-0' : String(value) };
    case 'bigint':
      return { [TAG]: 'BigInt', v: value.toString() };
    case 'undefined':
      return { [TAG]: 'undefined' };
    case 'object':
      break;
    default:
      return value;
  }
  if (value === null) return null;
  if (value instanceof Date) return { [TAG]: 'Date', v: Number.isNaN(value.getTime()) ? null : value.toISOString() };
  if (value instanceof Uint8Array) {
    return { [TAG]: 'Uint8Array', v: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  }
  if (value instanceof Map) return { [TAG]: 'Map', v: Array.from(value, ([k, v]) => [tag(k), tag(v)]) };
  // A lambda, not `tag` itself: Array.from passes the index, which would land in `jsonDone`.
  if (value instanceof Set) return { [TAG]: 'Set', v: Array.from(value, (v) => tag(v)) };
  // Array.from, not map: map skips holes, which JSON would then write as null although needsTagging saw undefined.
  if (Array.isArray(value)) return Array.from(value, (v) => tag(v));
  const object = value as Record<string, unknown>;
  if (!jsonDone && typeof object['toJSON'] === 'function') return tag(object['toJSON'](), true);
  const out: Record<string, unknown> = {};
  for (const key in object) {
    if (!Object.prototype.hasOwnProperty.call(object, key)) continue;
    defineData(out, TAG_LIKE.test(key) ? `$${key}` : key, tag(object[key]));
  }
  return out;
}

/** Encodes a value as JSON. `tagged` tells whether the JSON holds tagged objects that readers must revive. */
export function encodeValue(value: unknown): { readonly json: string; readonly tagged: boolean } {
  const tagged = needsTagging(value, []);
  const json = JSON.stringify(tagged ? tag(value) : value);
  // JSON.stringify(undefined) is undefined; needsTagging already tagged it, so this cannot happen, but keep it total.
  if (json === undefined) throw new EncodeError('the value has no JSON form');
  return { json, tagged };
}

export class DecodeError extends Error {}

/** Standard base64 with padding, as Buffer writes it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The inverse of tag(): walks a parsed tree and revives tagged objects. Input comes from JSON.parse, so it is a tree. */
export function revive(node: unknown): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = revive(node[i]);
    return node;
  }
  const object = node as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(object, TAG)) return reviveTagged(object);
  let renamed = false;
  for (const key of Object.keys(object)) {
    // Assigning to an own data property named __proto__ sets that property, not the prototype.
    object[key] = revive(object[key]);
    if (TAG_LIKE.test(key)) renamed = true;
  }
  if (!renamed) return object;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(object)) defineData(out, TAG_LIKE.test(key) ? key.slice(1) : key, object[key]);
  return out;
}

function reviveTagged(object: Record<string, unknown>): unknown {
  const v = object['v'];
  switch (object[TAG]) {
    case 'undefined':
      return undefined;
    case 'Date':
      if (v === null) return new Date(NaN);
      if (typeof v === 'string') {
        const date = new Date(v);
        if (!Number.isNaN(date.getTime())) return date;
      }
      break;
    case 'BigInt':
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
      break;
    case 'Number':
      if (v === 'NaN') return NaN;
      if (v === 'Infinity') return Infinity;
      if (v === '-Infinity') return -Infinity;
      if (v === '-0') return -0;
      break;
    case 'Uint8Array':
      // Buffer.from skips characters outside the alphabet, so check first: a corrupt payload must not decode short.
      if (typeof v === 'string' && BASE64.test(v)) return new Uint8Array(Buffer.from(v, 'base64'));
      break;
    case 'Map':
      if (Array.isArray(v)) {
        const map = new Map<unknown, unknown>();
        for (const pair of v) {
          if (!Array.isArray(pair) || pair.length !== 2)
            throw new DecodeError('a Map entry is not a [key, value] pair');
          map.set(revive(pair[0]), revive(pair[1]));
        }
        return map;
      }
      break;
    case 'Set':
      if (Array.isArray(v)) return new Set(v.map(revive));
      break;
  }
  throw new DecodeError(`unknown or malformed tagged value ${JSON.stringify(object[TAG])}`);
}
