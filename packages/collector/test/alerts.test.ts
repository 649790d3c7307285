/**
 * Alert rules end to end: an app under the agent (fixtures/timed-app.mjs) whose endpoint answers
 * after 5 ms, then after 80 ms, then after 5 ms again, under a rule "p95 response of GET /work above
 * 50 ms for 2 s, over a 3 s window, evaluated every second". The alert fires no sooner than `for`
 * after the slow phase began and within `for` + two intervals of the slow data's arrival; resolves
 * once the slow requests have left the window; a real Alertmanager (Debian's package) lists it
 * while it fires and takes its end; a webhook gets both, signed, retried after a 503; a webhook
 * that is down costs nothing else.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { SIGNATURE_HEADER, parseRules } from '@loopscope/collector';
import type { Alert, AlertRule } from '@loopscope/protocol';
import { get, startTestCollector, type TestCollector } from './helpers.js';
import { drive, freePort, startAlertmanager, startTimedApp, type TimedApp, type Tool } from './prometheus-tools.js';

const SERVICE = 'alert-app';
const INTERVAL_MS = 1000;
const FOR_MS = 2000;
const WINDOW_MS = 3000;
/** The slow data's way to the collector: the 80 ms request, the agent's flush (250 ms), ingest (ms). */
const ARRIVAL_MS = 80 + 250 + 250;
const SECRET = 's3cret';

let collector: TestCollector;
let app: TimedApp;
let alertmanager: Tool;
let webhook: http.Server;
const hooks: Array<{ body: string; signature: string | undefined }> = [];
let refusedOnce = false;
let slowFrom = 0;
let fastAgainFrom = 0;
let fired: Alert;
let resolved: Alert;
/** What Alertmanager listed while the alert fired. */
let amWhileFiring: AmAlert[] = [];

/** Requests at about 20 a second, each answering after `ms`, for `seconds`. */
async function traffic(ms: number, seconds: number): Promise<void> {
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    await Promise.all([drive(app.url, 2, 2, () => `/work?ms=${ms}`), new Promise((r) => setTimeout(r, 100))]);
  }
}

async function alerts(): Promise<Alert[]> {
  return (await get(`${collector.url}/api/alerts`)).body as Alert[];
}

/** Polls the collector's alerts until `find` picks one (every 100 ms, for at most `ms`). */
async function waitFor(what: string, find: (list: Alert[]) => Alert | undefined, ms: number): Promise<Alert> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = find(await alerts());
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms; alerts ${JSON.stringify(await alerts())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  status: { state: string };
}

async function inAlertmanager(): Promise<AmAlert[]> {
  return (await (await fetch(`${alertmanager.url}/api/v2/alerts?filter=${encodeURIComponent('alertname="work-slow"')}`)).json()) as AmAlert[];
}

before(async () => {
  webhook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      // the first delivery fails as a busy receiver's would: it must come again
      if (!refusedOnce) {
        refusedOnce = true;
        res.writeHead(503).end();
        return;
      }
      hooks.push({ body, signature: req.headers[SIGNATURE_HEADER] as string | undefined });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  alertmanager = await startAlertmanager();
  const down = await freePort();
  const rules = parseRules(`
interval: 1s
rules:
  - name: work-slow
    service: ${SERVICE}
    endpoint: GET /work
    metric: response
    quantile: 0.95
    above: 50
    for: 2s
    window: 3s
    labels: { severity: page, team: shop }
    annotations: { runbook: "https://example.test/runbook" }
  - name: work-errors
    service: ${SERVICE}
    metric: error_rate
    above: 0.5
receivers:
  - alertmanager: ${alertmanager.url}
  - webhook: http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook
    secret: ${SECRET}
  - webhook: http://127.0.0.1:${down}/nobody-listens
`);
  collector = await startTestCollector({ rules });
  app = await startTimedApp(collector.url, SERVICE);

  await traffic(5, 3);
  assert.deepEqual(await alerts(), [], 'fast requests: no alert');
  slowFrom = Date.now();
  const slow = traffic(80, 6);
  fired = await waitFor('the alert firing', (list) => list.find((a) => a.name === 'work-slow' && a.state === 'firing'), 10_000);
  for (let i = 0; i < 50 && amWhileFiring.length === 0; i++) {
    amWhileFiring = await inAlertmanager();
    if (amWhileFiring.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  await slow;
  fastAgainFrom = Date.now();
  const fast = traffic(5, 7);
  resolved = await waitFor('the alert resolved', (list) => list.find((a) => a.name === 'work-slow' && a.state === 'resolved'), 12_000);
  await fast;
});
after(async () => {
  await app?.stop();
  await collector?.close();
  await alertmanager?.stop();
  webhook?.close();
});

test('the alert fires after `for`, within `for` and two intervals of the slow data\'s arrival', (t) => {
  const after = fired.firedAt! - slowFrom;
  t.diagnostic(`fired ${after} ms after the slow phase began, at ${fired.value} ms (bounds ${FOR_MS}..${ARRIVAL_MS + FOR_MS + 2 * INTERVAL_MS})`);
  assert.ok(after >= FOR_MS, `fired ${after} ms after the slow phase began: before its 2 s \`for\``);
  assert.ok(after <= ARRIVAL_MS + FOR_MS + 2 * INTERVAL_MS, `fired ${after} ms after the slow phase began`);
  assert.equal(fired.service, SERVICE);
  assert.equal(fired.endpoint, 'GET /work');
  assert.ok(fired.value! > 50 && fired.value! <= 80 * 1.1 + 10, `its value ${fired.value} ms: the p95 of 80 ms requests`);
  assert.equal(fired.threshold, 50);
  assert.deepEqual(fired.labels, { severity: 'page', team: 'shop' });
});

test('it resolves once the slow requests have left its window, not before', (t) => {
  const after = resolved.resolvedAt! - fastAgainFrom;
  t.diagnostic(`resolved ${after} ms after the fast phase began, at ${resolved.value} ms (bounds ${WINDOW_MS - 1000}..${ARRIVAL_MS + WINDOW_MS + 2 * INTERVAL_MS})`);
  // the last slow request's second stays in the window for the window less at most that second
  assert.ok(after >= WINDOW_MS - 1000, `resolved ${after} ms after the fast phase began: the slow ones were still in its ${WINDOW_MS} ms window`);
  assert.ok(after <= ARRIVAL_MS + WINDOW_MS + 2 * INTERVAL_MS, `resolved ${after} ms after the fast phase began`);
  assert.equal(resolved.firedAt, fired.firedAt);
  assert.ok(resolved.value === null || resolved.value <= 45, `resolved at ${resolved.value} ms, past the threshold by its 10 % hysteresis`);
});

test('a rule that never crossed its line raised nothing', async () => {
  assert.equal((await alerts()).filter((a) => a.name === 'work-errors').length, 0);
  const rules = (await get(`${collector.url}/api/rules`)).body as AlertRule[];
  assert.deepEqual(
    rules.map((r) => [r.name, r.metric, r.quantile, r.threshold, r.state]),
    [
      ['work-slow', 'response', 0.95, 50, 'ok'],
      ['work-errors', 'error_rate', null, 0.5, 'ok'],
    ],
  );
});

test('Alertmanager had it while it fired and has its end', async (t) => {
  assert.equal(amWhileFiring.length, 1, 'listed while it fired');
  const [firing] = amWhileFiring;
  assert.equal(firing!.status.state, 'active');
  assert.deepEqual(firing!.labels, { alertname: 'work-slow', service: SERVICE, endpoint: 'GET /work', metric: 'response', severity: 'page', team: 'shop' });
  assert.equal(firing!.annotations.runbook, 'https://example.test/runbook');
  assert.match(firing!.annotations.summary!, /^p95 response of alert-app GET \/work is [\d.]+ ms, above 50 ms$/);
  assert.equal(new Date(firing!.startsAt).getTime(), fired.firedAt);
  // resolved: gone from its alerts, or listed with the end the collector sent
  const afterwards = await inAlertmanager();
  t.diagnostic(`Alertmanager lists ${afterwards.length} after the resolution${afterwards.length > 0 ? `: ${afterwards[0]!.status.state}` : ''}`);
  for (const a of afterwards) {
    assert.equal(new Date(a.endsAt).getTime(), resolved.resolvedAt, `Alertmanager's end of it: ${JSON.stringify(a)}`);
    assert.notEqual(a.status.state, 'active');
  }
  // while it fired, Alertmanager took it: its own metrics count what it received
  const metrics = await (await fetch(`${alertmanager.url}/metrics`)).text();
  const received = metrics.split('\n').filter((l) => l.startsWith('alertmanager_alerts_received_total') && l.includes('status="firing"'));
  assert.ok(received.some((l) => Number(l.split(' ').pop()) >= 1), `Alertmanager received the firing alert: ${received.join('; ')}`);
  const resolvedCount = metrics.split('\n').filter((l) => l.startsWith('alertmanager_alerts_received_total') && l.includes('status="resolved"'));
  assert.ok(resolvedCount.some((l) => Number(l.split(' ').pop()) >= 1), `Alertmanager received its end: ${resolvedCount.join('; ')}`);
});

test('the webhook got the firing and the resolved alert, signed with the secret, after a 503 it was sent again', async () => {
  assert.ok(refusedOnce);
  const deadline = Date.now() + 10_000;
  while (hooks.flatMap((h) => (JSON.parse(h.body) as { alerts: Alert[] }).alerts).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const states: string[] = [];
  for (const { body, signature } of hooks) {
    assert.equal(signature, `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, 'signed with HMAC-SHA256 of the body');
    const payload = JSON.parse(body) as { version: number; alerts: Array<Alert & { summary: string }> };
    assert.equal(payload.version, 1);
    for (const a of payload.alerts) {
      assert.equal(a.name, 'work-slow');
      assert.match(a.summary, /p95 response of alert-app GET \/work is/);
      states.push(a.state);
    }
  }
  assert.deepEqual(states, ['firing', 'resolved']);
});

test('a receiver that is down is retried and counted, and the others and ingest go on', async () => {
  const health = (await get(`${collector.url}/api/health`)).body as { alerts: { receivers: Array<{ kind: string; url: string; sent: number; retries: number; queued: number }> } };
  const [am, hook, down] = health.alerts.receivers;
  assert.equal(am!.kind, 'alertmanager');
  assert.ok(am!.sent >= 2, `Alertmanager: ${JSON.stringify(am)}`);
  assert.ok(hook!.sent === 2 && hook!.retries >= 1, `the webhook: ${JSON.stringify(hook)}`);
  assert.ok(down!.sent === 0 && down!.retries >= 1 && down!.queued >= 1, `the webhook that is down: ${JSON.stringify(down)}`);
  const rows = (await get(`${collector.url}/api/endpoints?service=${SERVICE}&from=${slowFrom - 10_000}`)).body as Array<{ endpoint: string; count: number }>;
  assert.ok(rows[0]!.count > 200, `every phase's requests were stored: ${JSON.stringify(rows)}`);
});
