/**
 * The critical path of an endpoint over many requests (GET /api/critical-path), end to end: an app
 * under the agent → a real collector. Ground truth by construction: GET /checkout calls an upstream's
 * /slow (40 ms) and /fast (10 ms) at once, then /after (20 ms), and every other request /extra
 * (15 ms). So /slow and /after are on every request's path, /fast on none, /extra on half the
 * requests and on the path whenever it ran; each step's time there is its upstream's delay (and
 * the loopback's fraction of a millisecond), its share that time over the requests' duration.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { startCollector, type Collector } from '@loopscope/collector';
import type { CriticalPathSummary, TransactionRecord } from '@loopscope/protocol';
import { api, get, startApp, stopApp, tempDir, until, type App } from './helpers.js';

const DELAYS: Record<string, number> = { '/slow': 40, '/fast': 10, '/after': 20, '/extra': 15 };
const REQUESTS = 40;

/** `REQUESTS` GET /checkout one after the other, a pause between (the agent draws 10 traces a second at most). */
async function drive(url: string): Promise<void> {
  for (let i = 0; i < REQUESTS; i++) {
    assert.equal((await get(`${url}/checkout`)).status, 200);
    await new Promise((r) => setTimeout(r, 60));
  }
}

const pathOf = (c: Collector, from: number): Promise<CriticalPathSummary> =>
  api<CriticalPathSummary>(c.url, `/api/critical-path?service=shop&endpoint=${encodeURIComponent('GET /checkout')}&from=${from}&to=${Date.now() + 1000}`);

/**
 * An upstream with the delays, a collector, the app under the agent drawing traces at random at
 * `sampleRate`, the requests driven; then `check(collector, app, from)`.
 */
async function driven(sampleRate: string, check: (collector: Collector, app: App, from: number) => Promise<void>): Promise<void> {
  const upstream = http.createServer((req, res) => setTimeout(() => res.end('ok'), DELAYS[req.url ?? ''] ?? 0));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  const app = await startApp('path-app.mjs', collector.url, { LOOPSCOPE_SERVICE: 'shop', LOOPSCOPE_SAMPLE_RATE: sampleRate, UPSTREAM: upstreamUrl });
  try {
    const from = Date.now() - 1000;
    await drive(app.url);
    await check(collector, app, from);
  } finally {
    await stopApp(app);
    await collector.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  }
}

test('the critical path of an endpoint: each step with its share, its time there and how often it was on it, from the traces drawn at random', async () => {
  await driven('1', async (collector, app, from) => {
    const records = await until('every request recorded', async () => {
      const all = app.records().filter((r) => r.endpoint === 'GET /checkout');
      return all.length === REQUESTS ? all : undefined;
    });
    const path = await until('the traces at the collector', async () => {
      const p = await pathOf(collector, from);
      return p.requests >= 30 ? p : undefined;
    });
    assert.equal(path.basis, 'random');
    assert.ok(path.requests <= REQUESTS, `${path.requests} traces`);
    const step = (p: string) => {
      const s = path.steps.find((x) => x.kind === 'http' && x.name.endsWith(p));
      assert.ok(s, `no step ${p} in ${path.steps.map((x) => x.name).join(', ')}`);
      return s;
    };
    const meanDuration = records.reduce((n, r: TransactionRecord) => n + r.duration, 0) / records.length;
    assert.ok(Math.abs(path.duration - meanDuration) <= 5, `mean duration ${path.duration} against ${meanDuration.toFixed(1)} of all requests`);
    // on every path, for its delay (the loopback adds a little; a timer may fire 1 ms early)
    for (const [p, ms] of [['/slow', 40], ['/after', 20]] as const) {
      const s = step(p);
      assert.equal(s.onPath, 1, `${p} on every path`);
      assert.ok(s.mean >= ms - 1 && s.mean <= ms + 6, `${p} mean ${s.mean}, expected ${ms}`);
      // the p95 of a busy machine's tail: within what the requests' own records hold
      const lengths = records.flatMap((r) => r.segments.filter((x) => x.name.endsWith(p)).map((x) => x.end - x.start));
      assert.ok(s.p95 >= s.mean && s.p95 <= Math.max(...lengths) + 0.001, `${p} p95 ${s.p95}, the longest of the records ${Math.max(...lengths)}`);
      assert.ok(Math.abs(s.share - s.mean / path.duration) <= 0.02, `${p} share ${s.share}: ${s.mean} of ${path.duration} ms`);
    }
    // never: it ends while /slow still runs
    assert.deepEqual([step('/fast').onPath, step('/fast').share], [0, 0]);
    // on the path whenever it ran, which was every other request: half the share its time would have
    const extra = step('/extra');
    assert.equal(extra.onPath, 1);
    assert.ok(extra.mean >= 14 && extra.mean <= 19, `/extra mean ${extra.mean}`);
    const ranExtra = path.requests / 2;
    assert.ok(Math.abs(extra.share - (extra.mean * ranExtra) / (path.duration * path.requests)) <= 0.05, `/extra share ${extra.share}`);
    // the largest share first; the service's own time is what is left, a small part
    assert.deepEqual(path.steps.slice(0, 3).map((s) => s.name.replace(/^GET [^/]+/, '')), ['/slow', '/after', '/extra']);
    assert.ok(path.own.cpu !== null && path.own.cpu > 0 && path.own.cpu < 0.2, `own cpu ${path.own.cpu}`);
    // the steps of a path never overlap, nor do they with blocking (the wait after an answer
    // arrived); cpu does: making a request and reading its answer happen inside its segment
    const steps = path.steps.reduce((n, s) => n + s.share, 0);
    assert.ok(steps + path.own.blocking! <= 1.005, `the steps and blocking add up to ${steps + path.own.blocking!}: ${JSON.stringify(path)}`);
  });
});

test('with too few traces drawn at random, the path is summed over every stored trace and says so', async () => {
  await driven('0', async (collector, _app, from) => {
    // only the slowest of each second is stored
    const path = await until('the traces at the collector', async () => {
      const p = await pathOf(collector, from);
      return p.requests > 0 ? p : undefined;
    });
    assert.equal(path.basis, 'all');
    assert.ok(path.requests < REQUESTS, `${path.requests} traces`);
    assert.equal(path.steps.find((s) => s.name.endsWith('/slow'))?.onPath, 1);
  });
});

test('an endpoint with no traces, and a query without its endpoint', async () => {
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  try {
    const empty = await api<CriticalPathSummary>(collector.url, '/api/critical-path?service=shop&endpoint=GET%20%2Fnone');
    assert.deepEqual(empty, { requests: 0, basis: 'all', duration: 0, own: { cpu: null, blocking: null }, steps: [] });
    const bad = await get(`${collector.url}/api/critical-path?service=shop`);
    assert.equal(bad.status, 400);
    assert.match(bad.body, /endpoint/);
  } finally {
    await collector.close();
  }
});
