/**
 * `GET /metrics` read by a real Prometheus (Debian's package, scraping the collector every
 * second): an app under the agent whose endpoint answers after timers of known length (10, 20, ...
 * 100 ms, in turn: its p95 response is 100 ms and a little by construction) and fails 10 requests
 * of 210. PromQL's answers are the query API's: counters exact, the p95 the query API's over the
 * same data within the sketch's relative accuracy, the truth within it and the agent's few ms.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { RELATIVE_ACCURACY, type EndpointSummary, type LoopSummary } from '@loopscope/protocol';
import { PrometheusCounters, renderMetrics } from '../src/prometheus.js';
import { batch, get, interval, random, randomTx, startTestCollector, until, type TestCollector } from './helpers.js';
import { drive, promQuery, startPrometheus, startTimedApp, type TimedApp, type Tool } from './prometheus-tools.js';

const SERVICE = 'prom-app';
const ENDPOINT = 'GET /work';
const REQUESTS = 200;
const FAILED = 10;
/** The timer of request i: 10, 20, ... 100 ms in turn. */
const delayOf = (i: number): number => 10 * ((i % 10) + 1);
/** What a request costs beyond its timer here: Node's and the agent's work, a loop iteration (ms). */
const OVERHEAD_MS = 8;

const READ = 'read-prometheus-61d2';
const AUTH = { authorization: `Bearer ${READ}` };
let collector: TestCollector;
let app: TimedApp;
let prometheus: Tool;

before(async () => {
  // a collector whose /metrics needs its read token, as on a network (docs/collector.md#access)
  collector = await startTestCollector({ readToken: READ });
  app = await startTimedApp(collector.url, SERVICE);
  prometheus = await startPrometheus(new URL(collector.url).host, READ);
  const statuses = await drive(app.url, REQUESTS, 10, (i) => `/work?ms=${delayOf(i)}`);
  assert.ok(statuses.every((s) => s === 200));
  const failed = await drive(app.url, FAILED, 5, () => '/work?ms=5&fail=1');
  assert.ok(failed.every((s) => s === 500));
  await until(
    'every request at the collector',
    async () => {
      const rows = (await get(`${collector.url}/api/endpoints?service=${SERVICE}`, AUTH)).body as EndpointSummary[];
      return rows.find((r) => r.endpoint === ENDPOINT)?.count === REQUESTS + FAILED ? true : undefined;
    },
    () => 'the agent did not ship them',
  );
});
after(async () => {
  await prometheus?.stop();
  await app?.stop();
  await collector?.close();
});

const labels = `service="${SERVICE}",endpoint="${ENDPOINT}"`;

/** The PromQL query's single value, once Prometheus has a sample that satisfies `ok`. */
async function scalar(query: string, ok: (v: number) => boolean = () => true): Promise<number> {
  let last: unknown;
  return until(
    `PromQL ${query}`,
    async () => {
      const result = await promQuery(prometheus.url, query);
      last = result;
      return result.length === 1 && ok(result[0]!.value) ? result[0]!.value : undefined;
    },
    () => `last answer ${JSON.stringify(last)}; Prometheus said:\n${prometheus.log().slice(-2000)}`,
  );
}

test('Prometheus scrapes the exposition without an error', async () => {
  assert.equal(await scalar('up{job="loopscope"}', (v) => v === 1), 1);
});

test('the counters are the counts: requests and errors per service and endpoint', async () => {
  assert.equal(await scalar(`loopscope_requests_total{${labels}}`, (v) => v === REQUESTS + FAILED), REQUESTS + FAILED);
  assert.equal(await scalar(`loopscope_errors_total{${labels}}`), FAILED);
  assert.equal(await scalar(`loopscope_response_seconds_count{${labels}}`), REQUESTS + FAILED);
});

test('the p95 response in PromQL is the query API\'s, and the truth\'s', async () => {
  // every request happened in the last minute: the window of the quantiles holds them all
  const promP95 = (await scalar(`loopscope_response_seconds{${labels},quantile="0.95"}`)) * 1000;
  const rows = (await get(`${collector.url}/api/endpoints?service=${SERVICE}&from=${Date.now() - 55_000}`, AUTH)).body as EndpointSummary[];
  const apiP95 = rows.find((r) => r.endpoint === ENDPOINT)!.response.p95;
  assert.ok(Math.abs(promP95 - apiP95) <= apiP95 * RELATIVE_ACCURACY, `PromQL ${promP95} ms, the API ${apiP95} ms`);
  // the truth: 10 % of the requests waited 100 ms, so the p95 is one of them
  assert.ok(apiP95 >= 100 * (1 - RELATIVE_ACCURACY) && apiP95 <= (100 + OVERHEAD_MS) * (1 + RELATIVE_ACCURACY), `p95 response ${apiP95} ms for a truth of 100 ms and a little`);
  // and the other numbers, as the API has them
  for (const metric of ['duration', 'cpu', 'external', 'blocking'] as const) {
    const api = rows.find((r) => r.endpoint === ENDPOINT)![metric]!.p50;
    const prom = (await scalar(`loopscope_${metric}_seconds{${labels},quantile="0.5"}`)) * 1000;
    assert.ok(Math.abs(prom - api) <= Math.max(api * RELATIVE_ACCURACY, 0.001), `${metric}: PromQL ${prom} ms, the API ${api} ms`);
  }
});

test('the service\'s event loop: delay quantiles, utilization, GC time and long tasks', async () => {
  const delay = await scalar(`loopscope_loop_delay_seconds{service="${SERVICE}",quantile="0.99"}`);
  const loop = (await get(`${collector.url}/api/loop?service=${SERVICE}&from=${Date.now() - 60_000}`, AUTH)).body as LoopSummary;
  assert.ok(delay >= 0 && delay * 1000 <= Math.max(loop.delay.max, 1) * (1 + RELATIVE_ACCURACY), `p99 loop delay ${delay} s, within the max the API has (${loop.delay.max} ms)`);
  const utilization = await scalar(`loopscope_loop_utilization_ratio{service="${SERVICE}"}`);
  assert.ok(utilization > 0 && utilization < 1, `utilization ${utilization}`);
  assert.ok((await scalar(`loopscope_gc_seconds_total{service="${SERVICE}"}`)) >= 0);
  // the app's long tasks (its start, a stall of this machine), as the API counts them since it started
  const since = (await get(`${collector.url}/api/loop?service=${SERVICE}&from=0`, AUTH)).body as LoopSummary;
  assert.equal(await scalar(`loopscope_long_tasks_total{service="${SERVICE}"}`), since.longTaskCount);
});

test('series are bounded: past the endpoint cap of a service, the rest is counted as one', async () => {
  const counters = new PrometheusCounters();
  const rand = random(7);
  const intervals = Array.from({ length: 1005 }, (_, i) => interval(`GET /e${i}`, Date.now(), [randomTx(rand)]));
  counters.observe(batch('wide', 'wide:1', intervals.slice(0, 500)));
  counters.observe(batch('wide', 'wide:1', intervals.slice(500)));
  const text = await renderMetrics(counters, collector.storage, Date.now(), 60_000);
  const requestLines = text.split('\n').filter((l) => l.startsWith('loopscope_requests_total{service="wide"'));
  assert.equal(requestLines.length, 1001, 'a thousand endpoints and the overflow');
  assert.ok(requestLines.some((l) => l === 'loopscope_requests_total{service="wide",endpoint="OTHER (endpoint limit reached)"} 5'), requestLines.slice(-3).join('\n'));
});

test('label values are escaped as the exposition format wants: quotes, backslashes, newlines', async () => {
  const counters = new PrometheusCounters();
  const name = 'GET /a"b\\c\nd';
  counters.observe(batch('odd"svc', 'odd:1', [interval(name, Date.now(), [randomTx(random(1), 0)])]));
  const text = await renderMetrics(counters, collector.storage, Date.now(), 60_000);
  assert.ok(text.includes('loopscope_requests_total{service="odd\\"svc",endpoint="GET /a\\"b\\\\c\\nd"} 1'), text.split('\n').filter((l) => l.includes('odd')).join('\n'));
});

test('every panel of the Grafana dashboard (docs/) is a query Prometheus answers with data', async () => {
  const dashboard = JSON.parse(readFileSync(new URL('../../../../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  assert.ok(dashboard.panels.length >= 8);
  // rates need traffic and two samples: requests while Prometheus scrapes a few times
  const flow = { on: true };
  const trickle = (async () => {
    for (let i = 0; flow.on; i++) await drive(app.url, 1, 1, () => (i % 5 === 0 ? '/work?ms=1&fail=1' : '/work?ms=1'));
  })();
  const before = await scalar(`loopscope_requests_total{${labels}}`);
  await scalar(`loopscope_requests_total{${labels}}`, (n) => n > before + 10);
  await scalar(`count_over_time(loopscope_requests_total{${labels}}[30s])`, (n) => n >= 3);
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      const query = expr.replaceAll('$service', SERVICE).replaceAll('$endpoint', ENDPOINT).replaceAll('$__rate_interval', '30s');
      const result = await promQuery(prometheus.url, query);
      // long tasks and GC: a series of 0 is data too
      assert.ok(result.length > 0, `${panel.title}: ${query} answered no series`);
      assert.ok(result.every((r) => Number.isFinite(r.value)), `${panel.title}: ${query} → ${JSON.stringify(result)}`);
    }
  }
  flow.on = false;
  await trickle;
});
