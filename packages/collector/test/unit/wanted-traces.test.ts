import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TraceRecord } from '@loopscope/protocol';
import { MAX_WANT_PER_ANSWER, WANT_MS, WantedTraces, crossesServices, incomplete } from '../../src/wanted-traces.js';

function rec(spanId: string, parentSpanId: string | null, calls: Array<[string, string]> = []): TraceRecord {
  return {
    spanId,
    parentSpanId,
    segments: calls.map(([kind, span], id) => ({ id, parentId: null, spanId: span, name: 'x', kind, start: 0, end: 1, onCriticalPath: false })),
  } as unknown as TraceRecord;
}
const parts = (...records: TraceRecord[]) => records.map((record) => ({ record, instance: 'i' }));

test('a trace misses a part while a call that carries it has nothing under it, or a part has no caller', () => {
  const root = rec('r', null, [['http', 'c1'], ['db', 'd1']]);
  assert.equal(crossesServices(root), true);
  assert.equal(crossesServices(rec('r', null, [['db', 'd1']])), false, 'a database call does not carry the trace');
  assert.equal(incomplete(parts(root)), true);
  assert.equal(incomplete(parts(root, rec('b', 'c1'))), false, 'the database call needs no part');
  assert.equal(incomplete(parts(root, rec('b', 'c1', [['queue', 'q1']]))), true);
  assert.equal(incomplete(parts(rec('b', 'c1'))), true, 'its caller is missing');
});

test('each instance is told a wanted id once, within WANT_MS; a whole trace is no longer wanted', () => {
  const wanted = new WantedTraces();
  wanted.note('t1', true, 1000);
  assert.deepEqual(wanted.forAnswer('a', 1000), ['t1']);
  assert.deepEqual(wanted.forAnswer('a', 1500), []);
  wanted.note('t1', true, 1600); // still missing: not told again
  wanted.note('t2', true, 1700);
  assert.deepEqual(wanted.forAnswer('a', 2000), ['t2']);
  assert.deepEqual(wanted.forAnswer('b', 2000), ['t1', 't2'], 'an instance heard for the first time gets what is wanted now');
  wanted.note('t2', false, 2100);
  assert.deepEqual(wanted.forAnswer('c', 2200), ['t1']);
  assert.deepEqual(wanted.forAnswer('d', 1000 + WANT_MS + 1), [], 'expired');
  for (let i = 0; i < MAX_WANT_PER_ANSWER + 5; i++) wanted.note(`x${i}`, true, 50_000);
  assert.equal(wanted.forAnswer('e', 50_000).length, MAX_WANT_PER_ANSWER);
});
