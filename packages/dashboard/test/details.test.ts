/**
 * The dashboard's details, in real Chromium over a real collector fed with batches of known
 * content (aggregated by the agent's own IntervalAggregate): the response line shows under the
 * duration line that mostly covers it; the time under the cursor is read to the second, in 24-hour
 * time; a rare endpoint's throughput reads in req/min, not 0.00 req/s; counts and their nouns
 * agree; the slowest traces say what they are slowest by and the user picks; a trace without
 * segments offers nothing to click; a segment's tooltip never covers the details panel.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IntervalAggregate, type WireBatch, type WireTrace } from '@loopscope/protocol';
import { COLORS } from '../web/colors.js';
import type { Page } from 'playwright-core';
import { parseRate, ready, wireTrace, withIngested } from './harness.js';

const SERVICE = 'details';
const NOW = Math.floor(Date.now() / 10_000) * 10_000;
/** 28 batches of 10 s, the last one ending 10 s ago */
const FIRST = NOW - 290_000;

const trace = (endpoint: string, start: number, fields: Partial<WireTrace>): WireTrace => wireTrace(SERVICE, endpoint, start, { response: 20, duration: 20, cpu: 2, external: 0, blocking: 1, ...fields });

// slowest by duration: its work went on 200 ms after its response; slowest by response: the other
const lingering = trace('GET /busy', NOW - 60_000, { response: 96, duration: 300 });
const waited = trace('GET /busy', NOW - 50_000, { response: 221, duration: 222, external: 210, externalByKind: { http: 210 } });
const bare = trace('GET /busy', NOW - 40_000, {});
const db = (id: number, start: number, end: number) => ({ id, parentId: null, name: `SELECT ${id}`, kind: 'db' as const, start, end, onCriticalPath: true, operation: 'SELECT', target: '127.0.0.1:5432/shop' });
const calls = trace('GET /busy', NOW - 30_000, { response: 90, duration: 90, external: 80, externalByKind: { db: 80 }, segments: [db(1, 5, 35), db(2, 40, 60), db(3, 60, 85)], criticalPath: [1, 2, 3] });
const rare = trace('GET /rare', NOW - 100_000, {});

const batches: WireBatch[] = [];
for (let start = FIRST; start < NOW - 10_000; start += 10_000) {
  // a request a second, as an agent ships them: response and duration alike, the two lines run on top of each other
  const intervals = Array.from({ length: 10 }, (_, i) => {
    const agg = new IntervalAggregate(start + i * 1000);
    agg.entry('GET /busy').add({ response: 20 + (i % 5), duration: 20 + (i % 5), cpu: 2, external: 15, blocking: 1, externalByKind: { http: 15 } }, false);
    if (start === NOW - 100_000 && i === 0) agg.entry('GET /rare').add({ response: 20, duration: 20, cpu: 2, external: 0, blocking: 1, externalByKind: {} }, false);
    return agg.toWire(start + i * 1000 + 1000);
  }).flat();
  const traces = [lingering, waited, bare, calls, rare].filter((t) => t.start >= start && t.start < start + 10_000);
  batches.push({
    v: 1,
    batchId: `details-${process.pid}-${start}`,
    service: SERVICE,
    instance: 'web-1:1',
    agent: { name: 'loopscope', version: '0.1.0' },
    sentAt: start + 10_000,
    intervals,
    traces,
    dropped: { batches: 0, transactions: 0, traces: 0 },
  });
}

const open = withIngested(batches);
const servicePage = `/service?service=${SERVICE}&to=${NOW}`;

/** How many pixels of a canvas are within `tolerance` of each colour. */
async function pixelsOf(page: Page, selector: string, colors: string[], tolerance = 30): Promise<number[]> {
  return page.$eval(
    selector,
    (canvas, [hexes, tol]) => {
      const c = canvas as HTMLCanvasElement;
      const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const rgb = hexes.map((x) => [1, 3, 5].map((i) => parseInt(x.slice(i, i + 2), 16)));
      const counts = rgb.map(() => 0);
      for (let p = 0; p < data.length; p += 4) {
        rgb.forEach(([r, g, b], k) => {
          if (Math.abs(data[p]! - r!) <= tol && Math.abs(data[p + 1]! - g!) <= tol && Math.abs(data[p + 2]! - b!) <= tol && data[p + 3]! > 200) counts[k]!++;
        });
      }
      return counts;
    },
    [colors, tolerance] as [string[], number],
  );
}

test('the latency chart: the response line shows under the duration line, and the moment under the cursor is read to the second in 24-hour time', async () => {
  const page = await open(servicePage);
  const chart = page.locator('[data-chart^="Latency"]');
  const [response, duration] = await pixelsOf(page, '[data-chart^="Latency"] canvas', [COLORS.response, COLORS.duration]);
  assert.ok(duration! > 200, `the duration line is drawn (${duration} pixels)`);
  assert.ok(response! > duration! * 0.3, `the response line shows where the two run together: ${response} pixels of it, ${duration} of duration`);
  const box = (await chart.locator('.u-over').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
  const moment = (await chart.locator('.u-legend .u-series').first().locator('.u-value').textContent())!;
  assert.match(moment, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'to the second, 24-hour');
  await page.close();
});

test("a rare endpoint's throughput reads in req/min in a column of req/s", async () => {
  const page = await open(servicePage);
  const cell = (endpoint: string) => page.locator(`table.endpoints tr[data-endpoint="${endpoint}"] td[data-col=throughput]`).textContent();
  assert.match((await cell('GET /busy'))!, / req\/s$/);
  const rareRate = (await cell('GET /rare'))!;
  assert.match(rareRate, /^[\d.]+ req\/min$/);
  assert.ok(parseRate(rareRate) > 0, rareRate);
  await page.close();
});

test('the slowest traces say what they are slowest by, response unless the user picks duration', async () => {
  const page = await open(servicePage);
  const list = page.locator('[data-traces="Slowest traces of the service"]');
  const first = () => list.locator('tbody tr').first().getAttribute('data-trace');
  assert.equal(await list.locator('[data-slow-by][aria-current]').textContent(), 'response');
  assert.equal(await first(), waited.traceId, 'by response: the 221 ms response first');
  await list.locator('a[data-slow-by=duration]').click();
  await page.waitForURL(/slow=duration/);
  await ready(page);
  assert.equal(await list.locator('[data-slow-by][aria-current]').textContent(), 'duration');
  assert.equal(await first(), lingering.traceId, 'by duration: the one whose work went on 300 ms first');
  await page.close();
});

test('counts agree with their nouns: one trace is "1 stored trace"', async () => {
  const page = await open(`/endpoint?service=${SERVICE}&endpoint=${encodeURIComponent('GET /rare')}&to=${NOW}`);
  const text = (await page.locator('body').textContent())!;
  assert.match(text, /Over all 1 stored trace \(/);
  assert.doesNotMatch(text, /\b1 (requests|traces|segments|calls|errors)\b/);
  await page.close();
});

test('a trace without segments offers nothing to click; a segment\'s tooltip never covers the details panel', async () => {
  const none = await open(`/trace?id=${bare.traceId}`);
  const text = (await none.locator('section.waterfall').textContent())!;
  assert.doesNotMatch(text, /Click a segment/);
  assert.match(text, /no external calls/);
  await none.close();

  const page = await open(`/trace?id=${calls.traceId}`);
  const details = page.locator('.wf-details');
  assert.match((await details.textContent())!, /Click a segment for its details/);
  const row = (id: number) => page.locator(`[data-segment="${id}"]`);
  await row(1).click();
  assert.match((await details.textContent())!, /SELECT 1/);
  const tooltip = page.locator('.tooltip');
  // over the segment whose facts the panel shows: no tooltip repeating them
  const one = (await row(1).boundingBox())!;
  await page.mouse.move(one.x + one.width / 2, one.y + one.height / 2);
  assert.equal(await tooltip.isHidden(), true);
  // over another, each point of its row: a tooltip, never over the panel
  const three = (await row(3).boundingBox())!;
  for (const fx of [0.2, 0.5, 0.8]) {
    await page.mouse.move(three.x + three.width * fx, three.y + three.height / 2);
    assert.equal(await tooltip.isVisible(), true);
    const [tip, panel] = [(await tooltip.boundingBox())!, (await details.boundingBox())!];
    const overlap = tip.x < panel.x + panel.width && tip.x + tip.width > panel.x && tip.y < panel.y + panel.height && tip.y + tip.height > panel.y;
    assert.equal(overlap, false, `tooltip ${JSON.stringify(tip)} over the panel ${JSON.stringify(panel)}`);
  }
  await page.close();
});
