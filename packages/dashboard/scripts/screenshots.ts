/**
 * `npm run screenshots`: docs/screenshots/*.png, one per page of the dashboard, from a real run —
 * a collector, the puppies example under the agent and ~20 s of its demo traffic — captured in
 * Chromium. The pages are shown paused at the end of the traffic, so each picture is complete.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startCollector } from '@loopscope/collector';
import { driveTraffic } from '@loopscope/example-puppies/traffic';
import { api, launchBrowser, startApp, startNode, tempDir } from '../test/harness.js';

const OUT = fileURLToPath(new URL('../../../../docs/screenshots/', import.meta.url));
const SERVICE = 'puppies';
const TRAFFIC_MS = Number(process.env.TRAFFIC_MS ?? 20_000);

const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
const upstream = await startNode([fileURLToPath(import.meta.resolve('@loopscope/example-puppies/upstream'))], { env: { PORT: '0' }, ready: /upstream: (http:\S+)/ });
const app = await startApp(fileURLToPath(import.meta.resolve('@loopscope/example-puppies/main')), {
  collector: collector.url,
  service: SERVICE,
  env: { PORT: '0', UPSTREAM_URL: upstream.url, LOOPSCOPE_SAMPLE_RATE: '0.05' },
  ready: /puppies:\s+(http:\S+)/,
});
const browser = await launchBrowser();
try {
  console.log(`collector ${collector.url}; puppies traffic for ${TRAFFIC_MS / 1000} s`);
  const traffic = driveTraffic({ url: app.url, rps: 25, durationMs: TRAFFIC_MS });
  await new Promise((r) => setTimeout(r, TRAFFIC_MS));
  await traffic.stop();
  await new Promise((r) => setTimeout(r, 2500)); // the last interval reaches the collector
  const to = Math.floor(Date.now() / 1000) * 1000;
  const [slowest] = await api<Array<{ traceId: string }>>(collector.url, `/api/traces?service=${SERVICE}&endpoint=${encodeURIComponent('GET /chores')}&sort=slowest&limit=1`);

  const pages: Array<[string, string]> = [
    ['overview', `/?to=${to}`],
    ['service', `/service?service=${SERVICE}&to=${to}`],
    ['endpoint', `/endpoint?service=${SERVICE}&endpoint=${encodeURIComponent('GET /chores')}&to=${to}`],
    ['trace', `/trace?id=${slowest?.traceId ?? 'none'}`],
    ['event-loop', `/loop?service=${SERVICE}&to=${to}&sort=worst`],
  ];
  mkdirSync(OUT, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  for (const [name, path] of pages) {
    await page.goto(`${collector.url}${path}`);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 15_000 });
    if (name === 'trace') {
      await page.click('.wf-row.critical'); // its details, pinned below the waterfall
      await page.mouse.move(0, 0);
    }
    // the long-task list runs to 50 rows: its first screenful says enough
    await page.screenshot({ path: `${OUT}${name}.png`, fullPage: name !== 'event-loop' });
    console.log(`docs/screenshots/${name}.png`);
  }
} finally {
  await browser.close();
  await app.stop();
  await upstream.stop();
  await collector.close();
}
