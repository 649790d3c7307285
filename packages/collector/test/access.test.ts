/**
 * Who may send and who may read (docs/collector.md#access): a collector with an ingest token and a
 * read token, asked over real HTTP with no token, the other token, a wrong one and the right one;
 * an address that keeps guessing is refused for a while, and every refusal is counted in /metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { batch, interval, random, randomTx, sendBatch, startTestCollector, type TestCollector } from './helpers.js';

const INGEST = 'ingest-7c1d0e';
const READ = 'read-93ab44';
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
const WINDOW_MS = 1500;
const FAILURES = 20;

let collector: TestCollector;
const rand = random(11);

const ask = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; text: string }> => {
  const res = await fetch(`${collector.url}${path}`, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
};
const good = (): ReturnType<typeof batch> => batch('access', 'i-1', [interval('GET /ok', Date.now() - 2000, [randomTx(rand, 0)])]);

before(async () => {
  collector = await startTestCollector({ token: INGEST, readToken: READ, throttle: { failures: FAILURES, windowMs: WINDOW_MS } });
  assert.equal((await sendBatch(collector.url, good(), bearer(INGEST))).status, 200);
});
after(() => collector.close());

describe('the read token', () => {
  it('guards every query API path and /metrics, naming the token it wants', async () => {
    for (const path of ['/api/services', '/api/endpoints?service=access', '/api/traces?service=access', '/api/traces/0123456789abcdef0123456789abcdef', '/api/servicemap', '/api/alerts', '/api/nothing-here', '/metrics']) {
      const none = await ask(path);
      assert.equal(none.status, 401, path);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="loopscope read"');
      assert.match(JSON.parse(none.text).error, /^missing read token: .*Authorization: Bearer <read token> \(the collector was started with --read-token; the ingest token does not give read access\)$/, path);
      const ingest = await ask(path, bearer(INGEST));
      assert.equal(ingest.status, 401, `${path} with the ingest token`);
      assert.match(JSON.parse(ingest.text).error, /^wrong read token/);
    }
    await sleep(WINDOW_MS); // (16 failures: fewer than the throttle's)
    const services = await ask('/api/services', bearer(READ));
    assert.equal(services.status, 200);
    assert.deepEqual(JSON.parse(services.text).map((s: { service: string }) => s.service), ['access']);
    const metrics = await ask('/metrics', bearer(READ));
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^loopscope_requests_total\{service="access",endpoint="GET \/ok"\} 1$/m);
  });

  it('leaves the dashboard files and the health check open, and keeps the health details for readers', async () => {
    const page = await ask('/service?service=access');
    assert.equal(page.status, 200);
    assert.match(page.text, /<script type="module" src="\/app-[A-Z0-9]+\.js"><\/script>/);
    const script = /src="(\/app-[A-Z0-9]+\.js)"/.exec(page.text)![1]!;
    assert.equal((await ask(script)).status, 200);
    const open = JSON.parse((await ask('/api/health')).text);
    assert.deepEqual(Object.keys(open).sort(), ['status', 'storage', 'version']);
    const full = JSON.parse((await ask('/api/health', bearer(READ))).text);
    assert.deepEqual(full.otlpIn, { waiting: 0, expired: 0 });
  });

  it('does not let the read token send', async () => {
    const answer = await sendBatch(collector.url, good(), bearer(READ));
    assert.equal(answer.status, 401);
    assert.match(answer.body.error, /^wrong ingest token: send Authorization: Bearer <ingest token>/);
    await sleep(WINDOW_MS);
    const otlp = await fetch(`${collector.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(READ) }, body: '{"resourceSpans":[]}' });
    assert.equal(otlp.status, 401);
    assert.equal((await fetch(`${collector.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(INGEST) }, body: '{"resourceSpans":[]}' })).status, 200);
    await sleep(WINDOW_MS);
  });
});

describe('an address that keeps sending wrong tokens', () => {
  it('is refused for the rest of the window, the right token too, then let in again; its refusals are counted', async () => {
    await sleep(WINDOW_MS);
    const before = await ask('/metrics', bearer(READ));
    const count = (text: string, reason: string): number => Number(new RegExp(`^loopscope_refused_requests_total\\{token="read",reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    for (let i = 0; i < FAILURES; i++) assert.equal((await ask('/api/services', bearer(`guess-${i}`))).status, 401);
    const refused = await ask('/api/services', bearer(READ));
    assert.equal(refused.status, 429);
    assert.match(JSON.parse(refused.text).error, /^too many missing or wrong read tokens from 127\.0\.0\.1: try again in [12] s$/);
    assert.match(refused.headers.get('retry-after')!, /^[12]$/);
    // the ingest token is counted apart: the agents on the machine keep sending
    assert.equal((await sendBatch(collector.url, good(), bearer(INGEST))).status, 200);
    await sleep(WINDOW_MS + 100);
    const after = await ask('/metrics', bearer(READ));
    assert.equal(after.status, 200);
    assert.equal(count(after.text, 'wrong') - count(before.text, 'wrong'), FAILURES);
    assert.equal(count(after.text, 'throttled') - count(before.text, 'throttled'), 1);
    assert.ok(count(after.text, 'missing') >= 8, 'the missing tokens of the first test are counted');
  });
});
