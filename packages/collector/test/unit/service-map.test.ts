import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addValue, newSketch, toWire, type TraceRecord } from '@loopscope/protocol';
import { buildServiceMap, targetsOf } from '../../src/service-map.js';

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
