/**
 * The dashboard in real Chromium, against a real collector fed by a real app under the agent.
 * What the pages show is compared with what the query API answers for the same window.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startCollector, type Collector, type EndpointSummary, type LoopSummary, type ServiceSummary } from '@loopscope/collector';
import type { ContextLossSite, CriticalPathSummary } from '@loopscope/protocol';
import { startUpstream, type Upstream } from '@loopscope/example-puppies/upstream';
import type { Browser, Page } from 'playwright-core';
import { api, closeTo, launchBrowser, openPage, parseMs, parseRate, ready, requestLoop, startApp, tempDir, until, type Child } from './harness.js';

const SERVICE = 'dash-e2e';
const EVIL_ENDPOINT = '<img src=x onerror=alert(1)>';
const EVIL_SEGMENT = '<img src=y onerror=alert(2)>';
const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

interface TraceRecord {
  traceId: string;
  segments: Array<{ id: number; start: number; end: number; onCriticalPath: boolean }>;
}

let collector: Collector;
let upstream: Upstream;
let app: Child;
let traffic: { stop(): Promise<void> };
let browser: Browser;
/** the end of the paused window the number checks look at: data before it is complete */
let pausedAt: number;
/** when the app was started: it has reported for a few seconds of the 5-minute windows */
let appStartedAt: number;

before(async () => {
  collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  upstream = await startUpstream();
  appStartedAt = Date.now();
  app = await startApp('app.mjs', { cwd: fixtures, collector: collector.url, service: SERVICE, env: { UPSTREAM: upstream.url }, ready: /listening (http:\S+)/ });
  traffic = requestLoop(app.url, ['/chores', '/wait?ms=5', '/chores', '/wait?ms=20', '/evil', '/fail', '/chores', '/queued'], 40);
  browser = await launchBrowser();
  await fetch(`${app.url}/burn?ms=120`); // one long task, the longest of the run
  // a few seconds of every endpoint, with their traces, before any page is looked at
  await until('every endpoint and a chores trace at the collector', async () => {
    const rows = await api<EndpointSummary[]>(collector.url, `/api/endpoints?service=${SERVICE}`);
    const traces = await api<unknown[]>(collector.url, `/api/traces?service=${SERVICE}&endpoint=${encodeURIComponent('GET /chores')}`);
    const seen = (endpoint: string, count: number): boolean => (rows.find((r) => r.endpoint === endpoint)?.count ?? 0) >= count;
    return seen('GET /chores', 10) && seen('GET /wait', 10) && seen('GET /fail', 3) && seen(EVIL_ENDPOINT, 3) && seen('GET /burn', 1) && traces.length > 0 ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 2000));
  pausedAt = Math.floor(Date.now() / 1000) * 1000 - 1000;
});

/** What ran that should not have: dialogs (an injected alert()) and errors, of every page opened. */
const incidents: string[] = [];

after(async () => {
  await traffic?.stop();
  await browser?.close();
  await app?.stop();
  await upstream?.close();
  await collector?.close();
  assert.deepEqual(incidents, [], 'no page opened a dialog or threw');
});

const open = (path: string): Promise<Page> => openPage(browser, `${collector.url}${path}`, incidents);

test('the overview lists the service with its numbers', async () => {
  const page = await open('/');
  const row = page.locator(`tr[data-service="${SERVICE}"]`);
  await row.waitFor();
  assert.equal(await row.locator('td.name a').textContent(), SERVICE);
  assert.ok(parseRate((await row.locator('[data-col=throughput]').textContent())!) > 0);
  assert.match((await row.locator('[data-col=errors]').textContent())!, /^[\d.]+ %$/);
  assert.ok(parseMs((await row.locator('[data-col=p95]').textContent())!) > 0);
  // the throughput and p95 trends are drawn with data
  assert.equal(await row.locator('svg.spark').count(), 2);
  for (const spark of await row.locator('svg.spark').all()) assert.ok((await spark.locator('polyline').count()) > 0);
  await page.close();
});

test('the service page shows the endpoint table with the numbers of /api/endpoints, and charts drawn with data', async () => {
  const from = pausedAt - 5 * 60_000;
  const page = await open(`/service?service=${SERVICE}&to=${pausedAt}`);
  const expected = await api<EndpointSummary[]>(collector.url, `/api/endpoints?service=${SERVICE}&from=${from}&to=${pausedAt}`);
  // the rates are over the seconds the service reported in the window: since it started, not 300 s
  const [service] = (await api<ServiceSummary[]>(collector.url, `/api/services?from=${from}&to=${pausedAt}`)).filter((s) => s.service === SERVICE);
  assert.ok(service!.firstSeen >= Math.floor(appStartedAt / 1000) * 1000 && service!.firstSeen < pausedAt, `first seen ${service!.firstSeen}, the app started at ${appStartedAt}`);
  const seconds = (Math.min(pausedAt, service!.lastSeen) - service!.firstSeen) / 1000;
  assert.ok(seconds > 1 && seconds < 120, `reported for ${seconds} s of the window`);
  const shown = await page.$$eval('table.endpoints tbody tr', (trs) =>
    trs.map((tr) => ({
      endpoint: (tr as HTMLElement).dataset['endpoint']!,
      cells: Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset['col'], td.textContent ?? ''])),
    })),
  );
  assert.deepEqual(shown.map((r) => r.endpoint).sort(), expected.map((r) => r.endpoint).sort());
  // the default sort is the busiest first
  assert.deepEqual(shown.map((r) => Number(r.cells['count']!.replace(/,/g, ''))), [...expected.map((r) => r.count)].sort((a, b) => b - a));
  for (const row of expected) {
    const cells = shown.find((r) => r.endpoint === row.endpoint)!.cells;
    assert.equal(Number(cells['count']!.replace(/,/g, '')), row.count);
    closeTo(parseRate(cells['throughput']!), row.count / seconds, `${row.endpoint} throughput (over ${seconds} s)`);
    closeTo(Number(cells['errors']!.replace(/ %$/, '')) / 100, row.errors / row.count, `${row.endpoint} error rate`);
    closeTo(parseMs(cells['p50']!), row.response.p50, `${row.endpoint} p50`);
    closeTo(parseMs(cells['p95']!), row.response.p95, `${row.endpoint} p95`);
    closeTo(parseMs(cells['p99']!), row.response.p99, `${row.endpoint} p99`);
    closeTo(parseMs(cells['cpu']!), row.cpu!.p95, `${row.endpoint} cpu p95`);
    closeTo(parseMs(cells['external']!), row.external!.p95, `${row.endpoint} external p95`);
    closeTo(parseMs(cells['blocking']!), row.blocking!.p95, `${row.endpoint} blocking p95`);
  }
  assert.equal(shown.find((r) => r.endpoint === 'GET /fail')!.cells['errors'], '100.0 %');
  // what the agent itself cost, as /api/services says
  const cost = service!.agent!;
  assert.ok(cost.usPerRequest !== null && cost.cpuShare !== null && cost.rss > 0, JSON.stringify(cost));
  const line = (await page.locator('.agent-cost').textContent())!;
  const figures = /^loopscope's own code: ([\d.]+) µs per request, ([\d.]+) % of this service's CPU; its start took ([\d.]+) MB of memory per process$/.exec(line);
  assert.ok(figures, line);
  // each as the API's figure rounded to the digits shown
  const shownAs = (text: string, actual: number, unit: number, what: string): void => {
    const step = 10 ** -(text.split('.')[1]?.length ?? 0) * unit;
    assert.ok(Math.abs(Number(text) * unit - actual) <= step / 2 + 1e-9, `${what}: shown ${text}, API ${actual}`);
  };
  shownAs(figures[1]!, cost.usPerRequest, 1, 'µs per request');
  shownAs(figures[2]!, cost.cpuShare, 0.01, 'share of the CPU');
  shownAs(figures[3]!, cost.rss, 1e6, 'memory');
  // the requests that lost their context (GET /queued, answered from the app's own timer), as
  // /api/context-loss says. Its rows are per minute, and the traffic goes on: the minute of the
  // paused end still grows after the page read it, so the page has at most what the API has next
  const notice = (await page.locator('[data-context-loss]').allTextContents()).join('\n');
  const [lost] = await api<ContextLossSite[]>(collector.url, `/api/context-loss?service=${SERVICE}&from=${from}&to=${pausedAt}`);
  assert.ok(lost !== undefined && lost.module === 'app' && lost.function.includes('drainQueue'), JSON.stringify(lost));
  const said = /^([\d,]+) requests? lost their context in your code \((.+) at (.+)\): ([\d,.]+ m?s) of their work ran outside them/.exec(notice);
  assert.ok(said, notice);
  assert.deepEqual([said[2], said[3]], [lost.function, lost.site]);
  const shownCount = Number(said[1]!.replace(/,/g, ''));
  assert.ok(shownCount >= 1 && shownCount <= lost.count, `${shownCount} shown, ${lost.count} in the API after`);
  // (rounded to the digits shown: 0.616 ms is shown as 0.62 ms)
  const [figure, unit] = said[4]!.split(' ') as [string, string];
  const halfDigit = (parseMs(`1 ${unit}`) * 10 ** -(figure.split('.')[1]?.length ?? 0)) / 2;
  assert.ok(parseMs(said[4]!) > 0 && parseMs(said[4]!) <= lost.lostMs + halfDigit + 1e-9, `${said[4]} shown, ${lost.lostMs} ms in the API after`);
  assert.ok(notice.includes('loopscope.wrap()'), notice);

  // sorting by a column is kept in the URL
  await page.click('th[data-col=p95] button');
  await page.waitForURL(/sort=p95/);
  await ready(page);
  const p95s = await page.$$eval('table.endpoints td[data-col=p95]', (tds) => tds.map((td) => td.textContent ?? ''));
  assert.deepEqual(p95s.map(parseMs), [...p95s.map(parseMs)].sort((a, b) => b - a));

  // three uPlot charts, each with points that carry data, from when the service began reporting
  // (not squeezed at the right of the 5-minute window)
  const charts = await page.$$eval('[data-chart]', (els) =>
    els.map((el) => ({ title: el.querySelector('h3')!.textContent, points: Number((el as HTMLElement).dataset['points']), from: Number((el as HTMLElement).dataset['from']), canvases: el.querySelectorAll('canvas').length })),
  );
  assert.deepEqual(charts.map((c) => c.title), ['Latency — p95', 'Throughput', 'Error rate']);
  for (const c of charts) {
    assert.ok(c.points > 0, `${c.title} has no data`);
    assert.equal(c.canvases, 1);
    assert.ok(c.from >= Math.floor(service!.firstSeen / 1000) * 1000 - 1000 && c.from <= service!.firstSeen, `${c.title} starts at ${c.from}, the service at ${service!.firstSeen}`);
  }
  // the time breakdown has a bar per endpoint
  assert.equal(await page.locator('.breakdown-row').count(), expected.length);
  await page.close();
});

test('a click on a chart lists the traces of that moment', async () => {
  const page = await open(`/service?service=${SERVICE}&to=${pausedAt}`);
  // a point at the end of the window, while the traffic flowed
  const plot = (await page.locator('[data-chart="Throughput"] .u-over').boundingBox())!;
  await page.mouse.click(plot.x + plot.width - 3, plot.y + plot.height / 2);
  await page.waitForURL(/at=\d+-\d+/);
  await ready(page);
  const [from, to] = new URL(page.url()).searchParams.get('at')!.split('-').map(Number) as [number, number];
  assert.equal(to - from, 1000, 'a point of the 5 min range is a second');
  assert.ok(from >= pausedAt - 5000 && to <= pausedAt, `${from}-${to} is at the end of the window`);
  const expected = await api<Array<{ traceId: string }>>(collector.url, `/api/traces?service=${SERVICE}&sort=slowest&limit=20&from=${from}&to=${to}`);
  assert.ok(expected.length > 0);
  const shown = await page.$$eval('[data-traces^="Traces from"] tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset['trace']));
  assert.deepEqual(shown, expected.map((t) => t.traceId));
  await page.click('[data-traces^="Traces from"] button.close');
  await page.waitForURL((url) => !url.searchParams.has('at'));
  await ready(page);
  assert.equal(await page.locator('[data-traces^="Traces from"]').count(), 0);
  await page.close();
});

test('clicking an endpoint, then a trace, shows the waterfall with the critical path on the 40 ms call', async () => {
  const page = await open(`/service?service=${SERVICE}&to=${pausedAt}`);
  await page.click('table.endpoints a:text-is("GET /chores")');
  await page.waitForURL(/\/endpoint\?/);
  await ready(page);
  assert.equal(await page.locator('.page-head h2').textContent(), 'GET /chores');
  const link = page.locator('[data-traces="Slowest traces"] tbody tr a').first();
  const traceId = await page.locator('[data-traces="Slowest traces"] tbody tr').first().getAttribute('data-trace');
  await link.click();
  await page.waitForURL(/\/trace\?/);
  await ready(page);

  const record = await api<TraceRecord>(collector.url, `/api/traces/${traceId}`);
  const rows = await page.$$eval('.wf-row[data-segment]', (els) =>
    els.map((el) => ({ id: Number((el as HTMLElement).dataset['segment']), critical: el.classList.contains('critical'), outline: getComputedStyle(el.querySelector('.wf-bar')!).outlineColor })),
  );
  assert.equal(rows.length, 3);
  // the page marks exactly the segments the trace says are on the path...
  assert.deepEqual(rows.filter((r) => r.critical).map((r) => r.id).sort(), record.segments.filter((s) => s.onCriticalPath).map((s) => s.id).sort());
  // ...and the call that finished last is among them, outlined in red. (Not always the 40 ms one:
  // the slowest trace is one whose answers waited behind a long task, and an answer that arrived
  // during one is dated from the poll before it, docs/metrics.md; two may then end together.)
  const lastEnd = Math.max(...record.segments.map((s) => s.end));
  const lasts = record.segments.filter((s) => s.end === lastEnd);
  assert.ok(lasts.some((s) => rows.find((r) => r.id === s.id)!.critical), 'the call that finished last is marked');
  // (of two that ended together, the one on the path)
  const last = lasts.find((s) => rows.find((r) => r.id === s.id)!.critical)!;
  for (const r of rows) assert.equal(r.outline === 'rgb(224, 32, 27)', r.critical, `segment ${r.id}: red outline if and only if on the critical path`);

  const onPath = record.segments.filter((s) => s.onCriticalPath).length;
  assert.match((await page.locator('.critical-summary').textContent())!, new RegExp(`^${onPath} of 3 segments on the critical path: `));

  // details on click
  await page.click(`.wf-row[data-segment="${last.id}"]`);
  const details = await page.locator('.wf-details').textContent();
  assert.match(details!, /critical pathyes/);
  assert.match(details!, /kindhttp/);
  await page.close();
});

test("the endpoint page shows the endpoint's critical path with the numbers of /api/critical-path", async () => {
  const endpoint = 'GET /chores';
  const from = pausedAt - 5 * 60_000;
  const page = await open(`/endpoint?service=${SERVICE}&endpoint=${encodeURIComponent(endpoint)}&to=${pausedAt}`);
  const path = await api<CriticalPathSummary>(collector.url, `/api/critical-path?service=${SERVICE}&endpoint=${encodeURIComponent(endpoint)}&from=${from}&to=${pausedAt}`);
  assert.ok(path.requests > 0 && path.steps.length > 0, JSON.stringify(path));
  const shown = await page.$$eval('table.path tbody tr[data-step]', (trs) =>
    trs.map((tr) => ({ step: (tr as HTMLElement).dataset['step'], cells: Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map((td) => [(td as HTMLElement).dataset['col'], td.textContent ?? ''])) })),
  );
  // every step, in the API's order, with its numbers
  assert.deepEqual(shown.map((r) => r.step), path.steps.map((s) => `${s.kind} ${s.name}`));
  path.steps.forEach((s, i) => {
    const cells = shown[i]!.cells;
    closeTo(Number(cells['share']!.replace(/ %$/, '')) / 100, s.share, `${s.name} share`);
    closeTo(Number(cells['on-path']!.replace(/ %$/, '')) / 100, s.onPath, `${s.name} on the path`);
    if (s.onPath > 0) closeTo(parseMs(cells['mean']!), s.mean, `${s.name} mean`);
    if (s.onPath > 0) closeTo(parseMs(cells['p95']!), s.p95, `${s.name} p95`);
  });
  // the service's own cpu and blocking after them; and on which traces it stands
  const own = await page.$$eval('table.path tr[data-own] td[data-col=share]', (tds) => tds.map((td) => td.textContent ?? ''));
  assert.deepEqual(own.length, 2);
  closeTo(Number(own[0]!.replace(/ %$/, '')) / 100, path.own.cpu!, 'own cpu');
  closeTo(Number(own[1]!.replace(/ %$/, '')) / 100, path.own.blocking!, 'own blocking');
  assert.match((await page.locator(`.critical-path p[data-path=${path.basis}]`).textContent())!, new RegExp(`${path.requests} (stored )?traces`));
  await page.close();
});

test('live mode adds points while traffic flows', async () => {
  const page = await open(`/endpoint?service=${SERVICE}&endpoint=${encodeURIComponent('GET /chores')}`);
  const points = (): Promise<number> => page.$eval('[data-chart="Throughput"]', (el) => Number((el as HTMLElement).dataset['points']));
  const first = await points();
  assert.ok(first > 0);
  await until('more points', async () => ((await points()) >= first + 2 ? true : undefined), 10_000);
  await page.close();
});

test('names from the app are shown as text and run nothing', async () => {
  const page = await open(`/service?service=${SERVICE}&to=${pausedAt}`);
  const cell = page.locator('table.endpoints td[data-col=endpoint] a', { hasText: 'onerror' });
  assert.equal(await cell.textContent(), EVIL_ENDPOINT);
  assert.equal(await page.locator('img').count(), 0);
  await cell.click();
  await ready(page);
  assert.equal(await page.locator('.page-head h2').textContent(), EVIL_ENDPOINT);
  await page.locator('[data-traces="Most recent traces"] tbody tr a').first().click();
  await ready(page);
  await page.waitForSelector('.wf-row[data-segment]');
  assert.equal(await page.locator('.wf-row[data-segment] .wf-name').first().textContent(), EVIL_SEGMENT);
  await page.hover('.wf-row[data-segment]');
  assert.equal(await page.locator('.tooltip dd').first().textContent(), EVIL_SEGMENT);
  await page.click('.wf-row[data-segment]');
  assert.equal(await page.locator('.wf-details dd').first().textContent(), EVIL_SEGMENT);
  // a query's operation, target and statement are facts of its segment, as text
  await page.locator('.wf-row[data-segment]', { hasText: 'postgres SELECT' }).click();
  const facts = await page.$$eval('.wf-details dt', (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling!.textContent])));
  assert.equal(facts['operation'], 'SELECT');
  assert.equal(facts['target'], '127.0.0.1:5432/test');
  assert.equal(facts['statement'], 'SELECT ? AS "<img src=z onerror=alert(3)>"');
  assert.equal(await page.locator('img').count(), 0);
  await page.close();
  assert.deepEqual(incidents, []);
});

test("the dashboard's pages come with a Content-Security-Policy that runs no inline script and no framing; no answer is sniffed", async () => {
  const page = await browser.newPage();
  const answer = (await page.goto(`${collector.url}/service?service=${SERVICE}`))!;
  const headers = answer.headers();
  const csp = headers['content-security-policy'] ?? '';
  for (const directive of ["script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) assert.ok(csp.includes(directive), `${directive} in ${csp}`);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  await ready(page);
  // a script that made its way into the page inline is not run, nor is an inline handler
  const ran = await page.evaluate(async () => {
    const w = window as unknown as { inlineRan?: boolean; handlerRan?: boolean };
    const script = document.createElement('script');
    script.textContent = 'window.inlineRan = true';
    document.body.appendChild(script);
    const img = document.createElement('img');
    img.setAttribute('onerror', 'window.handlerRan = true');
    img.src = 'data:,not-an-image';
    document.body.appendChild(img);
    await new Promise((r) => setTimeout(r, 200));
    return [w.inlineRan === true, w.handlerRan === true];
  });
  assert.deepEqual(ran, [false, false]);
  // the API's answers too
  const api = await fetch(`${collector.url}/api/services`);
  assert.equal(api.headers.get('x-content-type-options'), 'nosniff');
  await page.close();
});

test('the event-loop page groups the long tasks by culprit, lists one culprit\'s alone, and each task links to its trace', async () => {
  const loop = await api<LoopSummary>(collector.url, `/api/loop?service=${SERVICE}&from=${pausedAt - 300_000}&to=${pausedAt}&sort=worst&group=culprit`);
  const burn = loop.longTasks.find((t) => t.endpoint === 'GET /burn');
  assert.ok(burn?.traceId, 'the 120 ms burn is a long task with its trace');
  const page = await open(`/loop?service=${SERVICE}&to=${pausedAt}&sort=worst`);
  assert.equal(await page.locator('[data-long-task]').count(), loop.longTasks.length);
  // the culprits as the API groups them, most time first, each with when it ran
  const culprits = await page.locator('[data-culprit]').evaluateAll((trs) =>
    trs.map((tr) => ({ function: (tr as HTMLElement).dataset['function'], count: tr.querySelector('[data-col=count]')!.textContent, spark: tr.querySelectorAll('svg.spark polyline').length })),
  );
  assert.deepEqual(
    culprits.map((c) => [c.function, Number(c.count)]),
    loop.groups!.map((g) => [g.function, g.count]),
  );
  assert.ok(culprits.every((c) => c.spark > 0), 'each draws when its tasks ran');
  // the loop over time: delay, utilization and GC pauses drawn with data, each long task of the
  // list marked on them, from when the service began reporting (it is younger than the window)
  const [service] = (await api<ServiceSummary[]>(collector.url, `/api/services?from=${pausedAt - 300_000}&to=${pausedAt}`)).filter((s) => s.service === SERVICE);
  const charts = await page.locator('[data-chart]').evaluateAll((els) => els.map((el) => ({ ...(el as HTMLElement).dataset })));
  assert.deepEqual(charts.map((c) => c['chart']), ['Loop delay', 'Utilization', 'GC pauses']);
  for (const c of charts) {
    assert.ok(Number(c['points']) > 0, `${c['chart']} has no data`);
    assert.equal(Number(c['moments']), loop.longTasks.filter((t) => t.at >= Number(c['from'])).length, `${c['chart']}: the long tasks marked`);
    assert.ok(Number(c['from']) >= Math.floor(service!.firstSeen / 1000) * 1000 - 1000 && Number(c['from']) <= service!.firstSeen, `${c['chart']} starts at ${c['from']}, the service at ${service!.firstSeen}`);
  }
  // the burn's culprit: its tasks alone, in the address; then every task again
  const culprit = loop.groups!.find((g) => g.endpoints.includes('GET /burn'))!;
  await page.locator(`[data-culprit][data-function="${culprit.function}"] a`).first().click();
  await page.waitForURL(/[?&]fn=/);
  await ready(page);
  assert.equal(new URL(page.url()).searchParams.get('fn'), culprit.function);
  assert.equal(await page.locator('[data-long-task]').count(), Math.min(culprit.count, 50));
  assert.equal(await page.locator('[data-culprit][aria-current=true]').count(), 1);
  await page.locator('[data-all-tasks]').click();
  await page.waitForURL((url) => !url.searchParams.has('fn'));
  await ready(page);
  assert.equal(await page.locator('[data-long-task]').count(), loop.longTasks.length);
  const row = page.locator('[data-long-task]', { hasText: 'GET /burn' }).first();
  assert.ok(parseMs((await row.locator('td.num').first().textContent())!) >= 120);
  await row.locator('a', { hasText: 'trace' }).click();
  await page.waitForURL(new RegExp(`/trace\\?.*id=${burn.traceId}`));
  await ready(page);
  assert.equal(await page.locator('.page-head h2').textContent(), 'GET /burn');
  await page.close();
});

test('an empty collector says how to send data and that there is no loop data; one that goes away says so and the page keeps its content', async () => {
  const empty = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  const page = await browser.newPage();
  await page.goto(empty.url);
  await ready(page);
  assert.match((await page.locator('.empty').textContent())!, /No service has reported/);
  await page.goto(`${empty.url}/loop?service=nobody`);
  await ready(page);
  assert.match((await page.locator('.empty').textContent())!, /No event-loop data/);
  await empty.close();
  await page.waitForSelector('body[data-state="error"]', { timeout: 5000 });
  assert.match((await page.locator('.banner.error').textContent())!, /Collector unreachable/);
  assert.equal(await page.locator('.empty').count(), 1);
  await page.close();
});
