import assert from 'node:assert/strict';
import { test } from 'node:test';
import { criticalPath, type PathSegment } from '../../src/index.js';

const seg = (id: number, start: number, end: number, extra: Partial<PathSegment> = {}): PathSegment => ({ id, parentId: null, start, end, ...extra });

test('parallel calls: only the slowest is on the path', () => {
  assert.deepEqual(criticalPath([seg(1, 0, 10), seg(2, 0, 40), seg(3, 0, 25)], 41), [2]);
});

test('sequential calls: all of them, in order', () => {
  assert.deepEqual(criticalPath([seg(1, 0, 10), seg(2, 11, 20), seg(3, 21, 30)], 31), [1, 2, 3]);
});

test('back to back in the same millisecond: both on the path (<=, not <)', () => {
  assert.deepEqual(criticalPath([seg(1, 0, 10), seg(2, 10, 20)], 20), [1, 2]);
});

test('a call that ended after the end point is not on the path', () => {
  // fire-and-forget work still running when the response was finished
  assert.deepEqual(criticalPath([seg(1, 0, 10), seg(2, 5, 50)], 12), [1]);
});

test('fire-and-forget work is never on the path', () => {
  assert.deepEqual(criticalPath([seg(1, 0, 10), seg(2, 0, 30, { awaited: false })], 31), [1]);
});

test('fan-out then fan-in: the slowest of each stage', () => {
  const segments = [seg(1, 0, 5), seg(2, 0, 15), seg(3, 16, 20), seg(4, 16, 30), seg(5, 31, 32)];
  assert.deepEqual(criticalPath(segments, 33), [2, 4, 5]);
});

test('nested segments: the path goes down into the limiting child', () => {
  const segments = [seg(1, 0, 100), seg(2, 1, 40, { parentId: 1 }), seg(3, 1, 90, { parentId: 1 }), seg(4, 0, 50)];
  assert.deepEqual(criticalPath(segments, 100), [1, 3]);
});

test('10 000 sequential segments: no stack overflow, every one on the path', () => {
  const segments = Array.from({ length: 10_000 }, (_, i) => seg(i + 1, i * 2, i * 2 + 1));
  const path = criticalPath(segments, 20_000);
  assert.equal(path.length, 10_000);
  assert.equal(path[0], 1);
  assert.equal(path[9_999], 10_000);
});

test('10 000 deeply nested segments: no stack overflow', () => {
  const segments = Array.from({ length: 10_000 }, (_, i) => seg(i + 1, i, 20_000 - i, { parentId: i === 0 ? null : i }));
  assert.equal(criticalPath(segments, 20_000).length, 10_000);
});

test('no segments: empty path', () => {
  assert.deepEqual(criticalPath([], 10), []);
});
