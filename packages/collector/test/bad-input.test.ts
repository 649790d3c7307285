/**
 * Every kind of bad request gets the right 4xx and a JSON error naming the problem; the collector
 * stays up, and the good batches sent in between are all stored.
 */
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { after, before, test } from 'node:test';
import type { WireBatch } from '@loopscope/protocol';
import { DEFAULT_QUOTAS } from '../src/index.js';
import { batch, get, interval, loopSample, post, random, randomTx, sendBatch, startTestCollector, trace, type TestCollector } from './helpers.js';

const TOKEN = 's3cret-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_TYPE = { 'content-type': 'application/json', ...AUTH };

let collector: TestCollector;
let goodSent = 0;
const rand = random(7);
const now = Date.now();

function good(): WireBatch {
  const tx = randomTx(rand, 0);
  return batch('bad-input', 'i-1', [interval('GET /ok', now - 2000, [tx, randomTx(rand, 0)])], [trace('bad-input', 'GET /ok', now - 2000, tx)]);
}

/** A good batch with one thing changed. */
function broken(change: (b: any) => void): string {
  const b = good();
  change(b);
  return JSON.stringify(b);
}

before(async () => {
  collector = await startTestCollector({ token: TOKEN });
});
after(() => collector.close());

const cases: Array<{ name: string; send: () => ReturnType<typeof post>; status: number; error: RegExp }> = [
  { name: 'malformed JSON', send: () => post(`${collector.url}/v1/ingest`, '{"v": 1, "batchId": ', JSON_TYPE), status: 400, error: /^malformed JSON/ },
  { name: 'not an object', send: () => post(`${collector.url}/v1/ingest`, '[1, 2]', JSON_TYPE), status: 400, error: /must be a JSON object/ },
  { name: 'empty body', send: () => post(`${collector.url}/v1/ingest`, '', JSON_TYPE), status: 400, error: /empty body/ },
  {
    name: 'unknown version',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.v = 2)), JSON_TYPE),
    status: 400,
    error: /^unsupported wire version 2; this collector speaks version 1$/,
  },
  { name: 'no version', send: () => post(`${collector.url}/v1/ingest`, broken((b) => delete b.v), JSON_TYPE), status: 400, error: /no wire version/ },
  {
    name: 'wrong type',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.intervals[0].count = '2')), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/count must be integer$/,
  },
  {
    name: 'huge number',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.intervals[0].cpu.max = 1e300)), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/cpu\/max must be <= 604800000$/,
  },
  {
    name: 'number beyond float64 (1e400 parses as Infinity)',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.intervals[0].cpu.max = 1)).replace('"max":1,', '"max":1e400,'), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/cpu\/max must be number$/,
  },
  {
    name: 'negative loop delay',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.loop = { ...loopSample(Date.now() - 1000), busyMs: -1 })), JSON_TYPE),
    status: 400,
    error: /^\/loop\/busyMs must be >= 0$/,
  },
  {
    name: 'negative sketch count',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.intervals[0].duration.n = -1)), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/duration\/n must be >= 0$/,
  },
  {
    name: 'unknown property',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.intervals[0].p99 = 3)), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/p99 is not a property of the wire format$/,
  },
  {
    name: 'bad batchId',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.batchId = 'x y')), JSON_TYPE),
    status: 400,
    error: /^\/batchId must match pattern/,
  },
  {
    name: 'sketch bins that do not add up to n',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => b.intervals[0].response.bins.push(3)), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/response: bins and zero hold 5 values but n is 2$/,
  },
  {
    name: 'sketch n different from count',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.intervals[0].count = 3)), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/response\/n is 2 but count is 3/,
  },
  {
    name: 'timestamp two days ahead',
    send: () => post(`${collector.url}/v1/ingest`, broken((b) => (b.intervals[0].start = now + 2 * 86_400_000)), JSON_TYPE),
    status: 400,
    error: /^\/intervals\/0\/start \d+ is more than a day ahead/,
  },
  {
    name: 'a 10 MB body',
    send: () => post(`${collector.url}/v1/ingest`, `{"v":1,"pad":"${'x'.repeat(10 * 1024 * 1024)}"}`, JSON_TYPE),
    status: 413,
    error: /body is larger than 5242880 bytes/,
  },
  {
    // found by the fuzzer (fuzz.test.ts): once stored, it made GET /api/servicemap a 500 over any range that held its minute
    name: "a call whose duration sketch's bins do not add up to its n",
    send: () =>
      post(
        `${collector.url}/v1/ingest`,
        broken((b) => (b.calls = [{ start: now - 2000, ms: 1000, kind: 'db', target: '127.0.0.1:5432/shop', count: 1, errors: 0, duration: { ...b.intervals[0].duration, n: 1 } }])),
        JSON_TYPE,
      ),
    status: 400,
    error: /^\/calls\/0\/duration: bins and zero hold 2 values but n is 1$/,
  },
  {
    name: 'a gzip bomb (64 KB that inflate to 64 MB)',
    send: () => post(`${collector.url}/v1/ingest`, zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, ' ')), { ...JSON_TYPE, 'content-encoding': 'gzip' }),
    status: 413,
    error: /decompresses to more than 20971520 bytes/,
  },
  {
    name: 'gzip that is not gzip',
    send: () => post(`${collector.url}/v1/ingest`, JSON.stringify(good()), { ...JSON_TYPE, 'content-encoding': 'gzip' }),
    status: 400,
    error: /not valid gzip/,
  },
  {
    name: 'an unsupported encoding',
    send: () => post(`${collector.url}/v1/ingest`, JSON.stringify(good()), { ...JSON_TYPE, 'content-encoding': 'br' }),
    status: 415,
    error: /unsupported Content-Encoding "br"/,
  },
  {
    name: 'wrong content type',
    send: () => post(`${collector.url}/v1/ingest`, JSON.stringify(good()), { 'content-type': 'text/plain', ...AUTH }),
    status: 415,
    error: /Content-Type must be application\/json/,
  },
  {
    name: 'no token',
    send: () => post(`${collector.url}/v1/ingest`, JSON.stringify(good()), { 'content-type': 'application/json' }),
    status: 401,
    error: /ingest token: send Authorization: Bearer <ingest token>/,
  },
  {
    name: 'wrong token',
    send: () => post(`${collector.url}/v1/ingest`, JSON.stringify(good()), { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}x` }),
    status: 401,
    error: /ingest token: send Authorization: Bearer <ingest token>/,
  },
];

/**
 * A record that is not valid (a trace, a long task, a context loss) is left out of its batch; the
 * rest of the batch is stored, and the answer says what was left out (docs/protocol.md). `kept`:
 * the batch's traces still stored.
 */
const partialCases: Array<{ name: string; body: () => string; rejected: { traces: number; longTasks: number; contextLoss: number }; kept: number; message: RegExp }> = [
  { name: 'huge duration', body: () => broken((b) => (b.traces[0].duration = 1e15)), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/duration must be <= 604800000$/ },
  { name: 'a long task with an endpoint but no traceId', body: () => broken((b) => (b.loop = { ...loopSample(Date.now() - 1000), longTasks: [{ at: Date.now(), ms: 80, endpoint: 'GET /x', function: 'f', blocked: [] }] })), rejected: { traces: 0, longTasks: 1, contextLoss: 0 }, kept: 1, message: /^\/loop\/longTasks\/0: endpoint and traceId come together/ },
  { name: 'negative duration', body: () => broken((b) => (b.traces[0].duration = -5)), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/duration must be >= 0$/ },
  { name: 'unknown segment kind', body: () => broken((b) => (b.traces[0].segments[1].kind = 'grpc')), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/segments\/1\/kind must be one of "http", "db", "cache", "queue", "fs", "dns", "other"$/ },
  { name: 'segment statement over its limit', body: () => broken((b) => (b.traces[0].segments[0].statement = 'x'.repeat(2049))), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/segments\/0\/statement must not have more than 2048 characters$/ },
  { name: 'segment ending before it starts', body: () => broken((b) => (b.traces[0].segments[1].end = 0.05)), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/segments\/1\/end 0.05 is before its start 0.1$/ },
  { name: 'a wait ending before it starts', body: () => broken((b) => (b.traces[0].waits[1] = [5, 4.5])), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/waits\/1 ends at 4.5, before its start 5$/ },
  { name: 'more slices than the timeline limit', body: () => broken((b) => (b.traces[0].slices = Array.from({ length: 201 }, (_, i) => [i, i + 0.5]))), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/slices must not have more than 200 items$/ },
  { name: 'critical path through an unknown segment', body: () => broken((b) => (b.traces[0].criticalPath = [0, 9])), rejected: { traces: 1, longTasks: 0, contextLoss: 0 }, kept: 0, message: /^\/traces\/0\/criticalPath\/1 is segment 9, which is not in segments$/ },
  {
    name: 'an error message over its limit (a page of text handed to next())',
    body: () => broken((b) => (b.traces[0].errorMessage = 'x'.repeat(5000))),
    rejected: { traces: 1, longTasks: 0, contextLoss: 0 },
    kept: 0,
    message: /^\/traces\/0\/errorMessage must not have more than 2048 characters$/,
  },
  {
    name: 'one bad trace among good ones',
    body: () =>
      broken((b) => {
        const tx = randomTx(rand, 0);
        b.traces.unshift({ ...trace('bad-input', 'GET /ok', now - 2000, tx), duration: -1 });
        b.traces.push(trace('bad-input', 'GET /ok', now - 1500, tx));
      }),
    rejected: { traces: 1, longTasks: 0, contextLoss: 0 },
    kept: 2,
    message: /^\/traces\/0\/duration must be >= 0$/,
  },
  {
    name: "a trace of another service than the batch's",
    body: () => broken((b) => (b.traces[0].service = 'elsewhere')),
    rejected: { traces: 1, longTasks: 0, contextLoss: 0 },
    kept: 0,
    message: /^\/traces\/0\/service "elsewhere" is not the batch's service "bad-input"$/,
  },
  {
    name: 'a context loss whose site is over its limit',
    body: () => broken((b) => (b.contextLoss = [{ start: now - 2000, module: 'lib', site: `/${'d/'.repeat(600)}x.js:1:1`, function: 'f', count: 1, lostMs: 2 }])),
    rejected: { traces: 0, longTasks: 0, contextLoss: 1 },
    kept: 1,
    message: /^\/contextLoss\/0\/site must not have more than 1024 characters$/,
  },
];

for (const c of cases) {
  test(`${c.name}: ${c.status} with the problem named; a good batch right after is stored`, async () => {
    const answer = await c.send();
    assert.equal(answer.status, c.status, JSON.stringify(answer.body));
    assert.deepEqual(Object.keys(answer.body), ['error']);
    assert.match(answer.body.error, c.error);

    const ok = await sendBatch(collector.url, good(), AUTH);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    goodSent++;
  });
}

let partialSent = 0;
let partialTraces = 0;
const rejectedTotal = { traces: 0, longTasks: 0, contextLoss: 0 };
for (const c of partialCases) {
  test(`${c.name}: left out, the rest of the batch stored, and the answer says what was left out`, async () => {
    const answer = await post(`${collector.url}/v1/ingest`, c.body(), JSON_TYPE);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const { message, ...counts } = answer.body.rejected;
    assert.deepEqual(counts, c.rejected);
    assert.match(message, c.message);
    partialSent++;
    partialTraces += c.kept;
    for (const k of ['traces', 'longTasks', 'contextLoss'] as const) rejectedTotal[k] += c.rejected[k];
  });
}

test('gzip-compressed good batches are accepted', async () => {
  const ok = await post(`${collector.url}/v1/ingest`, zlib.gzipSync(JSON.stringify(good())), { ...JSON_TYPE, 'content-encoding': 'gzip' });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  goodSent++;
});

test('after all that: the collector is up, every good batch is stored, the valid part of each partly valid one, and nothing else; the query API needs no token', async () => {
  assert.deepEqual((await get(`${collector.url}/api/health`)).body, { status: 'ok', version: '0.1.0', storage: 'sqlite', otlpIn: { waiting: 0, expired: 0 }, diskFull: { full: false, since: null, episodes: 0, refusedBatches: 0, failedPrunes: 0, lastError: null }, limits: { ...DEFAULT_QUOTAS, over: {} } });
  const [row] = (await get(`${collector.url}/api/endpoints?service=bad-input`)).body;
  assert.equal(row.endpoint, 'GET /ok');
  assert.equal(row.count, (goodSent + partialSent) * 2);
  assert.equal((await get(`${collector.url}/api/traces?service=bad-input&limit=1000`)).body.length, goodSent + partialTraces);
  // no stored batch breaks a query of the data around it (the calls of the map, above)
  assert.equal((await get(`${collector.url}/api/servicemap`)).status, 200);
  // what was left out, counted for Prometheus
  const metrics = await (await fetch(`${collector.url}/metrics`)).text();
  for (const [kind, n] of Object.entries(rejectedTotal)) assert.match(metrics, new RegExp(`^loopscope_rejected_records_total\\{service="bad-input",kind="${kind}"\\} ${n}$`, 'm'));
});

test('query parameters: missing service, bad numbers, inverted range, too many points, q out of range, unknown metric', async () => {
  const bad: Array<[string, RegExp]> = [
    ['/api/endpoints', /^service is required/],
    ['/api/traces', /^service is required/],
    ['/api/loop', /^service is required/],
    ['/api/timeseries?service=s', /^metric is required/],
    ['/api/timeseries?service=s&metric=p95', /^unknown metric "p95"/],
    ['/api/timeseries?service=s&endpoint=GET%20%2Fa&metric=loop_delay', /^loop_delay is the event loop's, a service's: leave out endpoint/],
    ['/api/endpoints?service=s&from=yesterday', /^from must be a timestamp in ms since the epoch, got "yesterday"/],
    ['/api/endpoints?service=s&from=2000&to=1000', /^to \(1000\) must be after from \(2000\)/],
    ['/api/endpoints?service=s&from=1&from=2', /^from is given more than once/],
    ['/api/timeseries?service=s&metric=cpu&q=0', /^q must be a quantile in \(0, 1\]/],
    ['/api/timeseries?service=s&metric=cpu&q=1.5', /^q must be a quantile in \(0, 1\]/],
    ['/api/timeseries?service=s&metric=cpu&step=500', /^step must be at least 1000 ms/],
    ['/api/timeseries?service=s&metric=cpu&step=1000&from=0&to=86400000', /gives 86401 points, more than 1500; ask for a step of at least 58000 ms/],
    ['/api/traces?service=s&sort=fastest', /^sort must be slowest or recent/],
    ['/api/traces?service=s&by=cpu', /^by must be duration or response/],
    ['/api/traces?service=s&limit=5000', /^limit must be from 1 to 1000/],
    ['/api/traces/NOT-A-TRACE/holders', /^traceId must be 16 to 64 lowercase hex digits, got "NOT-A-TRACE"/],
    ['/api/traces/00000000000000000000000000000001/holders?limit=0', /^limit must be from 1 to 20, got 0/],
    ['/api/traces/00000000000000000000000000000001/holders?limit=many', /^limit must be a whole number from 1 to 20, got "many"/],
    ['/api/nowhere', /^no route GET \/api\/nowhere/],
  ];
  for (const [path, error] of bad) {
    const { status, body } = await get(`${collector.url}${path}`);
    assert.equal(status, path === '/api/nowhere' ? 404 : 400, path);
    assert.match(body.error, error, path);
  }
  const series = (await get(`${collector.url}/api/timeseries?service=s&metric=cpu`)).body;
  assert.equal(series.step, 5000, 'a 15-minute default range gets 5 s steps (≤ 300 points)');
  assert.equal(series.q, 0.95);
  assert.ok(series.points.length >= 180 && series.points.length <= 181);
  // a service that sent no loop data: the documented shape (docs/collector.md), nothing measured
  assert.deepEqual((await get(`${collector.url}/api/loop?service=s`)).body, {
    delay: { p50: 0, p95: 0, p99: 0, max: 0, mean: 0 },
    utilization: 0,
    gcPauseMs: 0,
    gc: {},
    cpu: { user: 0, system: 0 },
    memory: { rss: 0, heapUsed: 0, heapTotal: 0 },
    longTasks: [],
    longTaskCount: 0,
    loopMs: 0,
  });
  assert.deepEqual((await get(`${collector.url}/api/loop?service=s&group=culprit`)).body.groups, [], 'grouped: no culprit');
  for (const [query, error] of [
    ['service=s&sort=slowest', /^sort must be recent or worst/],
    ['service=s&limit=0', /^limit must be from 1 to 1000/],
    ['service=s&group=function', /^group must be culprit, got "function"/],
    ['service=s&function=a&function=b', /^function is given more than once/],
  ] as const) {
    const { status, body } = await get(`${collector.url}/api/loop?${query}`);
    assert.equal(status, 400, query);
    assert.match(body.error, error, query);
  }
});
