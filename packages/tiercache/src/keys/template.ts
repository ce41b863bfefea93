import { ConfigurationError, InvalidKeyError, describeValue } from '../errors.js';

/** What a placeholder of a key template may be filled with: its string form is encoded into the key. */
export type KeyPart = string | number | bigint | boolean;

/**
 * A key template: `'profile:{0}'` (positional: the arguments), `'user:{id}'` (named: a property of the first object
 * argument), `'org:{user.org.id}'` (a path into it), or a function of the arguments that returns the key (build its
 * variable parts with `encodeKeyPart`).
 */
export type KeyTemplate<A extends readonly unknown[] = readonly unknown[]> = string | ((...args: A) => string);

/** A character that never appears in an encoded part (so it can separate two parts); see `encodeKeyPart`. */
const SEPARATOR = /[^A-Za-z0-9\-_.~%]/;

/**
 * Encodes one variable part of a key so that it can neither collide with another key nor widen a `clear()`, a tag or
 * a pattern: everything but ASCII letters, digits and `-_.~` is percent-encoded as UTF-8 (`:` → `%3A`, `*` → `%2A`,
 * `%` → `%25`, space → `%20`, `{` → `%7B`). The encoding is injective, and its output never contains a character a
 * template uses to separate its parts.
 */
export function encodeKeyPart(value: KeyPart): string {
  const text = typeof value === 'string' ? value : String(value);
  if (UNRESERVED.test(text)) return text;
  let encoded = '';
  // By code point: a lone surrogate (which encodeURIComponent throws on) becomes `%uD800`, which no other code point
  // produces (`u` is not a hex digit), so the encoding stays injective.
  for (const char of text) {
    const unit = char.charCodeAt(0);
    if (char.length === 1 && unit >= 0xd800 && unit <= 0xdfff) encoded += `%u${unit.toString(16).toUpperCase()}`;
    // encodeURIComponent leaves !'()* as they are; they are escaped too, so `*` can never reach a pattern.
    else
      encoded += encodeURIComponent(char).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  }
  return encoded;
}

const UNRESERVED = /^[A-Za-z0-9\-_.~]*$/;

type Segment = { readonly kind: 'literal'; readonly text: string } | { readonly kind: 'part'; readonly path: string };

interface CompiledTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
  /** Whether a placeholder names a property (of the first object argument) rather than an argument position. */
  readonly named: boolean;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;
const PATH = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$|^\d+(\.[A-Za-z_$][\w$]*)*$/;

/** Parses a string template once, at definition time; a malformed template is a ConfigurationError there. */
export function compileTemplate(source: string): CompiledTemplate {
  if (typeof source !== 'string' || source.length === 0) {
    throw new ConfigurationError(
      `Expected \`key\` to be a non-empty template or a function, got ${describeValue(source)}`,
    );
  }
  const segments: Segment[] = [];
  let last = 0;
  let parts = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    const path = match[1] ?? '';
    if (!PATH.test(path)) {
      throw new ConfigurationError(
        `Expected the placeholder \`{${path}}\` of \`${source}\` to be a position (\`{0}\`), a name (\`{id}\`) or a path (\`{user.id}\`)`,
      );
    }
    const literal = source.slice(last, match.index);
    if (parts > 0 && !SEPARATOR.test(literal)) {
      // `{a}{b}` or `{a}-{b}`: ('x', 'yz') and ('xy', 'z') would make one key. A separator that encoding always escapes
      // (`:`, `/`, `|` …) keeps distinct arguments distinct.
      throw new ConfigurationError(
        `Expected the placeholders of \`${source}\` to be separated by a character such as \`:\`, got ${describeValue(literal)} between two of them`,
      );
    }
    if (literal.length > 0) segments.push({ kind: 'literal', text: literal });
    segments.push({ kind: 'part', path });
    parts++;
    last = match.index + match[0].length;
  }
  const rest = source.slice(last);
  if (/[{}]/.test(rest) || segments.some((s) => s.kind === 'literal' && /[{}]/.test(s.text))) {
    throw new ConfigurationError(`Expected every \`{\` of \`${source}\` to open a placeholder closed by \`}\``);
  }
  if (rest.length > 0) segments.push({ kind: 'literal', text: rest });
  const positional = segments.filter((s) => s.kind === 'part' && /^\d/.test(s.path)).length;
  if (positional > 0 && positional < parts) {
    throw new ConfigurationError(
      `Expected the placeholders of \`${source}\` to be all positions or all names, not both`,
    );
  }
  return { source, segments, named: parts > 0 && positional === 0 };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function resolvePath(root: unknown, path: readonly string[]): unknown {
  let value = root;
  for (const name of path) {
    if (!isObject(value) || !Object.hasOwn(value, name)) return undefined;
    value = value[name];
  }
  return value;
}

function partOf(template: CompiledTemplate, path: string, value: unknown): string {
  if (
    (typeof value === 'string' && value.length > 0) ||
    (typeof value === 'number' && Number.isFinite(value)) ||
    typeof value === 'bigint' ||
    typeof value === 'boolean'
  ) {
    return encodeKeyPart(value);
  }
  throw new InvalidKeyError(
    `Expected \`${path}\` of the key \`${template.source}\` to be a non-empty string, a finite number, a bigint or a boolean, got ${describeValue(value)}`,
  );
}

/** Fills a compiled template from call arguments. A missing or unusable part is an InvalidKeyError naming it. */
export function renderTemplate(template: CompiledTemplate, args: readonly unknown[]): string {
  const root = template.named ? args.find(isObject) : args;
  let key = '';
  for (const segment of template.segments) {
    if (segment.kind === 'literal') key += segment.text;
    else key += partOf(template, segment.path, resolvePath(root, segment.path.split('.')));
  }
  return key;
}

/** A function `(…args) => key` for a template string or a key function; templates are parsed once, here. */
export function keyBuilder<A extends readonly unknown[]>(template: KeyTemplate<A>): (...args: A) => string {
  if (typeof template === 'function') {
    return (...args: A) => {
      const key: unknown = template(...args);
      if (typeof key !== 'string' || key.length === 0) {
        throw new InvalidKeyError(`Expected the key function to return a non-empty string, got ${describeValue(key)}`);
      }
      return key;
    };
  }
  const compiled = compileTemplate(template);
  return (...args: A) => renderTemplate(compiled, args);
}
