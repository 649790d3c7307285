/**
 * The dashboard of a collector on a network (docs/collector.md#access): served over HTTPS with a
 * certificate this test makes, its data behind a read token. Real Chromium asks for the token in
 * place of the page, says when it is refused, keeps it in the tab (never in the address), and
 * shows the data once it is given.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startCollector, type Collector } from '@loopscope/collector';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { agentBatch, launchBrowser, ready, tempDir, wireTrace } from './harness.js';

const READ = 'read-4f1c9e07';
const SERVICE = 'guarded';
const dir = tempDir();
let collector: Collector;
let browser: Browser;
let context: BrowserContext;
const incidents: string[] = [];

/** POST over HTTPS, trusting the test's own certificate. */
function post(url: string, body: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject)
      .end(body);
  });
}

before(async () => {
  // a self-signed certificate for 127.0.0.1, its own CA
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
  const cert = readFileSync(join(dir, 'cert.pem'));
  collector = await startCollector({ port: 0, dataDir: dir, logger: false, readToken: READ, tls: { cert, key: readFileSync(join(dir, 'key.pem')) } });
  assert.match(collector.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const now = Date.now();
  const batch = agentBatch(SERVICE, now, { traces: [wireTrace(SERVICE, 'GET /guarded', now - 5000)] });
  assert.equal(await post(`${collector.url}/v1/ingest`, JSON.stringify(batch), cert), 200);
  browser = await launchBrowser();
  // Chromium does not know the test's certificate: the page is still served over TLS
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 } });
});
after(async () => {
  await browser?.close();
  await collector?.close();
  assert.deepEqual(incidents, [], 'no page threw or was refused by the CSP');
});

async function open(path: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => incidents.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) incidents.push(m.text());
  });
  await page.goto(`${collector.url}${path}`);
  return page;
}

const asked = (page: Page): Promise<unknown> => page.waitForSelector('body[data-state="token"] form.token-form', { timeout: 15_000 });

async function give(page: Page, token: string): Promise<void> {
  await page.fill('form.token-form input[type="password"]', token);
  await page.click('form.token-form button[type="submit"]');
}

test('asks for the read token, says when it is refused, and shows the data once given', async () => {
  const page = await open(`/service?service=${SERVICE}`);
  await asked(page);
  assert.equal(await page.textContent('form.token-form strong'), 'This collector needs its read token');
  assert.equal(await page.$('.endpoint-table, table'), null, 'no data before the token');

  await give(page, 'not-the-token');
  await page.waitForSelector('form.token-form strong:text("That read token was not accepted")');

  await give(page, READ);
  await ready(page);
  await page.waitForSelector('text=GET /guarded');
  assert.equal(new URL(page.url()).search, `?service=${SERVICE}`, 'the token is not in the address');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('loopscope.readToken')), READ);

  // kept for the tab: a reload and a link inside the app need nothing more
  await page.reload();
  await ready(page);
  await page.click('a.brand');
  await ready(page);
  await page.waitForSelector(`text=${SERVICE}`);
  await page.close();
});

test('another tab asks again, and a token the collector no longer takes is forgotten', async () => {
  const page = await open('/');
  await asked(page);
  await page.evaluate(() => sessionStorage.setItem('loopscope.readToken', 'an-old-token'));
  await page.reload();
  await page.waitForSelector('form.token-form strong:text("That read token was not accepted")');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('loopscope.readToken')), null);
  await page.close();
});
