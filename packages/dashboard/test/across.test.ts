/**
 * A trace across services in real Chromium: three services' agents ship their parts of one request
 * (gateway → orders → inventory) to a real collector; the trace page shows each service's part
 * under the call that reached it, with its own cpu, external and blocking, and the critical path
 * across the services as one lane, step for step what the API answers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TraceAnswer, WireBatch, WireTrace } from '@loopscope/protocol';
import { agentBatch, api, withIngested } from './harness.js';

const T = Math.floor(Date.now() / 1000) * 1000 - 30_000;
const TRACE = 'e'.repeat(32);

function part(service: string, endpoint: string, start: number, response: number, spanId: string, parentSpanId: string | null, call: { spanId: string; name: string; start: number; end: number } | null, numbers: { cpu: number; blocking: number }): WireTrace {
  return {
    traceId: TRACE,
    spanId,
    parentSpanId,
    service,
    endpoint,
    start,
    status: 200,
    error: false,
    response,
    duration: response,
    cpu: numbers.cpu,
    external: call === null ? 0 : call.end - call.start,
    externalByKind: call === null ? {} : { http: call.end - call.start },
    blocking: numbers.blocking,
    segments: call === null ? [] : [{ id: 1, parentId: null, spanId: call.spanId, name: call.name, kind: 'http', start: call.start, end: call.end, onCriticalPath: true }],
    criticalPath: call === null ? [] : [1],
    truncated: false,
    droppedSegments: 0,
  };
}

const gateway = part('gateway', 'GET /checkout', T, 100, 'a'.repeat(16), null, { spanId: '1'.repeat(16), name: 'GET orders:80/order', start: 10, end: 90 }, { cpu: 12, blocking: 3 });
const orders = part('orders', 'GET /order', T + 15, 70, 'b'.repeat(16), '1'.repeat(16), { spanId: '2'.repeat(16), name: 'GET inventory:80/stock', start: 5, end: 50 }, { cpu: 25, blocking: 7.5 });
const inventory = part('inventory', 'GET /stock', T + 21, 43, 'c'.repeat(16), '2'.repeat(16), null, { cpu: 2, blocking: 0 });
// a request of the gateway's that called no other service
const alone = { ...part('gateway', 'GET /health', T + 500, 1, 'd'.repeat(16), null, null, { cpu: 0.5, blocking: 0 }), traceId: 'f'.repeat(32) };

const batch = (service: string, traces: WireTrace[]): WireBatch => agentBatch(service, T + 1000, { traces });

// the callee's agents ship first: their parts finished first
const open = withIngested([batch('inventory', [inventory]), batch('orders', [orders]), batch('gateway', [gateway, alone])]);

test('the trace page shows every service of the request under its caller, with their numbers and the path across them', async () => {
  const page = await open(`/trace?id=${TRACE}`);
  const section = page.locator('section[data-across]');
  assert.equal(await section.getAttribute('data-across'), '3');
  assert.equal((await section.locator('h3').textContent())!.trim(), 'Across 3 services');
  const rows = await section.locator('tr[data-part]').evaluateAll((trs) =>
    trs.map((tr) => ({
      service: (tr as HTMLElement).dataset['service'],
      indent: parseFloat(getComputedStyle(tr.querySelector('td')!).paddingLeft),
      cells: [...tr.querySelectorAll('td')].slice(1).map((td) => td.textContent!.trim()),
    })),
  );
  assert.deepEqual(rows.map((r) => r.service), ['gateway', 'orders', 'inventory']);
  assert.ok(rows[0]!.indent < rows[1]!.indent && rows[1]!.indent < rows[2]!.indent, `each under its caller: ${rows.map((r) => r.indent).join(', ')}`);
  // endpoint, when it started after the root, response, cpu, external, blocking: as the agents sent them
  assert.equal(rows[1]!.cells[0], 'GET /order');
  assert.match(rows[1]!.cells[1]!, /^\+15(\.0)? ms$/);
  assert.deepEqual(rows[1]!.cells.slice(2).map((c) => parseFloat(c)), [70, 25, 45, 7.5]);
  assert.deepEqual(rows[2]!.cells.slice(2).map((c) => parseFloat(c)), [43, 2, 0, 0]);
  // the path across services: one bar per step the API lists, coloured by service
  const answer = await api<TraceAnswer>(new URL(page.url()).origin, `/api/traces/${TRACE}`);
  assert.deepEqual(answer.path.map((s) => s.service), ['gateway', 'gateway', 'orders', 'orders', 'inventory', 'orders', 'orders', 'gateway', 'gateway']);
  const bars = await section.locator('.path-step').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset['service']));
  assert.deepEqual(bars, answer.path.map((s) => s.service));
  // a service's name leads to its page
  await section.locator('tr[data-service="orders"] a').click();
  await page.waitForURL(/\/service\?service=orders/);
  await page.close();
});

test('a trace of one service has no such section', async () => {
  const page = await open(`/trace?id=${alone.traceId}`);
  assert.equal((await page.locator('.page-head h2').textContent())!.trim(), 'GET /health');
  assert.equal(await page.locator('section[data-across]').count(), 0);
  await page.close();
});
