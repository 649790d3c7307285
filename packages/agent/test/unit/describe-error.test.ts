import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_MAX_MESSAGE, describeError, setMaxMessage } from '../../src/describe-error.js';

test("an error is text: Name: message, or an object's own message; never [object Object], and never what a value that is not an Error holds", () => {
  assert.equal(describeError(new TypeError('no kibble')), 'TypeError: no kibble');
  assert.equal(describeError(new RangeError('')), 'RangeError');
  assert.equal(describeError({ message: 'from message', error: 'from error' }), 'from message');
  assert.equal(describeError({ error: 'not found' }), 'not found');
  // not Errors: their kind, not their content (a page of text, a response body)
  assert.equal(describeError('<html>'.repeat(1000)), 'a string of 6000 characters (not an Error)');
  assert.equal(describeError({ error: { code: 1 } }), 'Object {error} (not an Error)');
  assert.equal(describeError({ code: 7, ok: false, email: 'a@b.c' }), 'Object {code, ok, email} (not an Error)');
  assert.equal(describeError(42), 'number 42 (not an Error)');
  assert.equal(describeError(Symbol('s')), 'a symbol (not an Error)');
  const cyclic: Record<string, unknown> = { code: 9n };
  cyclic.self = cyclic;
  assert.equal(describeError(cyclic), 'Object {code, self} (not an Error)');
  assert.equal(describeError(new Map([[1, 2]])), 'Map {} (not an Error)');
});

test('a message is bounded: 300 characters by default, configurable, never past what the wire format takes', () => {
  const long = describeError(new Error('y'.repeat(10_000)));
  assert.equal(long.length, DEFAULT_MAX_MESSAGE);
  assert.ok(long.endsWith('…'));
  try {
    setMaxMessage(1000);
    assert.equal(describeError({ message: 'z'.repeat(5000) }).length, 1000);
    setMaxMessage(1e9);
    assert.equal(describeError({ message: 'z'.repeat(5000) }).length, 2048);
  } finally {
    setMaxMessage(DEFAULT_MAX_MESSAGE);
  }
});
