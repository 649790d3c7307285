/**
 * The service map in real Chromium: two services' agents ship their calls (gateway → orders over
 * http, orders → PostgreSQL) and one trace that crossed them (so the collector knows that the host
 * gateway calls is orders); the map page draws the two services and the database, laid out by
 * dagre, with an arrow per kind of call labelled with its rate and p95, as /api/servicemap says.
 * An arrow leads to the traces of its calls and the callee's endpoints they reached, the database
 * to the calls to it, each trace to its page.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addValue, newSketch, toWire, type ServiceMap, type WireBatch, type WireCalls, type WireTrace } from '@loopscope/protocol';
import { agentBatch, api, withIngested } from './harness.js';

const T = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
const TRACE = 'a1'.repeat(16);

function calls(kind: WireCalls['kind'], target: string, count: number, ms: number, errors = 0): WireCalls {
  const s = newSketch();
  for (let i = 0; i < count; i++) addValue(s, ms);
  return { start: T, ms: 1000, kind, target, count, errors, duration: toWire(s) };
}

function part(
  service: string,
  spanId: string,
  parentSpanId: string | null,
  call: { spanId: string; name: string; kind?: 'http' | 'db'; target?: string } | null,
  traceId = TRACE,
): WireTrace {
  const kind = call?.kind ?? 'http';
  return {
    traceId,
    spanId,
    parentSpanId,
    service,
    endpoint: `GET /${service}`,
    start: T + 100,
    status: 200,
    error: false,
    response: 20,
    duration: 20,
    cpu: 1,
    external: call === null ? 0 : 15,
    externalByKind: call === null ? {} : { [kind]: 15 },
    blocking: 0,
    segments:
      call === null
        ? []
        : [{ id: 1, parentId: null, spanId: call.spanId, name: call.name, kind, start: 2, end: 17, onCriticalPath: true, ...(call.target !== undefined ? { target: call.target, operation: 'SELECT' } : {}) }],
    criticalPath: call === null ? [] : [1],
    truncated: false,
    droppedSegments: 0,
  };
}

const batch = (service: string, calls: WireCalls[], traces: WireTrace[]): WireBatch => agentBatch(service, T + 1000, { traces, calls });

// a second trace of orders alone (a request without the gateway) that queried the database
const ALONE = 'c3'.repeat(16);
const open = withIngested([
  batch(
    'orders',
    [calls('db', '127.0.0.1:5432/shop', 120, 4)],
    [part('orders', 'b'.repeat(16), '1'.repeat(16), null), part('orders', 'd'.repeat(16), null, { spanId: '2'.repeat(16), name: 'pg SELECT shop', kind: 'db', target: '127.0.0.1:5432/shop' }, ALONE)],
  ),
  batch('gateway', [calls('http', '10.0.0.7:8080', 60, 25, 3)], [part('gateway', 'a'.repeat(16), null, { spanId: '1'.repeat(16), name: 'GET 10.0.0.7:8080/orders/:id' })]),
  // the gateway has reported for the last 50 minutes (its first batch, quiet); orders for a second
  agentBatch('gateway', T - 50 * 60_000, {}),
]);

test('the map draws the services, the database they use, and their calls as /api/servicemap has them', async () => {
  const page = await open('/map?range=1h');
  const nodes = await page.locator('[data-node]').evaluateAll((els) => els.map((el) => el.getAttribute('data-node')));
  const answer = await api<ServiceMap>(new URL(page.url()).origin, `/api/servicemap?from=${T - 60_000}&to=${Date.now()}`);
  assert.deepEqual(answer.nodes.map((n) => n.id), ['db:127.0.0.1:5432/shop', 'service:gateway', 'service:orders']);
  assert.deepEqual(nodes.sort(), answer.nodes.map((n) => n.id).sort());
  const edges = await page.locator('[data-edge]').evaluateAll((els) => els.map((el) => ({ edge: el.getAttribute('data-edge'), labels: [...el.querySelectorAll('text')].map((t) => t.textContent) })));
  assert.deepEqual(edges.map((e) => e.edge).sort(), ['service:gateway -> service:orders', 'service:orders -> db:127.0.0.1:5432/shop']);
  const toOrders = edges.find((e) => e.edge === 'service:gateway -> service:orders')!;
  // a rate over the time the caller reported: the gateway's 60 calls in its 50 minutes are under
  // 0.1/s, so the count; orders' 120 queries in the one second it reported, 120/s
  assert.equal(toOrders.labels[0], 'http 60 calls');
  assert.equal(edges.find((e) => e.edge === 'service:orders -> db:127.0.0.1:5432/shop')!.labels[0], 'db 120/s');
  assert.match(toOrders.labels[1]!, /^p95 2[45]\.\d+ ms · 3 errors$/);
  // laid out left to right: the caller before what it calls
  const xOf = async (id: string): Promise<number> => Number(await page.locator(`[data-node="${id}"] rect`).getAttribute('x'));
  assert.ok((await xOf('service:gateway')) < (await xOf('service:orders')));
  assert.ok((await xOf('service:orders')) < (await xOf('db:127.0.0.1:5432/shop')));
  await page.locator('[data-node="service:orders"]').click();
  await page.waitForURL(/\/service\?service=orders/);
  await page.close();
});

test('an arrow leads to the traces of its calls and the endpoints they reached; a database to the calls to it', async () => {
  const page = await open('/map?range=1h');
  // the arrow gateway → orders: its label is where a user clicks
  await page.locator('[data-edge="service:gateway -> service:orders"] text').first().click();
  await page.waitForURL((url) => url.pathname === '/calls' && url.searchParams.get('service') === 'gateway' && url.searchParams.get('node') === 'service:orders');
  await page.locator('body[data-state="ready"]').waitFor();
  assert.equal(await page.locator('h2').textContent(), 'gateway → orders');
  // the callee's endpoint these calls reached, linking to its page
  const endpoint = page.locator('[data-callee-endpoints] [data-endpoint="GET /orders"] a');
  assert.equal(await endpoint.textContent(), 'GET /orders');
  assert.equal(await endpoint.getAttribute('href'), '/endpoint?service=orders&endpoint=GET+%2Forders&range=1h');
  // the one trace that crossed the arrow: the gateway's part, its one call of 15 ms, orders' endpoint under it
  const rows = await page.locator('[data-calls] tbody tr').evaluateAll((trs) => trs.map((tr) => ({ trace: tr.getAttribute('data-trace'), cells: [...tr.querySelectorAll('td')].map((td) => td.textContent) })));
  assert.deepEqual(rows.map((r) => r.trace), [TRACE]);
  assert.deepEqual(rows[0]!.cells.slice(1), ['gateway', 'GET /gateway', '200', '1', '0', '15.0 ms', 'GET /orders', 'trace']);
  await page.locator(`[data-calls] [data-trace="${TRACE}"] a`, { hasText: 'trace' }).click();
  await page.waitForURL((url) => url.pathname === '/trace' && url.searchParams.get('id') === TRACE);

  // the database: every service's calls to it; orders' own trace, not the gateway's (which made none)
  await page.goto(new URL('/map?range=1h', page.url()).href);
  await page.locator('[data-node="db:127.0.0.1:5432/shop"]').click();
  await page.waitForURL((url) => url.pathname === '/calls' && url.searchParams.get('node') === 'db:127.0.0.1:5432/shop' && !url.searchParams.has('service'));
  await page.locator('body[data-state="ready"]').waitFor();
  assert.equal(await page.locator('h2').textContent(), 'Calls to db 127.0.0.1:5432/shop');
  assert.equal(await page.locator('[data-callee-endpoints]').count(), 0);
  const dbRows = await page.locator('[data-calls] tbody tr').evaluateAll((trs) => trs.map((tr) => ({ trace: tr.getAttribute('data-trace'), cells: [...tr.querySelectorAll('td')].map((td) => td.textContent) })));
  assert.deepEqual(dbRows.map((r) => r.trace), [ALONE]);
  assert.deepEqual(dbRows[0]!.cells.slice(1), ['orders', 'GET /orders', '200', '1', '0', '15.0 ms', 'pg SELECT shop', 'trace']);
  await page.close();
});
