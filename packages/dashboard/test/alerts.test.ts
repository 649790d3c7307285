/**
 * Alerts in real Chromium: a collector with rules (`loopscope up --rules`) that has ingested a
 * minute of a service whose p95 response is 250 ms. The rule "p95 response above 100 ms" fires;
 * the services page and the service's page list it in words, and the service's latency chart draws
 * its threshold as a dashed red line at 100 ms (read back from the canvas's pixels), the error-rate
 * chart that of the rule that did not fire, at 50 %.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startCollector, parseRules, type Collector } from '@loopscope/collector';
import { METRICS, addValue, newSketch, toWire, type Alert, type MetricName, type WireInterval } from '@loopscope/protocol';
import type { Browser, Page } from 'playwright-core';
import { agentBatch, launchBrowser, openPage, tempDir, until } from './harness.js';

const SERVICE = 'shop';
let collector: Collector;
let browser: Browser;
const incidents: string[] = [];

/** A second of `count` requests of GET /checkout, each with `response` ms (and the other numbers under it). */
function second(start: number, count: number, response: number): WireInterval {
  const sketches = Object.fromEntries(
    METRICS.map((m) => {
      const s = newSketch();
      for (let i = 0; i < count; i++) addValue(s, m === 'response' || m === 'duration' ? response : m === 'external' ? response - 10 : 2);
      return [m, toWire(s)];
    }),
  ) as Record<MetricName, ReturnType<typeof toWire>>;
  return { start, ms: 1000, endpoint: 'GET /checkout', count, errors: 0, ...sketches };
}

before(async () => {
  const rules = parseRules(`
interval: 1s
rules:
  - name: shop-slow
    service: ${SERVICE}
    metric: response
    quantile: 0.95
    above: 100
    labels: { severity: page }
  - name: shop-failing
    service: ${SERVICE}
    metric: error_rate
    above: 0.5
`);
  collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false, rules });
  const now = Math.floor(Date.now() / 1000) * 1000;
  const intervals = Array.from({ length: 30 }, (_, i) => second(now - 30_000 + i * 1000, 5, 250));
  const res = await fetch(`${collector.url}/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(agentBatch(SERVICE, now, { intervals })) });
  assert.equal(res.status, 200, await res.text());
  await until('the alert firing', async () => {
    const list = (await (await fetch(`${collector.url}/api/alerts`)).json()) as Alert[];
    return list.some((a) => a.name === 'shop-slow' && a.state === 'firing') ? true : undefined;
  });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await collector?.close();
  assert.deepEqual(incidents, [], 'no page opened a dialog or threw');
});

const open = (path: string): Promise<Page> => openPage(browser, `${collector.url}${path}`, incidents);

async function alertRows(page: Page): Promise<string[][]> {
  const rows = page.locator('section.alerts tr[data-alert]');
  return Promise.all((await rows.all()).map(async (r) => [(await r.getAttribute('data-alert'))!, (await r.getAttribute('data-state'))!, (await r.locator('td[data-col="summary"]').innerText()).trim()]));
}

test('the services page lists the firing alert in words, linking to its service', async () => {
  const page = await open('/');
  const [[name, state, summary]] = (await alertRows(page)) as [[string, string, string]];
  assert.equal(name, 'shop-slow');
  assert.equal(state, 'firing');
  assert.match(summary, /^p95 response of shop is 2\d\d(\.\d+)? ms, above 100 ms$/);
  assert.equal(await page.locator('section.alerts h3').innerText(), 'Alerts — 1 active');
  await page.locator('section.alerts tr[data-alert="shop-slow"] a').click();
  await page.waitForURL(/\/service\?service=shop/);
});

test("the service's page lists it, and its charts draw each rule's threshold", async () => {
  const page = await open(`/service?service=${SERVICE}`);
  assert.deepEqual((await alertRows(page)).map(([n, s]) => [n, s]), [['shop-slow', 'firing']]);
  const latency = page.locator('section[data-chart^="Latency"]');
  await until('the latency chart with its threshold', async () => ((await latency.getAttribute('data-thresholds')) === '[100]' ? true : undefined));
  assert.match((await latency.getAttribute('title'))!, /shop-slow: above 100 ms \(firing\)/);
  assert.equal(await page.locator('section[data-chart="Error rate"]').getAttribute('data-thresholds'), '[50]');
  assert.equal(await page.locator('section[data-chart="Throughput"]').getAttribute('data-thresholds'), '[]');
  // the line itself: a row of the plot's canvas in the threshold's red, where 100 ms is on its scale
  const redRows = await latency.locator('canvas').evaluate((canvas: HTMLCanvasElement) => {
    const ctx = canvas.getContext('2d')!;
    const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const rows: number[] = [];
    for (let y = 0; y < height; y++) {
      let red = 0;
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        // the threshold's red (#c62828), blended with the white where the line's edge falls between pixels
        if (data[i]! > 150 && data[i + 1]! < 150 && data[i + 2]! < 150 && data[i]! - data[i + 1]! > 60) red++;
      }
      if (red > width / 3) rows.push(y);
    }
    return rows;
  });
  assert.ok(redRows.length > 0, 'a dashed red line across the latency chart');
});

test('with the percentile at p99, the p95 rule draws no line on the latency chart', async () => {
  const page = await open(`/service?service=${SERVICE}&p=p99`);
  const latency = page.locator('section[data-chart^="Latency"]');
  await until('the p99 latency chart', async () => ((await latency.getAttribute('data-thresholds')) === '[]' ? true : undefined));
});
