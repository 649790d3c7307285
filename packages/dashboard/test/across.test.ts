/**
 * A trace across services in real Chromium: three services' agents ship their parts of one request
 * (gateway → orders → inventory) to a real collector; the trace page shows each service's part
 * under the call that reached it, with its own cpu, external and blocking, and the critical path
 * across the services as one lane, step for step what the API answers; the waterfall nests each
 * part and its segments under the very segment that called it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_TRACE_PARTS, type TraceAnswer, type WireBatch, type WireTrace } from '@loopscope/protocol';
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

// a client that sends the same traceparent with 10 000 requests: ten batches of 1000 parts of one trace id
const FLOOD = '9'.repeat(32);
const flood = Array.from({ length: 10 }, (_, b) =>
  agentBatch('flood', T + 2000 + b, {
    traces: Array.from({ length: 1000 }, (_, i) => ({ ...part('flood', 'GET /same', T + b * 1000 + i, 10, (b * 1000 + i + 1).toString(16).padStart(16, '0'), '7'.repeat(16), null, { cpu: 1, blocking: 0 }), traceId: FLOOD })),
    // (its agent cut values to the wire format's limits: its count grows, batch by batch)
    dropped: { batches: 0, transactions: 0, traces: 0, cut: b },
  }),
);

// the callee's agents ship first: their parts finished first
// (10 000 parts in a minute: past the collector's default trace limit per service, which is not what is shown here)
const open = withIngested([batch('inventory', [inventory]), batch('orders', [orders]), batch('gateway', [gateway, alone]), ...flood], { quotas: { tracesPerMinute: 20_000 } });

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
  // one waterfall: each service's part under the segment that called it, its own segments under
  // it, on the root's axis; the path runs through all three, so every row is on the critical path
  const waterfall = page.locator('section.waterfall');
  const lines = await waterfall.locator('.wf-row[data-segment]').evaluateAll((els) =>
    els.map((el) => ({
      name: el.querySelector('.wf-name')!.textContent!.trim(),
      service: (el as HTMLElement).dataset['service'] ?? 'root',
      part: el.classList.contains('wf-part'),
      critical: el.classList.contains('critical'),
      indent: parseFloat(getComputedStyle(el.querySelector('.wf-name')!).paddingLeft),
      left: parseFloat((el.querySelector('.wf-bar') as HTMLElement).style.left),
    })),
  );
  assert.deepEqual(
    lines.map((l) => [l.name, l.service, l.part, l.critical]),
    [
      ['GET orders:80/order', 'root', false, true],
      ['orders GET /order', 'orders', true, true],
      ['GET inventory:80/stock', 'orders', false, true],
      ['inventory GET /stock', 'inventory', true, true],
    ],
  );
  assert.ok(lines.every((l, i) => i === 0 || l.indent > lines[i - 1]!.indent), `nested: ${lines.map((l) => l.indent).join(', ')}`);
  // on the root's axis (0-100 ms): orders started 15 ms in, its call 5 ms later, inventory 21 ms in
  assert.deepEqual(lines.map((l) => Math.round(l.left)), [10, 15, 20, 21]);
  assert.deepEqual(await waterfall.locator('[data-legend-service]').evaluateAll((els) => els.map((el) => el.textContent!.trim())), ['gateway', 'orders', 'inventory']);
  // a click on a service's row gives its numbers as its agent sent them
  await waterfall.locator('.wf-part[data-service="orders"]').click();
  const details = await waterfall.locator('.wf-details').innerText();
  assert.match(details, /^Service/);
  for (const fact of [/endpoint\s+GET \/order/, /response\s+70(\.0)? ms/, /cpu\s+25(\.0)? ms/, /blocking\s+7\.50? ms/]) assert.match(details, fact);
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

test('a trace id sent with 10 000 requests: the page shows the parts the collector kept, and says the rest were counted, not kept', async () => {
  const page = await open(`/trace?id=${FLOOD}`);
  assert.equal(await page.locator('section[data-across]').getAttribute('data-across'), String(MAX_TRACE_PARTS));
  assert.match((await page.locator('.banner.warn').allTextContents()).join('\n'), new RegExp(`most parts the collector keeps \\(${MAX_TRACE_PARTS}\\): later transactions with it were counted, not kept`));
  // every kept part is a row of the waterfall, at the top: the parent they name is in no part
  assert.equal(await page.locator('section.waterfall .wf-part').count(), MAX_TRACE_PARTS - 1);
  assert.equal(await page.locator('section.waterfall .wf-part .tag.orphan').count(), MAX_TRACE_PARTS - 1);
  const services = await api<Array<{ service: string; dropped: { parts: number } }>>(new URL(page.url()).origin, `/api/services?from=${T - 60_000}&to=${T + 60_000}`);
  assert.equal(services.find((s) => s.service === 'flood')?.dropped.parts, 10_000 - MAX_TRACE_PARTS);
  await page.close();
});

test("the overview says how many values a service's agents cut to the wire format's limits", async () => {
  const page = await open(`/?to=${T + 60_000}`);
  const services = await api<Array<{ service: string; dropped: { cut: number } }>>(new URL(page.url()).origin, `/api/services?from=${T - 240_000}&to=${T + 60_000}`);
  assert.equal(services.find((s) => s.service === 'flood')?.dropped.cut, 9, 'the latest count of the process');
  assert.equal((await page.locator('tr[data-service=flood] td[data-col=lost]').textContent())!.trim(), '9 values cut');
  assert.equal((await page.locator('tr[data-service=gateway] td[data-col=lost]').textContent())!.trim(), '–');
  await page.close();
});
