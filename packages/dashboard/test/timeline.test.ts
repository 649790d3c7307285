/**
 * The trace page shows the time, not only the calls, in real Chromium: a trace with known cpu
 * slices, waits (one from 0: queued before start), parallel calls and a long task that held the loop
 * goes through the real collector's ingest; the page must draw each slice and wait where it happened,
 * link the waits to what held the loop, and split "where the time went" into parts that add up to
 * the duration at most.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WireBatch, WireTrace } from '@loopscope/protocol';
import type { Page } from 'playwright-core';
import { parseMs, ready, wireTrace, withIngested } from './harness.js';

const SERVICE = 'timeline';
const T = Math.floor(Date.now() / 1000) * 1000 - 30_000;

const trace = (endpoint: string, start: number, fields: Partial<WireTrace>): WireTrace => wireTrace(SERVICE, endpoint, start, fields);

// GET /fast, 100 ms: queued 0-10 behind GET /report's long task, its code 10-15, an http and a cache
// call in parallel, the http answer ready at 50 but waiting until 60 while GET /other ran, its code
// 60-70, a db call 70-85, idle 85-90, a wait 90-95 that nothing known caused, its code 95-100.
const numbers = { response: 100, duration: 100, cpu: 20, external: 55, externalByKind: { http: 35, cache: 40, db: 15 }, blocking: 25 };
const segments: WireTrace['segments'] = [
  { id: 1, parentId: null, name: 'GET upstream/price', kind: 'http', start: 15, end: 50, onCriticalPath: true },
  { id: 2, parentId: null, name: 'redis GET', kind: 'cache', start: 15, end: 55, onCriticalPath: false },
  { id: 3, parentId: null, name: 'postgres SELECT', kind: 'db', start: 70, end: 85, onCriticalPath: true },
];
const SLICES: Array<[number, number]> = [[10, 15], [60, 70], [95, 100]];
const WAITS: Array<[number, number]> = [[0, 10], [50, 60], [90, 95]];
const fast = trace('GET /fast', T, { ...numbers, segments, criticalPath: [1, 3], slices: SLICES, waits: WAITS });
const report = trace('GET /report', T - 45, { duration: 55, response: 55, cpu: 50, slices: [[5, 55]] });
const other = trace('GET /other', T + 45, { duration: 15, response: 15, cpu: 10, slices: [[5, 15]] });
// the same numbers from an agent that listed no slices or waits
const older = trace('GET /fast', T + 200, { ...numbers, segments, criticalPath: [1, 3] });
const REPORT_TASK_AT = T - 40;

const batch: WireBatch = {
  v: 1,
  batchId: `timeline-${process.pid}`,
  service: SERVICE,
  instance: 'web-1:1',
  agent: { name: 'loopscope', version: '0.1.0' },
  sentAt: T + 1000,
  intervals: [],
  traces: [fast, report, other, older],
  loop: {
    start: T - 1000,
    ms: 1000,
    delay: { n: 0, sum: 0, min: 0, max: 0, zero: 0, k0: 0, bins: [] },
    busyMs: 100,
    idleMs: 900,
    gc: {},
    cpu: { user: 100, system: 0 },
    memory: { rss: 1, heapUsed: 1, heapTotal: 1 },
    longTasks: [{ at: REPORT_TASK_AT, ms: 50, endpoint: 'GET /report', traceId: report.traceId, function: 'renderReport', location: 'app.js:42:10', blocked: [{ endpoint: 'GET /fast', count: 1, ms: 10 }] }],
  },
  dropped: { batches: 0, transactions: 0, traces: 0 },
};

const open = withIngested(batch);

/** Where an element of the event-loop lane is drawn, in ms of the axis (0..100 here: the track is the trace's 100 ms). */
async function drawnAt(page: Page, selector: string): Promise<Array<{ from: number; to: number; start: number; end: number; cls: string; title: string; href: string | null }>> {
  const track = (await page.locator('.wf-loop .wf-track').boundingBox())!;
  const out = [];
  for (const el of await page.locator(`.wf-loop ${selector}`).all()) {
    const box = (await el.boundingBox())!;
    out.push({
      from: ((box.x - track.x) / track.width) * 100,
      to: ((box.x + box.width - track.x) / track.width) * 100,
      start: Number(await el.getAttribute('data-start')),
      end: Number(await el.getAttribute('data-end')),
      cls: (await el.getAttribute('class'))!,
      title: (await el.getAttribute('title'))!,
      href: await el.getAttribute('href'),
    });
  }
  return out;
}

/** Within a pixel of the 1400 px page's track (about 0.15 ms of 100). */
const near = (drawn: number, ms: number, what: string): void => assert.ok(Math.abs(drawn - ms) < 0.15, `${what}: drawn at ${drawn.toFixed(3)} ms, is at ${ms} ms`);

test('the event-loop lane draws each cpu slice and each wait where it happened, the wait before the first slice as queued', async () => {
  const page = await open(`/trace?id=${fast.traceId}`);
  const slices = await drawnAt(page, '.wf-slice');
  assert.deepEqual(slices.map((s) => [s.start, s.end]), SLICES);
  for (const s of slices) {
    near(s.from, s.start, 'slice start');
    near(s.to, s.end, 'slice end');
  }
  assert.deepEqual(slices.map((s) => s.title), [
    'cpu 10.0 → 15.0 ms (5.00 ms): its own code ran',
    'cpu 60.0 → 70.0 ms (10.0 ms): its own code ran',
    'cpu 95.0 → 100 ms (5.00 ms): its own code ran',
  ]);
  const waits = await drawnAt(page, '.wf-wait');
  assert.deepEqual(waits.map((w) => [w.start, w.end]), WAITS);
  for (const w of waits) {
    near(w.from, w.start, 'wait start');
    near(w.to, w.end, 'wait end');
    assert.match(w.cls, /\bhatched\b/);
  }
  assert.deepEqual(waits.map((w) => /\bqueued\b/.test(w.cls)), [true, false, false]);
  assert.match(waits[0]!.title, /^queued before start 0 → 10\.0 ms \(10\.0 ms\): the request waited before the server ran it\n/);
  assert.match(waits[1]!.title, /^blocked 50\.0 → 60\.0 ms \(10\.0 ms\): ready to run, it waited for the loop\n/);
  assert.match(waits[2]!.title, /^blocked 90\.0 → 95\.0 ms \(5\.00 ms\): /);
  // and each one's hover title says what held the loop then
  assert.match(waits[0]!.title, /\n• long task of GET \/report in renderReport \(app\.js:42:10\), 50\.0 ms: 10\.0 ms of this wait$/);
  assert.match(waits[1]!.title, /\n• GET \/other \(another request\): 10\.0 ms of this wait$/);
  assert.match(waits[2]!.title, /\nno long task or kept trace held the loop then$/);
  assert.deepEqual(
    waits.map((w) => w.href),
    [
      `/loop?service=${SERVICE}&to=${Math.ceil((REPORT_TASK_AT + 50) / 1000) * 1000 + 1000}&at=${REPORT_TASK_AT}-${REPORT_TASK_AT + 50}`,
      `/trace?service=${SERVICE}&id=${other.traceId}`,
      null,
    ],
  );
  assert.match((await page.locator('[data-stat="Blocking"]').textContent())!, /10\.0 ms of it queued before start/);
  await page.close();
});

test('where the time went: queued before start is its own part, and the parts add up to the duration at most', async () => {
  const page = await open(`/trace?id=${fast.traceId}`);
  const parts = await page.$$eval('.breakdown-bar .part', (els) => els.map((el) => ({ label: el.getAttribute('data-part'), ms: Number(el.getAttribute('data-ms')), width: el.getBoundingClientRect().width })));
  const track = await page.$eval('.breakdown-track', (el) => el.getBoundingClientRect().width);
  assert.deepEqual(parts.map((p) => [p.label, p.ms]), [
    ['cpu', 20],
    ['queued before start', 10],
    ['blocking', 15],
    ['external: http', 35],
    ['external: db', 15],
    ['idle / untracked', 5],
  ]);
  // (the cache call ran entirely beside the http call and the wait for its answer: shown as 0 of its 40 ms)
  assert.equal(await page.locator('[data-value="external: cache"]').textContent(), 'cache 0 ms of 40.0 ms');
  assert.equal(parseMs((await page.locator('[data-value="queued before start"]').textContent())!.replace('queued before start ', '')), 10);
  assert.ok(parts.reduce((sum, p) => sum + Math.round(p.ms * 1000), 0) <= numbers.duration * 1000, 'the parts add up to the duration at most');
  assert.ok(parts.reduce((sum, p) => sum + p.width, 0) <= track + 0.5, 'and so do the bars drawn');
  await page.close();
});

test("a wait links to what held the loop: the long task, picked out on the event-loop page; another request's trace", async () => {
  const page = await open(`/trace?id=${fast.traceId}`);
  await page.locator('.wf-loop a.wf-wait.queued').click();
  await page.waitForURL(/\/loop\?/);
  await ready(page);
  const picked = page.locator('[data-long-task].picked');
  assert.equal(await picked.count(), 1);
  assert.match((await picked.textContent())!, /GET \/report.*renderReport/);
  assert.equal(parseMs((await picked.locator('td.num').first().textContent())!), 50);
  await page.goBack();
  await ready(page);
  await page.locator('.wf-loop a.wf-wait:not(.queued)').click();
  await page.waitForURL(new RegExp(`/trace\\?.*id=${other.traceId}`));
  await ready(page);
  assert.equal(await page.locator('.page-head h2').textContent(), 'GET /other');
  await page.close();
});

test('the longest waits list who held the loop, each a link', async () => {
  const page = await open(`/trace?id=${fast.traceId}`);
  const items = await page.$$eval('.wf-held li', (lis) => lis.map((li) => ({ wait: li.getAttribute('data-wait'), links: [...li.querySelectorAll('a')].map((a) => a.textContent) })));
  assert.deepEqual(items, [
    { wait: '0-10', links: ['long task of GET /report in renderReport (app.js:42:10), 50.0 ms: 10.0 ms of this wait'] },
    { wait: '50-60', links: ['GET /other (another request): 10.0 ms of this wait'] },
  ]);
  await page.close();
});

test('a trace without slices and waits: no lane, a note, and the totals still never stack past the duration', async () => {
  const page = await open(`/trace?id=${older.traceId}`);
  assert.equal(await page.locator('.wf-loop').count(), 0);
  assert.match((await page.locator('[data-no-lane]').textContent())!, /lists no slices or waits/);
  const parts = await page.$$eval('.breakdown-bar .part', (els) => els.map((el) => [el.getAttribute('data-part'), Number(el.getAttribute('data-ms'))] as const));
  // the measures add up to 20 + 25 + 35 + 40 + 15 = 135 ms of a 100 ms request
  assert.deepEqual(parts, [['cpu', 20], ['blocking', 25], ['external: http', 35], ['external: db', 15], ['external: cache', 5]]);
  assert.ok(parts.reduce((sum, [, ms]) => sum + ms, 0) <= numbers.duration);
  assert.equal(await page.locator('[data-value="queued before start"]').count(), 0);
  await page.close();
});
