import { describe, expect, it } from 'vitest';
import {
  BUS_VERSION,
  MAX_KEYS_PER_MESSAGE,
  MAX_MESSAGE_BYTES,
  decodeBusMessage,
  encodeBusMessage,
} from '../../src/invalidation/messages.js';
import type { BusMessage } from '../../src/invalidation/messages.js';

const MAX_KEY = 1024 + 64 + 512;
const from = 'instance-a';

function prototypeNames(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort();
}

describe('encodeBusMessage and decodeBusMessage', () => {
  const messages: BusMessage[] = [
    { kind: 'keys', from, keys: ['app:1', 'app:2'] },
    { kind: 'tags', from, prefix: 'app:orders:', tags: ['t1', 't2'] },
    { kind: 'clear', from, prefix: 'app:' },
  ];
  for (const message of messages) {
    it(`a ${message.kind} message survives the round trip unchanged`, () => {
      expect(decodeBusMessage(encodeBusMessage(message), MAX_KEY)).toEqual(message);
    });
  }

  it('writes the documented wire format: versioned, keys, tags or clear, never a value', () => {
    expect(JSON.parse(encodeBusMessage({ kind: 'keys', from, keys: ['app:1'] }))).toEqual({
      v: BUS_VERSION,
      from,
      keys: ['app:1'],
    });
    expect(JSON.parse(encodeBusMessage({ kind: 'tags', from, prefix: 'app:', tags: ['t'] }))).toEqual({
      v: 1,
      from,
      prefix: 'app:',
      tags: ['t'],
    });
    expect(JSON.parse(encodeBusMessage({ kind: 'clear', from, prefix: 'app:' }))).toEqual({
      v: 1,
      from,
      clear: 'app:',
    });
  });

  it('accepts the largest messages it allows: 1000 keys, 64 tags of 256 characters, a 64-character sender', () => {
    const keys = Array.from({ length: MAX_KEYS_PER_MESSAGE }, (_, i) => `app:${i}`);
    expect(decodeBusMessage(JSON.stringify({ v: 1, from, keys }), MAX_KEY)).toMatchObject({ kind: 'keys', keys });
    const tags = Array.from({ length: 64 }, (_, i) => `${i}`.padEnd(256, 'x'));
    expect(decodeBusMessage(JSON.stringify({ v: 1, from, prefix: 'app:', tags }), MAX_KEY)).toMatchObject({ tags });
    expect(decodeBusMessage(JSON.stringify({ v: 1, from: 'f'.repeat(64), clear: 'app:' }), MAX_KEY)).toMatchObject({
      from: 'f'.repeat(64),
    });
  });
});

describe('decodeBusMessage drops anything that is not exactly a message of this version', () => {
  const rejected: Record<string, string> = {
    'empty string': '',
    'not JSON': 'garbage',
    'truncated JSON': '{"v":1,"from":"a","keys":["k"]',
    null: 'null',
    'a number': '1',
    'a string': '"keys"',
    'an array': JSON.stringify([{ v: 1, from, keys: ['k'] }]),
    'an empty object': '{}',
    'version 2': JSON.stringify({ v: 2, from, keys: ['k'] }),
    'version as a string': JSON.stringify({ v: '1', from, keys: ['k'] }),
    'no version': JSON.stringify({ from, keys: ['k'] }),
    'no sender': JSON.stringify({ v: 1, keys: ['k'] }),
    'an empty sender': JSON.stringify({ v: 1, from: '', keys: ['k'] }),
    'a numeric sender': JSON.stringify({ v: 1, from: 1, keys: ['k'] }),
    'a 65-character sender': JSON.stringify({ v: 1, from: 'f'.repeat(65), keys: ['k'] }),
    'keys as a string': JSON.stringify({ v: 1, from, keys: 'k' }),
    'no keys': JSON.stringify({ v: 1, from, keys: [] }),
    'an empty key': JSON.stringify({ v: 1, from, keys: [''] }),
    'a numeric key': JSON.stringify({ v: 1, from, keys: [1] }),
    'a null key': JSON.stringify({ v: 1, from, keys: ['k', null] }),
    'an object key': JSON.stringify({ v: 1, from, keys: [{}] }),
    'a key longer than the bound': JSON.stringify({ v: 1, from, keys: ['k'.repeat(MAX_KEY + 1)] }),
    '1001 keys': JSON.stringify({ v: 1, from, keys: Array.from({ length: MAX_KEYS_PER_MESSAGE + 1 }, () => 'k') }),
    'keys and an extra field': JSON.stringify({ v: 1, from, keys: ['k'], value: 'secret' }),
    'keys and clear': JSON.stringify({ v: 1, from, keys: ['k'], clear: 'app:' }),
    'tags without prefix': JSON.stringify({ v: 1, from, tags: ['t'], x: 1 }),
    'tags with an empty prefix': JSON.stringify({ v: 1, from, prefix: '', tags: ['t'] }),
    'tags with a numeric prefix': JSON.stringify({ v: 1, from, prefix: 1, tags: ['t'] }),
    'tags as a string': JSON.stringify({ v: 1, from, prefix: 'app:', tags: 't' }),
    'no tags': JSON.stringify({ v: 1, from, prefix: 'app:', tags: [] }),
    '65 tags': JSON.stringify({ v: 1, from, prefix: 'app:', tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }),
    'a 257-character tag': JSON.stringify({ v: 1, from, prefix: 'app:', tags: ['t'.repeat(257)] }),
    'tags and an extra field': JSON.stringify({ v: 1, from, prefix: 'app:', tags: ['t'], keys: ['k'] }),
    'an empty clear': JSON.stringify({ v: 1, from, clear: '' }),
    'a numeric clear': JSON.stringify({ v: 1, from, clear: 1 }),
    'clear as an array': JSON.stringify({ v: 1, from, clear: ['app:'] }),
    'a clear prefix longer than the bound': JSON.stringify({ v: 1, from, clear: 'p'.repeat(MAX_KEY + 1) }),
    'more than 1 MiB': JSON.stringify({ v: 1, from, clear: 'app:' }).padEnd(MAX_MESSAGE_BYTES + 1, ' '),
    'deeply nested arrays': `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  };
  for (const [name, raw] of Object.entries(rejected)) {
    it(`drops ${name}`, () => {
      expect(decodeBusMessage(raw, MAX_KEY)).toBeUndefined();
    });
  }

  it('reads whitespace around well-formed JSON as the message it is (the size bound counts it)', () => {
    expect(decodeBusMessage(`  ${JSON.stringify({ v: 1, from, clear: 'app:' })}  `, MAX_KEY)).toEqual({
      kind: 'clear',
      from,
      prefix: 'app:',
    });
  });
});

describe('decodeBusMessage and prototype pollution', () => {
  const hostile = [
    '{"__proto__":{"polluted":true}}',
    '{"v":1,"from":"evil","keys":["k"],"__proto__":{"polluted":true}}',
    '{"__proto__":{"v":1,"from":"evil","keys":["k"]}}',
    '{"v":1,"from":"evil","__proto__":{"keys":["k"]}}',
    '{"v":1,"from":"evil","__proto__":{"prefix":"app:","tags":["t"]},"x":1}',
    '{"v":1,"from":"evil","clear":"app:","constructor":{"prototype":{"polluted":true}}}',
    '{"v":1,"from":"evil","keys":["__proto__"],"constructor":{"prototype":{"polluted":true}}}',
  ];
  for (const raw of hostile) {
    it(`drops ${raw} and leaves Object.prototype alone`, () => {
      const before = prototypeNames();
      expect(decodeBusMessage(raw, MAX_KEY)).toBeUndefined();
      expect(prototypeNames()).toEqual(before);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      expect(({} as Record<string, unknown>)['keys']).toBeUndefined();
    });
  }

  it('takes a key literally named __proto__ as a key, with nothing inherited', () => {
    const message = decodeBusMessage('{"v":1,"from":"a","keys":["__proto__","constructor"]}', MAX_KEY);
    expect(message).toEqual({ kind: 'keys', from: 'a', keys: ['__proto__', 'constructor'] });
  });
});
