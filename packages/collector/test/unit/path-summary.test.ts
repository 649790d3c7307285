/**
 * The critical paths of many traces summed per step (path-summary.ts), on traces built by hand:
 * a step's time on the path is its segments' length less its own calls on the path, its share is
 * that over the requests' duration, and how often it was on the path is counted over the requests
 * that ran it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SegmentRecord, TraceRecord } from '@loopscope/protocol';
import { summarizePaths } from '../../src/path-summary.js';

function trace(duration: number, cpu: number | null, blocking: number | null, segments: Array<Omit<SegmentRecord, 'onCriticalPath'> & { on: boolean }>): TraceRecord {
  return {
    traceId: '0123456789abcdef',
    service: 's',
    endpoint: 'GET /x',
    start: 1_800_000_000_000,
    status: 200,
    error: false,
    response: duration,
    duration,
    cpu,
    external: null,
    externalByKind: {},
    blocking,
    segments: segments.map(({ on, ...s }) => ({ ...s, onCriticalPath: on })),
    criticalPath: segments.filter((s) => s.on).map((s) => s.id),
    truncated: false,
    droppedSegments: 0,
  };
}

test('a step on the path stands for its length less its own calls on it; shares over the duration; on the path over the requests that ran it', () => {
  const traces = [
    // a transaction on the path holding a query on it: 30 ms of transaction, 20 of them the query
    trace(100, 10, 5, [
      { id: 1, parentId: null, name: 'BEGIN', kind: 'db', start: 0, end: 30, on: true },
      { id: 2, parentId: 1, name: 'SELECT orders', kind: 'db', start: 5, end: 25, on: true },
      { id: 3, parentId: null, name: 'GET up/a', kind: 'http', start: 30, end: 90, on: true },
      { id: 4, parentId: null, name: 'GET up/b', kind: 'http', start: 30, end: 40, on: false },
    ]),
    // the same query twice in a row: one step, 10 + 10 ms; the call to b on the path this time
    trace(50, 20, 0, [
      { id: 1, parentId: null, name: 'SELECT orders', kind: 'db', start: 0, end: 10, on: true },
      { id: 2, parentId: null, name: 'SELECT orders', kind: 'db', start: 10, end: 20, on: true },
      { id: 3, parentId: null, name: 'GET up/b', kind: 'http', start: 20, end: 45, on: true },
    ]),
    // a sender outside the process: cpu and blocking unknown, its duration left out of their shares
    trace(50, null, null, [{ id: 1, parentId: null, name: 'GET up/b', kind: 'http', start: 0, end: 5, on: false }]),
  ];
  const summary = summarizePaths(traces, 'random');
  assert.equal(summary.requests, 3);
  assert.equal(summary.basis, 'random');
  assert.equal(summary.duration, 66.667);
  assert.deepEqual(summary.own, { cpu: 0.2, blocking: 0.0333 });
  const by = Object.fromEntries(summary.steps.map((s) => [`${s.kind} ${s.name}`, s]));
  assert.deepEqual(by['http GET up/a'], { name: 'GET up/a', kind: 'http', share: 0.3, mean: 60, p95: 60, onPath: 1 });
  assert.deepEqual(by['db SELECT orders'], { name: 'SELECT orders', kind: 'db', share: 0.2, mean: 20, p95: 20, onPath: 1 });
  assert.deepEqual(by['db BEGIN'], { name: 'BEGIN', kind: 'db', share: 0.05, mean: 10, p95: 10, onPath: 1 });
  // ran in all three, on the path in one, for 25 ms
  assert.deepEqual(by['http GET up/b'], { name: 'GET up/b', kind: 'http', share: 0.125, mean: 25, p95: 25, onPath: 0.3333 });
  assert.deepEqual(
    summary.steps.map((s) => s.name),
    ['GET up/a', 'SELECT orders', 'GET up/b', 'BEGIN'],
    'the largest share first',
  );
});

test('the p95 of a step is its time in the request at the 95th percentile; no traces, no steps', () => {
  const traces = Array.from({ length: 20 }, (_, i) => trace(100, 1, 1, [{ id: 1, parentId: null, name: 'q', kind: 'db', start: 0, end: i + 1, on: true }]));
  const [q] = summarizePaths(traces, 'all').steps;
  assert.deepEqual([q?.mean, q?.p95], [10.5, 19]);
  assert.deepEqual(summarizePaths([], 'all'), { requests: 0, basis: 'all', duration: 0, own: { cpu: null, blocking: null }, steps: [] });
});
