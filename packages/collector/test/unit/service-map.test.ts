import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addValue, newSketch, toWire, type TraceRecord } from '@loopscope/protocol';
import { buildServiceMap, callsTo, targetsOf } from '../../src/service-map.js';

function sketch(values: number[]) {
  const s = newSketch();
  for (const v of values) addValue(s, v);
  return toWire(s);
}

test('a target is a service once a part of that service was under a call to it', () => {
  const part = (service: string, spanId: string, parentSpanId: string | null, calls: Array<[string, string, string]>) => ({
    record: { service, spanId, parentSpanId, segments: calls.map(([kind, name, span], id) => ({ id, parentId: null, spanId: span, kind, name, start: 0, end: 1, onCriticalPath: true })) } as unknown as TraceRecord,
    instance: null,
  });
  const parts = [
    part('gateway', 'g', null, [['http', 'GET 10.0.0.5:8080/orders/:id', 'c1'], ['db', 'pg SELECT', 'c2']]),
    part('orders', 'o', 'c1', [['queue', 'amqp publish', 'c3']]),
    part('audit', 'a', 'c3', []), // reached through a queue: no host to learn
  ];
  assert.deepEqual(targetsOf(parts), [['10.0.0.5:8080', 'orders']]);
});

test('edges come from the calls the agents counted: to services where the target is known to be one, else to the database, cache, queue or host', () => {
  const map = buildServiceMap(
    [
      { service: 'gateway', kind: 'http', target: '10.0.0.5:8080', count: 90, errors: 2, duration: sketch(Array.from({ length: 90 }, (_, i) => i + 1)) },
      // another instance of orders, under another address: one edge to the service
      { service: 'gateway', kind: 'http', target: '10.0.0.6:8080', count: 10, errors: 0, duration: sketch(Array.from({ length: 10 }, () => 5)) },
      { service: 'orders', kind: 'db', target: '127.0.0.1:5432/shop', count: 40, errors: 0, duration: sketch([2]) },
      { service: 'gateway', kind: 'http', target: 'api.example.com:443', count: 3, errors: 1, duration: sketch([100, 200, 300]) },
    ],
    new Map([
      ['10.0.0.5:8080', 'orders'],
      ['10.0.0.6:8080', 'orders'],
    ]),
    ['gateway', 'orders', 'idle-service'],
  );
  assert.deepEqual(map.nodes, [
    { id: 'db:127.0.0.1:5432/shop', kind: 'external', name: '127.0.0.1:5432/shop' },
    { id: 'http:api.example.com:443', kind: 'external', name: 'api.example.com:443' },
    { id: 'service:gateway', kind: 'service', name: 'gateway' },
    { id: 'service:idle-service', kind: 'service', name: 'idle-service' },
    { id: 'service:orders', kind: 'service', name: 'orders' },
  ]);
  const edge = (from: string, to: string) => map.edges.find((e) => e.from === from && e.to === to);
  assert.deepEqual({ ...edge('service:gateway', 'service:orders'), p95: undefined }, { from: 'service:gateway', to: 'service:orders', kind: 'http', count: 100, errors: 2, p95: undefined });
  // the p95 of the merged calls, within the sketch's 1 %: 95 of the 100 are at most 85 ms
  assert.ok(Math.abs(edge('service:gateway', 'service:orders')!.p95 - 85) <= 0.02 * 85, String(edge('service:gateway', 'service:orders')!.p95));
  assert.equal(edge('service:orders', 'db:127.0.0.1:5432/shop')?.count, 40);
  assert.equal(edge('service:gateway', 'http:api.example.com:443')?.errors, 1);
  assert.equal(map.edges.length, 3);
});

test('the calls behind an arrow or a node: the calling parts, their calls to it, the longest, and the callee endpoints under them', () => {
  type Seg = { kind: string; name: string; spanId?: string; target?: string; start: number; end: number; error?: string };
  const part = (service: string, endpoint: string, spanId: string, parentSpanId: string | null, segments: Seg[]) => ({
    record: { traceId: 't1', service, endpoint, spanId, parentSpanId, start: 1000, status: 200, response: 30, segments: segments.map((s, id) => ({ id, parentId: null, onCriticalPath: false, ...s })) } as unknown as TraceRecord,
    instance: null,
  });
  const parts = [
    part('gateway', 'GET /checkout', 'g', null, [
      { kind: 'http', name: 'GET 10.0.0.5:8080/orders/:id', spanId: 'c1', start: 1, end: 21 },
      // a second call to orders whose part did not arrive: counted, no endpoint; it failed
      { kind: 'http', name: 'POST 10.0.0.5:8080/orders', spanId: 'c2', start: 22, end: 25, error: 'HTTP 503' },
      { kind: 'http', name: 'GET api.example.com:443/rates', spanId: 'c3', start: 0, end: 5 },
    ]),
    part('orders', 'GET /orders/:id', 'o', 'c1', [
      { kind: 'db', name: 'pg SELECT', target: '127.0.0.1:5432/shop', start: 2, end: 6 },
      { kind: 'db', name: 'pg UPDATE', target: '127.0.0.1:5432/shop', start: 7, end: 16 },
    ]),
  ];
  // the target is not learned yet: the part under the call says it is orders
  const targets = new Map<string, string>();
  assert.deepEqual(callsTo(parts, 'service:orders', new Set(['gateway']), targets), [
    { traceId: 't1', service: 'gateway', endpoint: 'GET /checkout', start: 1000, status: 200, response: 30, calls: 1, errors: 0, longest: { name: 'GET 10.0.0.5:8080/orders/:id', ms: 20 }, callee: ['GET /orders/:id'] },
  ]);
  // once learned, the call without a part is a call to orders too
  const learned = new Map([['10.0.0.5:8080', 'orders']]);
  const both = callsTo(parts, 'service:orders', new Set(['gateway']), learned);
  assert.deepEqual([both[0]!.calls, both[0]!.errors, both[0]!.callee], [2, 1, ['GET /orders/:id']]);
  assert.deepEqual(callsTo(parts, 'http:api.example.com:443', new Set(['gateway']), learned).map((t) => [t.calls, t.longest.name]), [[1, 'GET api.example.com:443/rates']]);
  // a database: the caller's part, its two queries, the longest
  assert.deepEqual(callsTo(parts, 'db:127.0.0.1:5432/shop', new Set(['orders', 'gateway']), learned).map((t) => [t.service, t.calls, t.longest]), [['orders', 2, { name: 'pg UPDATE', ms: 9 }]]);
  // another caller's arrow: nothing
  assert.deepEqual(callsTo(parts, 'db:127.0.0.1:5432/shop', new Set(['gateway']), learned), []);
});
