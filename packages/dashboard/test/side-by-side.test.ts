/**
 * The black box in real Chromium: one app under the agent, `loopscope proxy` in front of it and
 * `loopscope probe` checking it, all shipping to one collector. The endpoint page shows the agent's
 * view and the proxy's view of the same endpoint side by side; what the outside cannot know (cpu,
 * external, blocking) reads "unknown" or "—", never 0; a failed check shows its reason.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startCollector, type Collector, type EndpointView, type ServiceSummary, type TraceSummary } from '@loopscope/collector';
import type { TraceRecord } from '@loopscope/protocol';
import type { Browser, Page } from 'playwright-core';
import { api, closeTo, launchBrowser, openPage, parseMs, requestLoop, startApp, startNode, tempDir, until, type Child } from './harness.js';

const APP = 'shop';
const PROXY = 'shop-proxy';
const WAIT = 'GET /wait';
const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const loopscope = fileURLToPath(import.meta.resolve('@loopscope/cli/bin/loopscope.js'));

let collector: Collector;
let app: Child;
let proxy: Child;
let probe: Child;
let traffic: { stop(): Promise<void> };
let browser: Browser;
let pausedAt: number;
const incidents: string[] = [];

before(async () => {
  collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  app = await startApp('app.mjs', { cwd: fixtures, collector: collector.url, service: APP, env: { UPSTREAM: 'http://127.0.0.1:9' }, ready: /listening (http:\S+)/ });
  proxy = await startNode([loopscope, 'proxy', '--listen', '0', '--target', app.url, '--service', PROXY, '--collector', collector.url], {
    env: { LOOPSCOPE_SAMPLE_RATE: '1' },
    ready: /listening on (http:\S+),/,
  });
  probe = await startNode([loopscope, 'probe', `${app.url}/fail`, '--every', '1s', '--collector', collector.url], { env: {}, ready: /checking (http:\S+) every/ });
  // every request goes through the proxy: the app's agent and the proxy see the same requests
  // two in three waits are of 20 ms: the p50 and p95 compared below lie inside one mode, not on the
  // edge between the 5 and 20 ms ones, where a request more or less on either side moves them
  traffic = requestLoop(proxy.url, ['/wait?ms=5', '/wait?ms=20', '/wait?ms=20', '/fail'], 40);
  browser = await launchBrowser();
  await until('both views of GET /wait and a failed check at the collector', async () => {
    const views = await api<EndpointView[]>(collector.url, `/api/views?endpoint=${encodeURIComponent(WAIT)}`);
    const checks = await api<TraceSummary[]>(collector.url, '/api/traces?service=probe');
    return views.length === 2 && views.every((v) => v.count >= 20) && checks.length > 0 ? true : undefined;
  });
  await new Promise((r) => setTimeout(r, 2000));
  pausedAt = Math.floor(Date.now() / 1000) * 1000 - 1000;
});

after(async () => {
  await traffic?.stop();
  await browser?.close();
  await probe?.stop();
  await proxy?.stop();
  await app?.stop();
  await collector?.close();
  assert.deepEqual(incidents, [], 'no page opened a dialog or threw');
});

const open = (path: string): Promise<Page> => openPage(browser, `${collector.url}${path}`, incidents);
const span = (): string => `from=${pausedAt - 5 * 60_000}&to=${pausedAt}`;

test('the API has both views of the endpoint: the agent knows cpu, the proxy does not, and sees more time', async () => {
  const views = await api<EndpointView[]>(collector.url, `/api/views?endpoint=${encodeURIComponent(WAIT)}&${span()}`);
  const inside = views.find((v) => v.service === APP)!;
  const outside = views.find((v) => v.service === PROXY)!;
  assert.deepEqual(inside.agents, ['loopscope']);
  assert.deepEqual(outside.agents, ['loopscope-proxy']);
  assert.ok(inside.cpu !== null && inside.external !== null && inside.blocking !== null);
  assert.deepEqual([outside.cpu, outside.external, outside.blocking], [null, null, null]);
  // the proxy's time of a request holds the app's: so do its percentiles (each sketch within 1 %)
  for (const q of ['p50', 'p95'] as const) assert.ok(outside.response[q] >= inside.response[q] * 0.98, `${q}: proxy ${outside.response[q]}, agent ${inside.response[q]}`);
  const services = await api<ServiceSummary[]>(collector.url, '/api/services');
  assert.deepEqual(services.map((s) => [s.service, s.agents]).sort(), [
    ['probe', ['loopscope-probe']],
    [APP, ['loopscope']],
    [PROXY, ['loopscope-proxy']],
  ].sort());
  const bad = await fetch(`${collector.url}/api/views`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /endpoint is required/);
});

test('the endpoint page shows the two views side by side, with the numbers of /api/views', async () => {
  const views = await api<EndpointView[]>(collector.url, `/api/views?endpoint=${encodeURIComponent(WAIT)}&${span()}`);
  const page = await open(`/endpoint?service=${APP}&endpoint=${encodeURIComponent(WAIT)}&to=${pausedAt}`);
  const rows = page.locator('table.views tbody tr');
  assert.equal(await rows.count(), 2);
  const cells = async (service: string): Promise<Record<string, string>> =>
    page.$eval(`table.views tr[data-service="${service}"]`, (tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td, i) => [td.dataset['col'] ?? String(i), td.textContent ?? ''])));
  const mine = await cells(APP);
  const theirs = await cells(PROXY);
  assert.equal(mine['agents'], 'agent');
  assert.equal(theirs['agents'], 'proxy');
  for (const [service, shown] of [[APP, mine], [PROXY, theirs]] as const) {
    const v = views.find((x) => x.service === service)!;
    assert.equal(Number(shown['count']!.replace(/,/g, '')), v.count);
    closeTo(parseMs(shown['p50']!), v.response.p50, `${service} p50`);
    closeTo(parseMs(shown['p95']!), v.response.p95, `${service} p95`);
  }
  // the difference is the network and the queue before the app, never negative
  const delta = theirs['delta']!;
  assert.match(delta, /^\+[\d.,]+ (ms|s)$|^0 ms$/);
  closeTo(parseMs(delta.replace(/^\+/, '')), views.find((x) => x.service === PROXY)!.response.p50 - views.find((x) => x.service === APP)!.response.p50, 'p50 difference');
  // what the proxy cannot know is a dash with its reason, not 0
  const unknown = page.locator(`table.views tr[data-service="${PROXY}"] td[title^="unknown"]`);
  assert.equal(await unknown.count(), 3);
  for (const td of await unknown.all()) assert.equal(await td.textContent(), '—');
  assert.equal(await page.locator(`table.views tr[data-service="${APP}"] td[title^="unknown"]`).count(), 0);
  // the other view is one click away
  await page.click(`table.views tr[data-service="${PROXY}"] a`);
  await page.waitForURL(/service=shop-proxy/);
  await page.waitForSelector(`table.views tr.current[data-service="${PROXY}"]`);
  await page.close();
});

test("the proxy's own pages say unknown where the agent would say where the time went", async () => {
  const service = await open(`/service?service=${PROXY}&to=${pausedAt}`);
  for (const col of ['cpu', 'external', 'blocking']) {
    const cells = await service.$$eval(`table.endpoints td[data-col=${col}]`, (tds) => tds.map((td) => [td.textContent, td.getAttribute('title')]));
    assert.ok(cells.length > 0);
    for (const [text, title] of cells) {
      assert.equal(text, '—');
      assert.match(title!, /^unknown: seen from outside the process/);
    }
  }
  assert.match((await service.locator('[data-unknown=breakdown]').textContent())!, /cpu, external and blocking are unknown here/);
  await service.close();

  const [slowest] = await api<TraceSummary[]>(collector.url, `/api/traces?service=${PROXY}&endpoint=${encodeURIComponent(WAIT)}&${span()}`);
  const record = await api<TraceRecord>(collector.url, `/api/traces/${slowest!.traceId}`);
  const trace = await open(`/trace?id=${slowest!.traceId}`);
  const card = async (label: string): Promise<string> => (await trace.locator(`[data-stat="${label}"] .stat-value`).textContent())!;
  for (const label of ['CPU', 'External', 'Blocking']) assert.equal(await card(label), 'unknown');
  closeTo(parseMs(await card('First byte')), record.firstByte!, 'first byte');
  closeTo(parseMs(await card('Response')), record.response, 'response');
  await trace.close();
});

test('a failed check shows its reason on the trace page', async () => {
  const [check] = await api<TraceSummary[]>(collector.url, '/api/traces?service=probe&sort=recent');
  const record = await api<TraceRecord>(collector.url, `/api/traces/${check!.traceId}`);
  assert.equal(record.errorMessage, 'wrong status 500, expected 200');
  const page = await open(`/trace?id=${check!.traceId}`);
  assert.equal(await page.locator('.banner.warn').first().textContent(), 'Failed: wrong status 500, expected 200');
  assert.equal(await page.locator('[data-stat="Status"] .stat-value').textContent(), '500');
  await page.close();
  const overview = await open('/');
  assert.equal(await overview.locator('tr[data-service="probe"] [data-col=agents]').textContent(), 'probe');
  assert.equal(await overview.locator(`tr[data-service="${PROXY}"] [data-col=agents]`).textContent(), 'proxy');
  assert.equal(await overview.locator(`tr[data-service="${APP}"] [data-col=agents]`).textContent(), 'agent');
  await overview.close();
});
