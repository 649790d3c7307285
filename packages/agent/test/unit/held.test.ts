import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TraceRecord } from '@loopscope/protocol';
import { HOLD_MS, HeldTraces, MAX_HELD, WANT_MS } from '../../src/export/held.js';

const part = (traceId: string, spanId: string) => ({ traceId, spanId, build: () => ({ traceId, spanId }) as TraceRecord });

test('a held part of a wanted trace is shipped once; one shipped already, or not wanted, is not', () => {
  const held = new HeldTraces();
  for (const [t, s] of [['t1', 's1'], ['t1', 's2'], ['t2', 's3'], ['t3', 's4']]) {
    const p = part(t!, s!);
    held.hold(p.traceId, p.spanId, p.build, 0);
  }
  held.want(['t1', 't3'], 0);
  // s4 went out with this batch by the sampler's own choice
  const out = held.take([{ traceId: 't3', spanId: 's4' } as TraceRecord], 1000, 100);
  assert.deepEqual(out.map((r) => r.spanId), ['s1', 's2']);
  assert.deepEqual(held.take([], 1500, 100), []);
  assert.equal(held.size, 1, 't2 is still held, in case it is asked for');
});

test('a part that finishes after its trace was asked for is shipped; wants and parts expire', () => {
  const held = new HeldTraces();
  held.want(['late'], 0);
  const p = part('late', 'a');
  held.hold(p.traceId, p.spanId, p.build, WANT_MS - 100);
  assert.deepEqual(held.take([], WANT_MS - 50, 100).map((r) => r.spanId), ['a']);
  const q = part('late', 'b');
  held.hold(q.traceId, q.spanId, q.build, WANT_MS + 10);
  assert.deepEqual(held.take([], WANT_MS + 20, 100), [], 'the want expired');
  assert.equal(held.take([], WANT_MS + 20 + HOLD_MS + 1, 100).length, 0);
  assert.equal(held.size, 0, 'held no longer than HOLD_MS');
});

test(`at most ${MAX_HELD} parts are held: the oldest go first, counted; a batch takes at most its room`, () => {
  const held = new HeldTraces();
  for (let i = 0; i < MAX_HELD + 10; i++) {
    const p = part(`t${i}`, `s${i}`);
    held.hold(p.traceId, p.spanId, p.build, 0);
  }
  assert.equal(held.size, MAX_HELD);
  assert.equal(held.overflow, 10);
  held.want(['t0', 't10', 't11', 't12'], 0);
  assert.deepEqual(held.take([], 1, 2).map((r) => r.spanId), ['s10', 's11']);
  assert.deepEqual(held.take([], 2, 2).map((r) => r.spanId), ['s12']);
});
