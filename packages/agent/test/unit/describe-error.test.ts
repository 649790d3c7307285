import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeError } from '../../src/transaction.js';

test('an error is text: Name: message, then message, then error, then bounded JSON; never [object Object]', () => {
  assert.equal(describeError(new TypeError('no kibble')), 'TypeError: no kibble');
  assert.equal(describeError(new RangeError('')), 'RangeError');
  assert.equal(describeError('plain text'), 'plain text');
  assert.equal(describeError({ message: 'from message', error: 'from error' }), 'from message');
  assert.equal(describeError({ error: 'not found' }), 'not found');
  assert.equal(describeError({ error: { code: 1 } }), '{"error":{"code":1}}');
  assert.equal(describeError({ code: 7, ok: false }), '{"code":7,"ok":false}');
  assert.equal(describeError(42), '42');
  assert.equal(describeError(Symbol('s')), 'Symbol(s)');
  const cyclic: Record<string, unknown> = { code: 9n };
  cyclic.self = cyclic;
  assert.equal(describeError(cyclic), '{"code":"9","self":"[Circular]"}');
  const unserializable = {
    id: 1,
    toJSON: () => {
      throw new Error('no');
    },
  };
  assert.equal(describeError(unserializable), 'Object {id, toJSON}');
  const long = describeError({ detail: 'x'.repeat(10_000) });
  assert.equal(long.length, 200);
  assert.ok(long.endsWith('…'));
  assert.equal(describeError(new Error('y'.repeat(1000))).length, 200);
});
