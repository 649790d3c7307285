/**
 * Batches built by hand from known values go in; the query API must give back the exact counts
 * and the percentiles of those values within 2 % (the sketch's bound is 1 %), at per-second and at
 * per-minute resolution alike.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { METRICS, type MetricName, type WireBatch, type WireTrace } from '@loopscope/protocol';
import { asSent, batch, exactQuantile, get, interval, random, randomTx, sendBatch, startTestCollector, trace, type TestCollector, type Tx } from './helpers.js';

const SERVICE = 'shop';
const ENDPOINTS = ['GET /puppies', 'POST /puppies/:id/feed', 'GET /chores'];
const INSTANCES = ['web-1:101', 'web-2:202'];
const SECONDS = 10;
// a whole minute, five minutes ago: inside the default per-second retention, outside a 1-minute one
const T0 = Math.floor((Date.now() - 5 * 60_000) / 60_000) * 60_000;

/** Every transaction sent, by endpoint and by second. */
const sent = new Map<string, Tx[][]>(ENDPOINTS.map((e) => [e, Array.from({ length: SECONDS }, () => [])]));
const traces: WireTrace[] = [];
const batches: WireBatch[] = [];

const rand = random(42);
for (let s = 0; s < SECONDS; s++) {
  for (const instance of INSTANCES) {
    const intervals = ENDPOINTS.map((endpoint, e) => {
      const txs = Array.from({ length: 20 + Math.floor(rand() * 40) * (e + 1) }, () => randomTx(rand));
      sent.get(endpoint)![s]!.push(...txs);
      return interval(endpoint, T0 + s * 1000, txs);
    });
    const sampled = [0, 1].map(() => {
      const endpoint = ENDPOINTS[Math.floor(rand() * ENDPOINTS.length)]!;
      return trace(SERVICE, endpoint, T0 + s * 1000 + Math.floor(rand() * 1000), randomTx(rand));
    });
    traces.push(...sampled);
    batches.push(batch(SERVICE, instance, intervals, sampled, T0 + (s + 1) * 1000));
  }
}
const all = (endpoint: string): Tx[] => sent.get(endpoint)!.flat();

/** Asserts every percentile within 2 % of the exact one and max, mean and counts exact. */
function assertMatches(row: any, txs: Tx[], where: string): void {
  assert.equal(row.count, txs.length, `${where} count`);
  assert.equal(row.errors, txs.filter((t) => t.error).length, `${where} errors`);
  for (const m of METRICS) {
    const values = txs.map((t) => t[m]);
    for (const [key, q] of [['p50', 0.5], ['p95', 0.95], ['p99', 0.99]] as const) {
      const exact = exactQuantile(values, q);
      assert.ok(Math.abs(row[m][key] - exact) <= 0.02 * exact + 0.001, `${where} ${m} ${key}: ${row[m][key]} vs exact ${exact}`);
    }
    assert.equal(row[m].max, Math.max(...values), `${where} ${m} max`);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    assert.ok(Math.abs(row[m].mean - mean) <= 0.001, `${where} ${m} mean: ${row[m].mean} vs ${mean}`);
  }
}

let collector: TestCollector; // default retention: answers from per-second rows
let minutes: TestCollector; // keeps per-second rows one minute only: the same data answers from per-minute rows
const range = `from=${T0}&to=${T0 + 60_000}`;

before(async () => {
  collector = await startTestCollector();
  minutes = await startTestCollector({ retention: { seconds: 60_000 } });
  for (const b of batches) {
    for (const c of [collector, minutes]) {
      const answer = await sendBatch(c.url, b);
      assert.deepEqual(answer, { status: 200, body: { ok: true, batchId: b.batchId, duplicate: false } });
    }
  }
});

after(async () => {
  await collector.close();
  await minutes.close();
});

test('services: the service, its two instances and when it was first and last seen', async () => {
  const { status, body } = await get(`${collector.url}/api/services?${range}`);
  assert.equal(status, 200);
  assert.deepEqual(body, [{ service: SERVICE, firstSeen: T0, lastSeen: T0 + SECONDS * 1000, instances: 2, dropped: { batches: 0, transactions: 0, traces: 0, parts: 0, cut: 0 }, agents: ['test'], agent: null }]);
  assert.deepEqual((await get(`${collector.url}/api/services?from=${T0 + 3_600_000}&to=${T0 + 7_200_000}`)).body, []);
});

test('endpoints: exact counts and errors, percentiles within 2 % of the exact ones', async () => {
  const { status, body } = await get(`${collector.url}/api/endpoints?service=${SERVICE}&${range}`);
  assert.equal(status, 200);
  assert.deepEqual(body.map((r: any) => r.endpoint).sort(), [...ENDPOINTS].sort());
  for (const endpoint of ENDPOINTS) assertMatches(body.find((r: any) => r.endpoint === endpoint), all(endpoint), endpoint);
  // the busiest endpoint first
  assert.ok(body[0].count >= body[1].count && body[1].count >= body[2].count);
});

test('per-minute rows give the same merged percentiles as per-second rows', async () => {
  const fromSeconds = (await get(`${collector.url}/api/endpoints?service=${SERVICE}&${range}`)).body;
  const fromMinutes = (await get(`${minutes.url}/api/endpoints?service=${SERVICE}&${range}`)).body;
  assert.deepEqual(fromMinutes, fromSeconds);
  for (const endpoint of ENDPOINTS) assertMatches(fromMinutes.find((r: any) => r.endpoint === endpoint), all(endpoint), `${endpoint} (minutes)`);

  // asked for 1 s points, the collector without per-second rows answers in whole minutes and says so
  const endpoint = ENDPOINTS[1]!;
  const series = (await get(`${minutes.url}/api/timeseries?service=${SERVICE}&endpoint=${encodeURIComponent(endpoint)}&metric=duration&q=0.99&step=1000&${range}`)).body;
  assert.equal(series.step, 60_000);
  assert.deepEqual(series.points.map((p: [number, number]) => p[0]), [T0]);
  const exact = exactQuantile(all(endpoint).map((t) => t.duration), 0.99);
  assert.ok(Math.abs(series.points[0][1] - exact) <= 0.02 * exact, `minute p99 ${series.points[0][1]} vs exact ${exact}`);
});

test('timeseries: throughput and errors per second equal the counts; percentiles per second; null without data', async () => {
  const perSecond = (pick: (txs: Tx[]) => number): number[] =>
    Array.from({ length: SECONDS }, (_, s) => ENDPOINTS.reduce((sum, e) => sum + pick(sent.get(e)![s]!), 0));

  const throughput = (await get(`${collector.url}/api/timeseries?service=${SERVICE}&metric=throughput&step=1000&${range}`)).body;
  assert.equal(throughput.metric, 'throughput');
  assert.equal(throughput.step, 1000);
  assert.equal(throughput.points.length, 60);
  assert.deepEqual(throughput.points.slice(0, SECONDS), perSecond((txs) => txs.length).map((n, s) => [T0 + s * 1000, n]));
  assert.ok(throughput.points.slice(SECONDS).every((p: [number, unknown]) => p[1] === null), 'seconds without data are null');

  const errors = (await get(`${collector.url}/api/timeseries?service=${SERVICE}&metric=errors&step=1000&${range}`)).body;
  assert.deepEqual(errors.points.slice(0, SECONDS).map((p: number[]) => p[1]), perSecond((txs) => txs.filter((t) => t.error).length));

  // two seconds per point: per second means half the count
  const twos = (await get(`${collector.url}/api/timeseries?service=${SERVICE}&metric=throughput&step=2000&${range}`)).body;
  const counts = perSecond((txs) => txs.length);
  assert.deepEqual(twos.points.slice(0, SECONDS / 2).map((p: number[]) => p[1]), counts.filter((_, s) => s % 2 === 0).map((n, i) => (n + counts[2 * i + 1]!) / 2));

  const endpoint = ENDPOINTS[0]!;
  for (const metric of ['response', 'cpu', 'blocking'] as MetricName[]) {
    const series = (await get(`${collector.url}/api/timeseries?service=${SERVICE}&endpoint=${encodeURIComponent(endpoint)}&metric=${metric}&step=1000&${range}`)).body;
    assert.equal(series.q, 0.95);
    for (let s = 0; s < SECONDS; s++) {
      const exact = exactQuantile(sent.get(endpoint)![s]!.map((t) => t[metric]), 0.95);
      assert.ok(Math.abs(series.points[s][1] - exact) <= 0.02 * exact + 0.001, `${metric} second ${s}: ${series.points[s][1]} vs ${exact}`);
    }
  }
  const max = (await get(`${collector.url}/api/timeseries?service=${SERVICE}&endpoint=${encodeURIComponent(endpoint)}&metric=duration&q=1&step=60000&${range}`)).body;
  assert.deepEqual(max.points, [[T0, Math.max(...all(endpoint).map((t) => t.duration))]]);
});

test('timeseries: a point holds the data of the range only, also when its step is wider than the range (one quantile over a window)', async () => {
  // the dashboard asks for one point over a window as a step of `to` (its first point starts at 0)
  const endpoint = ENDPOINTS[2]!;
  const halves = [0, SECONDS / 2].map((first) => sent.get(endpoint)!.slice(first, first + SECONDS / 2).flat());
  const maxOf = (txs: Tx[]): number => Math.max(...txs.map((t) => t.response));
  // the later half's window must not see the earlier half, whose max differs
  assert.notEqual(maxOf(halves[0]!), maxOf(halves[1]!));
  const from = T0 + (SECONDS / 2) * 1000;
  const to = T0 + SECONDS * 1000 + 1000;
  const one = (await get(`${collector.url}/api/timeseries?service=${SERVICE}&endpoint=${encodeURIComponent(endpoint)}&metric=response&q=1&step=${to}&from=${from}&to=${to}`)).body;
  assert.deepEqual(one.points, [[0, maxOf(halves[1]!)]]);
  // and a window after the data has none, rather than the data before it
  const later = (await get(`${collector.url}/api/timeseries?service=${SERVICE}&metric=response&step=${to + 60_000}&from=${to}&to=${to + 60_000}`)).body;
  assert.deepEqual(later.points, [[0, null]]);
});

test('traces: slowest and recent order, filters, limit; a trace comes back unchanged', async () => {
  const base = `${collector.url}/api/traces?service=${SERVICE}&${range}`;
  const slowest = (await get(`${base}&sort=slowest&limit=5`)).body;
  const bySlowest = [...traces].sort((a, b) => b.duration - a.duration);
  assert.deepEqual(slowest.map((t: any) => t.traceId), bySlowest.slice(0, 5).map((t) => t.traceId));
  const t0 = bySlowest[0]!;
  assert.deepEqual(slowest[0], {
    traceId: t0.traceId,
    endpoint: t0.endpoint,
    start: t0.start,
    status: t0.status,
    aborted: false,
    response: t0.response,
    duration: t0.duration,
    cpu: t0.cpu,
    external: t0.external,
    blocking: t0.blocking,
  });

  const recent = (await get(`${base}&sort=recent&limit=1000`)).body;
  assert.deepEqual(recent.map((t: any) => t.traceId), [...traces].sort((a, b) => b.start - a.start).map((t) => t.traceId));
  assert.equal((await get(base)).body.length, 20, 'limit defaults to 20');

  const endpoint = ENDPOINTS[2]!;
  const one = (await get(`${base}&endpoint=${encodeURIComponent(endpoint)}&limit=1000`)).body;
  assert.deepEqual(one.map((t: any) => t.traceId).sort(), traces.filter((t) => t.endpoint === endpoint).map((t) => t.traceId).sort());

  for (const t of [traces[0]!, traces[traces.length - 1]!]) {
    const { status, body } = await get(`${collector.url}/api/traces/${t.traceId}`);
    assert.equal(status, 200);
    assert.deepEqual(asSent(body), t);
  }
  const missing = await get(`${collector.url}/api/traces/ffffffffffffffffffff`);
  assert.equal(missing.status, 404);
  assert.match(missing.body.error, /no trace ffffffffffffffffffff/);
});

test('sketches whose highest key is 0 (values just under 1 ms) merge without losing counts', async () => {
  // DDSketch's own merge loses the 1.0 here (see mergeWire in packages/protocol/src/sketch.ts); the stored row must not
  const second = T0 + 30_000;
  const tx = (v: number): Tx => ({ response: v, duration: v, cpu: v, external: v, blocking: v, error: false });
  for (const values of [[0.5, 0.6], [0.9, 1.0], [0.7]]) {
    const answer = await sendBatch(collector.url, batch('keys', 'k-1', [interval('GET /k', second, values.map(tx))], [], second + 1000));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  }
  const [row] = (await get(`${collector.url}/api/endpoints?service=keys&${range}`)).body;
  assert.equal(row.count, 5);
  assert.equal(row.response.max, 1);
  const all = [0.5, 0.6, 0.9, 1.0, 0.7];
  for (const [key, q] of [['p50', 0.5], ['p99', 0.99]] as const) {
    const exact = exactQuantile(all, q);
    assert.ok(Math.abs(row.response[key] - exact) <= 0.02 * exact, `${key} ${row.response[key]} vs exact ${exact}`);
  }
});
