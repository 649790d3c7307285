/**
 * Matching a trace's waits to what held the loop (holders.ts), with fixed inputs: overlaps by how
 * much, touching is not overlapping, the trace's own work is never its holder, largest first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holdersOf, waitWindow, type LoopWork } from '../../src/holders.js';

const T = 1_800_000_000_000;
const me = { traceId: 'a'.repeat(32), start: T, waits: [[0, 10], [30, 40]] as Array<[number, number]> };
const task = (at: number, ms: number, traceId: string | null = null): LoopWork['longTasks'][number] => ({
  at,
  ms,
  endpoint: traceId === null ? null : `GET /${traceId[0]}`,
  traceId,
  function: 'f',
  location: null,
  instance: 'p:1',
});

test('the window of the waits, on the epoch clock; none without waits', () => {
  assert.deepEqual(waitWindow(me), { from: T, to: T + 40 });
  assert.equal(waitWindow({ start: T }), undefined);
  assert.equal(waitWindow({ start: T, waits: [] }), undefined);
});

test('a holder is listed by its overlap with each wait; one that only touches a wait is not', () => {
  const work: LoopWork = {
    longTasks: [task(T - 5, 5), task(T + 5, 30, 'b'.repeat(32)), task(T + 40, 3)],
    traces: [{ traceId: 'c'.repeat(32), endpoint: 'GET /c', instance: 'p:1', slices: [[T + 9, T + 10], [T + 31, T + 32.5], [T + 33, T + 34]] }],
  };
  const answer = holdersOf(me, 'p:1', work);
  assert.deepEqual(
    answer.waits.map((w) => w.holders.map((h) => [h.kind, h.traceId, h.overlap])),
    [
      [['long-task', 'b'.repeat(32), 5], ['trace', 'c'.repeat(32), 1]],
      [['long-task', 'b'.repeat(32), 5], ['trace', 'c'.repeat(32), 2.5]],
    ],
  );
  assert.deepEqual(answer.waits.map((w) => [w.start, w.end]), [[0, 10], [30, 40]]);
});

test("the trace's own long task and slices never hold it; a trace whose long task is listed is not listed again", () => {
  const b = 'b'.repeat(32);
  const work: LoopWork = {
    longTasks: [task(T, 10, me.traceId), task(T + 2, 3, b)],
    traces: [
      { traceId: me.traceId, endpoint: 'GET /a', instance: 'p:1', slices: [[T, T + 10]] },
      { traceId: b, endpoint: 'GET /b', instance: 'p:1', slices: [[T, T + 8]] },
    ],
  };
  assert.deepEqual(
    holdersOf(me, 'p:1', work).waits[0]!.holders.map((h) => [h.kind, h.traceId, h.overlap]),
    [['long-task', b, 3]],
  );
});

test('equal overlaps list the long task first; limit keeps the largest; below a microsecond is rounding, not a holder', () => {
  const work: LoopWork = {
    longTasks: [task(T + 30.0004, 0.0005), task(T + 1, 2)],
    traces: [
      { traceId: 'd'.repeat(32), endpoint: 'GET /d', instance: 'p:1', slices: [[T + 4, T + 6]] },
      { traceId: 'e'.repeat(32), endpoint: 'GET /e', instance: 'p:1', slices: [[T + 7, T + 10]] },
    ],
  };
  const answer = holdersOf(me, 'p:1', work, 2);
  assert.deepEqual(answer.waits[0]!.holders.map((h) => [h.kind, h.overlap]), [['trace', 3], ['long-task', 2]]);
  assert.deepEqual(holdersOf(me, 'p:1', work).waits[0]!.holders.map((h) => [h.kind, h.overlap]), [['trace', 3], ['long-task', 2], ['trace', 2]]);
  assert.deepEqual(answer.waits[1]!.holders, []);
});
