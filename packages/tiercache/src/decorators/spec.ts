import type { Cache } from '../cache/contract.js';
import { ConfigurationError, describeValue } from '../errors.js';
import { isKeyDefinition } from '../keys/define.js';
import type { KeyDefinition } from '../keys/define.js';
import { compileTemplate, keyBuilder, renderTemplate } from '../keys/template.js';
import type { KeyTemplate } from '../keys/template.js';
import type { GetOrSetOptions } from '../options.js';

/** Which cache to use: a cache, or a function of the decorated method's instance (`(self) => self.cache`). */
export type CacheOption<This = unknown> = Cache | ((instance: This) => Cache);

/** A key: a template (`'product:{0}'`, `'user:{id}'`, `'{user.id}'`), a function of the arguments, or a typed key. */
export type KeySpec<T = unknown, A extends readonly unknown[] = never> =
  string | KeyDefinition<T, A> | ((...args: A) => string);

/** Tags: templates filled from the arguments like keys (`['products', 'product:{id}']`), or a function of them. */
export type TagSpec<A extends readonly unknown[] = never> = readonly string[] | ((...args: A) => readonly string[]);

/** How a key, tags and options come out of one call's arguments; built once per decorated method or function. */
export interface CallSpec {
  readonly key: ((args: readonly unknown[]) => string) | undefined;
  readonly tags: ((args: readonly unknown[]) => readonly string[]) | undefined;
  /** The defaults a typed key brings (its TTL, grace, tags). */
  readonly keyOptions: ((args: readonly unknown[]) => GetOrSetOptions) | undefined;
}

type AnyFunction = (...args: readonly unknown[]) => unknown;

export function buildKey(spec: unknown, label: string): (args: readonly unknown[]) => string {
  if (isKeyDefinition(spec)) {
    const definition = spec as unknown as AnyFunction;
    return (args) => definition(...args) as string;
  }
  if (typeof spec !== 'string' && typeof spec !== 'function') {
    throw new ConfigurationError(
      `Expected \`key\` of ${label} to be a template, a function or a typed key, got ${describeValue(spec)}`,
    );
  }
  const build = keyBuilder(spec as KeyTemplate);
  return (args) => build(...args);
}

export function buildTags(spec: unknown, label: string): ((args: readonly unknown[]) => readonly string[]) | undefined {
  if (spec === undefined) return undefined;
  if (typeof spec === 'function') return (args) => (spec as AnyFunction)(...args) as readonly string[];
  if (!Array.isArray(spec) || !spec.every((tag) => typeof tag === 'string')) {
    throw new ConfigurationError(
      `Expected \`tags\` of ${label} to be an array of strings or a function, got ${describeValue(spec)}`,
    );
  }
  const templates = (spec as string[]).map((tag) => (tag.includes('{') ? compileTemplate(tag) : tag));
  return (args) => templates.map((tag) => (typeof tag === 'string' ? tag : renderTemplate(tag, args)));
}

export function buildSpec(options: { readonly key?: unknown; readonly tags?: unknown }, label: string): CallSpec {
  const key = options.key === undefined ? undefined : buildKey(options.key, label);
  const tags = buildTags(options.tags, label);
  let keyOptions: CallSpec['keyOptions'];
  if (isKeyDefinition(options.key)) {
    const definition = options.key as unknown as { options(...args: readonly unknown[]): GetOrSetOptions };
    keyOptions = (args) => definition.options(...args);
  }
  return { key, tags, keyOptions };
}

const PER_CALL = ['ttl', 'grace', 'softTimeout', 'hardTimeout', 'graceBackoff', 'refreshAhead'] as const;

/** The getOrSet/set options of one call: the typed key's defaults, then the decorator's own, then its tags. */
export function callOptions(
  spec: CallSpec,
  options: Readonly<Partial<Record<(typeof PER_CALL)[number], unknown>>>,
  args: readonly unknown[],
): GetOrSetOptions {
  const resolved: Record<string, unknown> = spec.keyOptions ? { ...spec.keyOptions(args) } : {};
  for (const name of PER_CALL) if (options[name] !== undefined) resolved[name] = options[name];
  if (spec.tags) resolved['tags'] = spec.tags(args);
  return resolved as GetOrSetOptions;
}

export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
