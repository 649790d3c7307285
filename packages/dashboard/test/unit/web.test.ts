/**
 * The dashboard's logic that needs no browser: addresses (the state of a view) round-trip, the
 * live window, the waterfall's tree order and axis ticks, and one tree from a trace's parts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tickStep, treeOrder } from '../../web/components/waterfall.js';
import { href, parseRoute, reportedSeconds, windowOf, type Route } from '../../web/route.js';
import type { Segment, Trace } from '../../web/api.js';
import { wholeTrace } from '../../web/whole-trace.js';
import * as fmt from '../../web/format.js';

const parse = (address: string): Route => parseRoute(new URL(address, 'http://127.0.0.1:4400'));

test('every view survives its address: page, names with any characters, range, percentile, paused end, sort', () => {
  const routes: Route[] = [
    { page: 'overview', range: '5m', percentile: 'p95' },
    { page: 'service', service: 'puppies & co/eu', range: '24h', percentile: 'max', sort: '-p95', moment: { from: 1_795_757_040_000, to: 1_795_757_041_000 } },
    { page: 'endpoint', service: 'a', endpoint: 'GET /users/:id?x=<img src=x onerror=alert(1)>#', range: '1h', percentile: 'p50', to: 1_795_757_046_000 },
    { page: 'trace', traceId: 'f7c93a8ea2875f6f0000000000000027', range: '7d', percentile: 'p99' },
    { page: 'loop', service: 'b', range: '5m', percentile: 'p95', sort: 'worst' },
    { page: 'loop', service: 'b', range: '1h', percentile: 'p95', culprit: { function: 'hash & <salt>', location: 'src/auth.ts:9:5' } },
    { page: 'loop', service: 'b', range: '1h', percentile: 'p95', culprit: { function: '', location: null } },
  ];
  for (const route of routes) {
    const parsed = parse(href(route));
    assert.deepEqual(
      Object.fromEntries(Object.entries(parsed).filter(([, v]) => v !== undefined)),
      Object.fromEntries(Object.entries(route).filter(([, v]) => v !== undefined)),
      href(route),
    );
  }
  assert.equal(href({ page: 'service', service: 's', range: '5m', percentile: 'p95' }), '/service?service=s', 'defaults stay out of the address');
});

test('unknown or malformed values fall back to the defaults, missing subjects to the page above', () => {
  assert.deepEqual(parse('/nowhere?range=1y&p=p42&to=soon&at=5-3'), {
    page: 'overview',
    service: undefined,
    endpoint: undefined,
    traceId: undefined,
    node: undefined,
    range: '5m',
    percentile: 'p95',
    to: undefined,
    sort: undefined,
    slowBy: undefined,
    moment: undefined,
    culprit: undefined,
  });
  assert.equal(parse('/service/?service=a').page, 'service');
  // a page without its subject shows the one above it
  assert.equal(parse('/service').page, 'overview');
  assert.equal(parse('/loop').page, 'overview');
  assert.equal(parse('/endpoint?service=a').page, 'service');
  assert.equal(parse('/endpoint').page, 'overview');
  assert.equal(parse('/trace').page, 'overview');
  assert.equal(parse('/calls').page, 'map');
  assert.equal(parse('/calls?service=a').page, 'map');
  // a map node's id round-trips through the address
  const calls = parse('/calls?node=db%3A127.0.0.1%3A5432%2Fshop&service=orders');
  assert.deepEqual([calls.page, calls.node, calls.service], ['calls', 'db:127.0.0.1:5432/shop', 'orders']);
  assert.equal(href(calls), '/calls?service=orders&node=db%3A127.0.0.1%3A5432%2Fshop');
});

test('a live window ends at the last whole second before the current one; a paused one where it was paused', () => {
  assert.deepEqual(windowOf({ page: 'service', range: '5m', percentile: 'p95' }, 1_000_000_500), { from: 999_699_000, to: 999_999_000 });
  assert.deepEqual(windowOf({ page: 'service', range: '1h', percentile: 'p95', to: 7_200_000 }, 9e12), { from: 3_600_000, to: 7_200_000 });
});

const segment = (id: number, parentId: number | null, start: number): Segment => ({ id, parentId, name: `s${id}`, kind: 'http', start, end: start + 1, onCriticalPath: false });

test('rates are over the seconds a service reported in the window: from its first report, to its last', () => {
  const w = { from: 1_000_000, to: 1_300_000 }; // 5 minutes
  assert.equal(reportedSeconds(w, { firstSeen: 900_000, lastSeen: 1_300_000 }), 300); // older than the window
  assert.equal(reportedSeconds(w, { firstSeen: 1_260_000, lastSeen: 1_300_000 }), 40); // started 40 s before its end
  assert.equal(reportedSeconds(w, { firstSeen: 900_000, lastSeen: 1_060_000 }), 60); // stopped a minute in
  assert.equal(reportedSeconds(w, { firstSeen: 1_299_800, lastSeen: 1_299_900 }), 1); // never under a second
  assert.equal(reportedSeconds(w, undefined), 300); // not listed: the window
});

test('the waterfall puts children under their parent, siblings by start, orphans at the top level', () => {
  const order = treeOrder([segment(1, null, 5), segment(2, 1, 7), segment(3, null, 1), segment(4, 1, 6), segment(5, 99, 3)]);
  assert.deepEqual(order.map((p) => [p.segment.id, p.depth]), [[3, 0], [5, 0], [1, 0], [4, 1], [2, 1]]);
});

test('a 10 000-segment chain is ordered without overflowing the stack', () => {
  const chain = Array.from({ length: 10_000 }, (_, i) => segment(i + 1, i === 0 ? null : i, i));
  const order = treeOrder(chain);
  assert.equal(order.length, 10_000);
  assert.equal(order[9_999]!.depth, 9_999);
});

test('axis ticks are round and about six over any duration', () => {
  for (const [total, step] of [[0.5, 0.1], [40, 10], [447, 100], [1_552, 500], [86_400_000, 20_000_000]] as const) assert.equal(tickStep(total), step, `${total}`);
});

test('numbers carry their unit and a precision that suits their size', () => {
  assert.deepEqual([0, 0.241, 2.5, 40.04, 1234.5, 12_345].map(fmt.ms), ['0 ms', '0.24 ms', '2.50 ms', '40.0 ms', '1,235 ms', '12.3 s']);
  assert.deepEqual([25, 0.5, 0.0033, 0.0001].map((r) => fmt.rate(r)), ['25.0 req/s', '0.50 req/s', '0.20 req/min', '0.36 req/h']);
  assert.equal(fmt.rate(0.5, 'min'), '30.0 req/min', 'a column keeps the unit of its largest value');
  assert.deepEqual([0, 0.0123, 0.5].map(fmt.percent), ['0 %', '1.23 %', '50.0 %']);
});

test("a trace across services is one tree: each part under the segment that called it, on the root's axis; the critical path goes on only where the path across services does", () => {
  const seg = (id: number, spanId: string, start: number, end: number, onCriticalPath = true): Segment => ({ id, parentId: null, spanId, name: `call ${spanId}`, kind: 'http', start, end, onCriticalPath });
  type Part = Trace['parts'][number];
  const part = (service: string, spanId: string, parentSpanId: string | null, start: number, segments: Segment[], orphan = false): Part => ({
    service, instance: null, endpoint: `GET /${service}`, spanId, parentSpanId, orphan, start, status: 200, error: false, response: 50, duration: 60, cpu: 5, external: 40, blocking: 2, segments, criticalPath: segments.map((s) => s.id),
  });
  const T = 1_800_000_000_000;
  // the gateway calls orders twice (span g1, g2); orders calls stock; a part whose caller never arrived
  const parts = [
    part('gateway', 'G', null, T, [seg(1, 'g1', 10, 80), seg(2, 'g2', 85, 95, false)]),
    part('orders', 'O1', 'g1', T + 12, [seg(1, 'o1', 5, 40)]),
    part('orders', 'O2', 'g2', T + 86, [seg(1, 'o2', 1, 5)]),
    part('stock', 'S', 'o1', T + 19, []),
    part('mailer', 'M', 'nowhere', T + 100, [], true),
  ];
  const path = [{ service: 'gateway', spanId: 'G', name: 'GET /gateway', kind: 'transaction', start: T, end: T + 10 }, { service: 'orders', spanId: 'O1', name: 'GET /orders', kind: 'transaction', start: T + 12, end: T + 17 }];
  const trace = { start: T, segments: parts[0]!.segments, parts, path } as unknown as Trace;
  const whole = wholeTrace(trace);
  const rows = treeOrder(whole.segments).map(({ segment: s, depth }) => ({ name: s.name, depth, start: s.start, end: s.end, critical: s.onCriticalPath, service: whole.serviceOf.get(s.id) ?? 'root' }));
  assert.deepEqual(
    rows.map((r) => `${'  '.repeat(r.depth)}${r.name} [${r.service}] ${r.start}-${r.end}${r.critical ? ' *' : ''}`),
    [
      'call g1 [root] 10-80 *',
      '  orders GET /orders [orders] 12-72 *',
      '    call o1 [orders] 17-52 *',
      '      stock GET /stock [stock] 19-79',
      'call g2 [root] 85-95',
      '  orders GET /orders [orders] 86-146',
      '    call o2 [orders] 87-91',
      'mailer GET /mailer [mailer] 100-160',
    ],
  );
  assert.equal([...whole.parts.values()].filter((p) => p.orphan).length, 1);
  // a trace of one service keeps its own segments as they are
  const alone = { start: T, segments: parts[0]!.segments, parts: [parts[0]], path: [] } as unknown as Trace;
  assert.deepEqual(wholeTrace(alone).segments.map((s) => [s.id, s.start, s.onCriticalPath]), [[1, 10, true], [2, 85, false]]);
  assert.equal(wholeTrace(alone).parts.size, 0);
});

test('times on the charts are 24-hour: seconds when the ticks are seconds apart, the day when they are days apart', () => {
  const t = new Date(2026, 11, 7, 15, 4, 9).getTime() / 1000;
  assert.equal(fmt.timeTick(t, 10), '15:04:09');
  assert.equal(fmt.timeTick(t, 60), '15:04');
  assert.equal(fmt.timeTick(t, 3600), '15:04');
  assert.equal(fmt.timeTick(t, 86_400), '12-07');
  assert.equal(fmt.momentLabel(t), '2026-12-07 15:04:09');
  assert.equal(fmt.counted(1, 'request'), '1 request');
  assert.equal(fmt.counted(1200, 'request'), '1,200 requests');
});
