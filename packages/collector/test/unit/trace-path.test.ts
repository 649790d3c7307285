import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TraceRecord } from '@loopscope/protocol';
import { assembleTrace } from '../../src/trace-parts.js';

const T = 1_780_000_000_000;

function part(service: string, start: number, response: number, spanId: string, parentSpanId: string | null, calls: Array<{ spanId: string; kind: string; start: number; end: number; onPath: boolean }>) {
  const record = {
    traceId: 'a'.repeat(32),
    service,
    endpoint: `GET /${service}`,
    status: 200,
    start,
    response,
    duration: response,
    spanId,
    parentSpanId,
    segments: calls.map((c, id) => ({ id, parentId: null, spanId: c.spanId, name: `${c.kind} ${id}`, kind: c.kind, start: c.start, end: c.end, onCriticalPath: c.onPath })),
    criticalPath: calls.flatMap((c, id) => (c.onPath ? [id] : [])),
  } as unknown as TraceRecord;
  return { record, instance: `${service}:1` };
}

const steps = (path: Array<{ service: string; kind: string; start: number; end: number }>) => path.map((s) => `${s.service} ${s.kind} ${s.start - T}-${s.end - T}`);

const expected = [
  'gateway transaction 0-10',
  'gateway http 10-15', // the call before orders saw it: network, orders' queue
  'orders transaction 15-20',
  'orders http 20-21',
  'inventory transaction 21-64',
  'orders http 64-65',
  'orders transaction 65-85', // its own time after the call (cpu, and its waits for the loop)
  'gateway http 85-90',
  'gateway transaction 90-100',
];

test('the critical path descends from the limiting call into the callee, hop by hop, in time order', () => {
  const gateway = part('gateway', T, 100, 'g0', null, [{ spanId: 'g1', kind: 'http', start: 10, end: 90, onPath: true }]);
  const orders = part('orders', T + 15, 70, 'o0', 'g1', [
    { spanId: 'o1', kind: 'http', start: 5, end: 50, onPath: true },
    { spanId: 'o2', kind: 'db', start: 5, end: 30, onPath: false },
  ]);
  const inventory = part('inventory', T + 21, 43, 'i0', 'o1', []);
  const trace = assembleTrace([gateway, orders, inventory])!;
  assert.deepEqual(steps(trace.path), expected);
  assert.deepEqual(trace.path[4], { service: 'inventory', spanId: 'i0', name: 'GET /inventory', kind: 'transaction', start: T + 21, end: T + 64 });
});

test("a callee that does not end inside the call is moved to end with it, and cut at its start; a call with no part under it stays the caller's", () => {
  const gateway = part('gateway', T, 100, 'g0', null, [{ spanId: 'g1', kind: 'http', start: 10, end: 90, onPath: true }]);
  const orders = part('orders', T + 15, 70, 'o0', 'g1', [{ spanId: 'o1', kind: 'http', start: 5, end: 50, onPath: true }]);
  // inventory's machine is a second behind: its part says it ran before orders called it
  const inventory = part('inventory', T - 1000, 43, 'i0', 'o1', []);
  const moved = [...expected.slice(0, 3), 'orders http 20-22', 'inventory transaction 22-65', ...expected.slice(6)];
  assert.deepEqual(steps(assembleTrace([gateway, orders, inventory])!.path), moved);
  // dated from its loop's last poll, before the call: ends inside it, cut at the call's start
  const early = part('inventory', T + 18, 45, 'i0', 'o1', []);
  assert.deepEqual(steps(assembleTrace([gateway, orders, early])!.path), [...expected.slice(0, 3), 'inventory transaction 20-63', 'orders http 63-65', ...expected.slice(6)]);
  assert.deepEqual(steps(assembleTrace([gateway])!.path), ['gateway transaction 0-10', 'gateway http 10-90', 'gateway transaction 90-100']);
});

test('the root is the part with no parent, also when a callee seems to start first; the parts follow the calls, root first', () => {
  // middle's agent dated the request from its loop's last poll, a moment before front began
  const front = part('front', T + 2, 50, 'f0', null, [{ spanId: 'f1', kind: 'http', start: 1, end: 45, onPath: true }]);
  const middle = part('middle', T, 40, 'm0', 'f1', [{ spanId: 'm1', kind: 'http', start: 5, end: 30, onPath: true }]);
  const back = part('back', T + 8, 20, 'b0', 'm1', []);
  const stray = part('stray', T + 1, 5, 's0', 'nobody', []);
  const trace = assembleTrace([middle, stray, back, front])!;
  assert.equal(trace.service, 'front');
  assert.deepEqual(
    trace.parts.map((p) => [p.service, p.orphan]),
    [
      ['front', false],
      ['middle', false],
      ['back', false],
      ['stray', true],
    ],
  );
  // without the first service's part, the earliest whose caller is missing
  assert.equal(assembleTrace([back, middle])!.service, 'middle');
  // a cycle of parents (a hostile trace) still lists each part once
  const a = part('a', T, 5, 'x', 'y', []);
  const b = part('b', T + 1, 5, 'y', 'x', []);
  assert.deepEqual(assembleTrace([a, b])!.parts.map((p) => p.service), ['a', 'b']);
});
