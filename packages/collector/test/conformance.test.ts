/**
 * The storage conformance suite: the same batches go into collectors on SQLite (the embedded
 * default) and on ClickHouse (Debian's clickhouse-server, started by the test), and every query
 * API endpoint must give the same answer from both: counts exactly, times and quantiles to within
 * 0.001 ms (both merge the same sketches; only the order of float additions may differ).
 *
 * Three retentions make each resolution answer in turn: the default (a range of the last minutes
 * is read from the per-second rows), seconds kept 60 s (per-minute rows) and seconds and minutes
 * kept 60 s (per-hour rows); the time series at steps of 1 s, 10 s, 1 min and 1 h read every
 * rollup too. On ClickHouse with the default retention two collectors share one database: the
 * batches go to one, and the other must answer the same (a collector keeps nothing of its own).
 * ClickHouse is both one server and two servers, the shards of a cluster with Distributed tables
 * over them (docs/clickhouse.md): each must answer as SQLite does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { METRICS, SERIES_METRICS, addValue, isLoopSeries, newSketch, roundMs, toWire, type WireBatch, type WireLongTask, type WireSketch, type WireTrace } from '@loopscope/protocol';
import { openClickHouseStorage, type Retention } from '../src/index.js';
import { ClickHouseClient, parseClickHouseUrl } from '../src/storage/clickhouse/client.js';
import { AGG_SUMS } from '../src/storage/clickhouse/schema.js';
import { startClickHouse, startShardedClickHouse, type ClickHouse } from './clickhouse-tools.js';
import { batch, get, interval, loopSample, random, randomTx, sendBatch, startTestCollector, trace, type TestCollector, type Tx } from './helpers.js';

const MINUTE = 60_000;
const NOW = Date.now();
// the scenario's 40 s straddle a minute's start, ten minutes ago
const T0 = Math.floor((NOW - 10 * MINUTE) / MINUTE) * MINUTE - 20_000;
const SECONDS = 40;
const ENDPOINTS = ['GET /a', 'POST /b', 'GET /c/:id'];
const INSTANCES = ['web-1:1', 'web-2:2'];
const RANGE = `from=${T0 - MINUTE}&to=${NOW + 1000}`;
const rand = random(24);

/** What was sent, per endpoint of `shop`: the ground truth of the counts. */
const sent = new Map<string, { count: number; errors: number; aborted: number }>();
/** Requests that lost their context, per module: sent by `shop`. */
const lossSent = new Map<string, number>();
const batches: WireBatch[] = [];
const traceIds: string[] = [];

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

function scenario(): void {
  let span = 0;
  for (const instance of INSTANCES) {
    for (let b = 0; b < SECONDS / 10; b++) {
      const intervals = [];
      const traces: WireTrace[] = [];
      const longTasks: WireLongTask[] = [];
      const downstream: WireTrace[] = [];
      for (let s = b * 10; s < b * 10 + 10; s++) {
        const start = T0 + s * 1000;
        for (const endpoint of ENDPOINTS) {
          const txs: Tx[] = Array.from({ length: Math.floor(rand() * 6) }, () => randomTx(rand));
          if (txs.length === 0) continue;
          const aborted = rand() < 0.2 ? 1 : 0;
          // the external time by kind, every kind among them (the file system's and name resolution's too)
          const ext = txs.reduce((n, t) => n + t.external, 0);
          const externalByKind = { http: roundMs(ext * 0.5), db: roundMs(ext * 0.25), fs: roundMs(ext * 0.15), dns: roundMs(ext * 0.1) };
          intervals.push({ ...interval(endpoint, start, txs), externalByKind, ...(aborted ? { aborted } : {}) });
          const total = sent.get(endpoint) ?? { count: 0, errors: 0, aborted: 0 };
          sent.set(endpoint, { count: total.count + txs.length, errors: total.errors + txs.filter((t) => t.error).length, aborted: total.aborted + aborted });
          // the slowest of the second is traced; one in three calls the orders service
          const slowest = txs.reduce((a, c) => (c.duration > a.duration ? c : a));
          const t = trace('shop', endpoint, start + rand() * 900, slowest);
          t.spanId = hex(++span, 16);
          t.parentSpanId = null;
          if (aborted) t.aborted = true;
          // (as if drawn at random too: the critical path is summed over such traces)
          if (rand() < 0.7) t.sampledAtRandom = true;
          traces.push(t);
          traceIds.push(t.traceId);
          if (rand() < 0.33) {
            const callSpan = hex(++span, 16);
            t.segments.push({ id: 2, parentId: null, spanId: callSpan, name: 'GET 127.0.0.1:7001/orders/:id', kind: 'http', start: 0.2, end: 0.2 + slowest.external / 2, onCriticalPath: false });
            const part = trace('orders', 'GET /orders/:id', t.start + 0.3, randomTx(rand, 0));
            downstream.push({ ...part, traceId: t.traceId, spanId: hex(++span, 16), parentSpanId: callSpan });
          }
          if (rand() < 0.15) {
            longTasks.push({
              at: t.start + 0.5,
              ms: roundMs(50 + rand() * 200),
              endpoint,
              traceId: t.traceId,
              function: `render${endpoint.replace(/\W/g, '')}`,
              // (some without a location, some mapped from a compiled file; a name in the blocked
              // list that looks like its JSON)
              ...(rand() < 0.3 ? {} : { location: 'app.ts:9:5', ...(rand() < 0.5 ? { compiledLocation: 'dist/app.js:6:21' } : {}) }),
              stack: ['render (app.js:9:5)', 'handle (app.js:20:1)'],
              blocked: [
                { endpoint: ENDPOINTS[0]!, count: 2, ms: 31.5 },
                { endpoint: 'GET /x"count":7}{"ms":1e3', count: 1, ms: roundMs(rand() * 10) },
              ],
            });
          }
        }
      }
      const start = T0 + b * 10_000;
      const shop = batch('shop', instance, intervals, traces, start + 10_000);
      const delay = newSketch();
      for (let i = 0; i < 50; i++) addValue(delay, rand() * 40);
      shop.loop = {
        start,
        ms: 10_000,
        delay: toWire(delay),
        busyMs: roundMs(rand() * 5000),
        idleMs: roundMs(5000 + rand() * 5000),
        gc: { minor: { count: 3, ms: 1.25 }, major: { count: b % 2, ms: roundMs(rand() * 20) }, ...(b === 1 ? { weird: { count: 1, ms: 0.5 } } : {}) },
        cpu: { user: roundMs(rand() * 3000), system: roundMs(rand() * 500) },
        memory: { rss: 100_000_000 + b * 1000, heapUsed: 40_000_000 - b * 100, heapTotal: 60_000_000 },
        longTasks,
        // what the agent cost: its cpu figure now and then, none from the first process
        ...(instance === 'web-1:1' ? {} : { agent: { rss: 20_000_000 + b * 1000, ...(b % 3 === 0 ? {} : { cpu: { ms: roundMs(b * 1.5), processMs: roundMs(500 + b * 10), transactions: 100 + b } }) } }),
      };
      const duration = (values: number[]) => {
        const sk = newSketch();
        for (const v of values) addValue(sk, v);
        return toWire(sk);
      };
      shop.calls = [
        { start, ms: 10_000, kind: 'http', target: '127.0.0.1:7001', count: 7 + b, errors: b % 2, duration: duration([3, 5, 8, 13 + b]) },
        { start, ms: 10_000, kind: 'db', target: '127.0.0.1:5432/shop', count: 20, errors: 0, duration: duration([0.5, 1, 2]) },
      ];
      // where requests lost their context: a library's connection in every batch, the app's timer in every other
      shop.contextLoss = [
        { start, module: 'lossy-client', site: '/srv/node_modules/lossy-client/index.js:20:24', function: 'Socket.answers', count: 3 + b, lostMs: roundMs(5 * (3 + b) + rand()) },
        ...(b % 2 === 0 ? [{ start, module: 'app', site: 'file:///srv/app/batch.mjs:30:7', function: '', count: 1, lostMs: 0.5 }] : []),
      ];
      for (const l of shop.contextLoss) lossSent.set(l.module, (lossSent.get(l.module) ?? 0) + l.count);
      // values its agent cut to the wire format's limits, a count that grows
      shop.dropped.cut = 2 * b;
      batches.push(shop);
      if (downstream.length > 0) batches.push(batch('orders', `orders-${instance}`, [interval('GET /orders/:id', start, downstream.map(() => randomTx(rand, 0)))], downstream, start + 10_000));
    }
  }
  // a proxy in front: it knows response, duration and errors, never cpu, external or blocking
  for (let s = 0; s < SECONDS; s += 5) {
    const txs = Array.from({ length: 4 }, () => randomTx(rand));
    const iv = interval('GET /a', T0 + s * 1000, txs);
    const b = batch('edge', 'proxy-1', [{ ...iv, cpu: null, external: null, blocking: null }], [], T0 + s * 1000 + 1000);
    b.agent = { name: 'loopscope-proxy', version: '1.0.0' };
    batches.push(b);
  }
  // a trace whose parent part never arrives (shown as an orphan), and one of 101 parts (one refused)
  const orphan = trace('orders', 'GET /orders/:id', T0 + 5000, randomTx(rand, 0));
  orphan.spanId = hex(++span, 16);
  orphan.parentSpanId = hex(++span, 16);
  traceIds.push(orphan.traceId);
  const root = trace('fan', 'GET /fan', T0 + 6000, randomTx(rand, 0));
  root.spanId = hex(++span, 16);
  root.parentSpanId = null;
  traceIds.push(root.traceId);
  const children = Array.from({ length: 100 }, (_, i) => ({ ...trace('fan', 'GET /leaf', T0 + 6001 + i, randomTx(rand, 0)), traceId: root.traceId, spanId: hex(++span, 16), parentSpanId: root.spanId }));
  batches.push(batch('orders', 'orders-x', [], [orphan], T0 + 7000));
  batches.push(batch('fan', 'fan-1', [interval('GET /fan', T0 + 6000, [randomTx(rand, 0)])], [root, ...children], T0 + 7000));
  // a job's calls over the last three hours: its service map reads the calls' hour rollup
  for (let start = CALLS_FROM; start < NOW - MINUTE; start += 17 * MINUTE) batches.push(callsBatch('cron', start));
}

/** The service map over the last three hours (whole hours from the calls' rollup, the edges from their minutes). */
const CALLS_FROM = NOW - 3 * 3_600_000;
const CALLS_MAP = `/api/servicemap?from=${CALLS_FROM}&to=${NOW + 1000}`;

/** A batch of `service` at `start` whose process called two targets. */
function callsBatch(service: string, start: number): WireBatch {
  const b = batch(service, `${service}-1`, [interval('GET /job', start, [randomTx(rand)])], [], start + 10_000);
  const duration = (n: number): WireSketch => {
    const sk = newSketch();
    for (let i = 0; i < n; i++) addValue(sk, roundMs(1 + rand() * 50));
    return toWire(sk);
  };
  b.calls = [
    { start, ms: 10_000, kind: 'http', target: '127.0.0.1:7001', count: 5, errors: rand() < 0.3 ? 1 : 0, duration: duration(5) },
    { start, ms: 10_000, kind: 'db', target: '127.0.0.1:5432/jobs', count: 9, errors: 0, duration: duration(9) },
  ];
  return b;
}
scenario();

interface Pair {
  name: string;
  retention: Partial<Retention>;
}
const PAIRS: Pair[] = [
  { name: 'default retention (per-second rows)', retention: {} },
  { name: 'seconds kept 60 s (per-minute rows)', retention: { seconds: MINUTE } },
  { name: 'seconds and minutes kept 60 s (per-hour rows)', retention: { seconds: MINUTE, minutes: MINUTE } },
];

let clickhouse: ClickHouse;
let sharded: ClickHouse;
const collectors: TestCollector[] = [];

before(async () => {
  clickhouse = await startClickHouse();
  sharded = await startShardedClickHouse();
});
after(async () => {
  for (const c of collectors) await c.close();
  await clickhouse?.stop();
  await sharded?.stop();
});

/**
 * The request metrics' rollups as a collector before agg_arrays_* made them, a merge state per
 * column, in their place; `without`: counted columns the collector had not yet.
 */
async function legacyRollups(db: ClickHouseClient, without: string[] = []): Promise<void> {
  const columns: Array<[string, string, string]> = [
    ...AGG_SUMS.filter((c) => !without.includes(c)).map((c): [string, string, string] => [c, 'sum', ['count', 'errors', 'aborted'].includes(c) ? 'UInt64' : 'Float64']),
    ...METRICS.flatMap((m): Array<[string, string, string]> => [[`${m}_n`, 'sum', 'UInt64'], [`${m}_sum`, 'sum', 'Float64'], [`${m}_min`, 'min', 'Float64'], [`${m}_max`, 'max', 'Float64'], [`${m}_zero`, 'sum', 'UInt64']]),
  ];
  for (const [name, seconds] of [['minute', 60], ['hour', 3600]] as const) {
    for (const table of [`agg_arrays_${name}_mv`, `agg_arrays_${name}`]) await db.exec(`DROP TABLE ${table}`);
    await db.exec(
      `CREATE TABLE agg_${name} (service String, endpoint String, t DateTime, ${columns.map(([c, f, type]) => `${c} AggregateFunction(${f}, ${type})`).join(', ')}) ` +
        'ENGINE = AggregatingMergeTree PARTITION BY toYYYYMMDD(t) ORDER BY (service, endpoint, t)',
    );
    await db.exec(
      `CREATE MATERIALIZED VIEW agg_${name}_mv TO agg_${name} AS SELECT service, endpoint, toDateTime(intDiv(toUInt32(t), ${seconds}) * ${seconds}) AS t, ` +
        `${columns.map(([c, f]) => `${f}State(${c}) AS ${c}`).join(', ')} FROM agg_second GROUP BY service, endpoint, t`,
    );
  }
}

/**
 * A database a collector made, altered by `makeOlder` into what an older collector left, then given
 * a job's requests and calls over the last three hours (SQLite's reference too) and opened by a new
 * collector (`second`); `send` sends a batch to it and to the reference.
 */
async function upgraded(name: string, makeOlder: (db: ClickHouseClient) => Promise<void>) {
  const url = clickhouse.database(name);
  const first = await startTestCollector({ storageUrl: url });
  const reference = await startTestCollector();
  collectors.push(first, reference);
  const older = new ClickHouseClient(parseClickHouseUrl(url));
  await makeOlder(older);
  const sendTo = async (to: TestCollector[], b: WireBatch): Promise<void> => {
    for (const c of to) assert.equal((await sendBatch(c.url, b)).status, 200);
  };
  for (let start = CALLS_FROM; start < NOW - MINUTE; start += 13 * MINUTE) await sendTo([first, reference], callsBatch(name, start));
  const second = await startTestCollector({ storageUrl: url });
  collectors.push(second);
  return { older, reference, second, send: (b: WireBatch) => sendTo([second, reference], b) };
}

/** a and b equal: the same keys and order, integers exact, fractions within 0.001 (`where` names the place). */
function same(a: unknown, b: unknown, where: string): void {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isInteger(a) && Number.isInteger(b) && Math.abs(a) > 1e6) assert.equal(b, a, where);
    else assert.ok(Math.abs(a - b) <= 0.001 + 1e-9 * Math.abs(a), `${where}: ${a} (SQLite) against ${b} (ClickHouse)`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    assert.equal(b.length, a.length, `${where}: ${a.length} items (SQLite) against ${b.length} (ClickHouse)\n${JSON.stringify(a).slice(0, 600)}\n${JSON.stringify(b).slice(0, 600)}`);
    a.forEach((x, i) => same(x, b[i], `${where}[${i}]`));
    return;
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort(), `${where}: keys`);
    for (const k of Object.keys(a)) same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${where}.${k}`);
    return;
  }
  assert.equal(b, a, where);
}

/** An answer with something in it: a non-empty list, a series with a known point, any other object. */
function hasContent(body: unknown): boolean {
  if (Array.isArray(body)) return body.length > 0;
  const points = (body as { points?: Array<[number, number | null]> }).points;
  return points ? points.some((p) => p[1] !== null) : JSON.stringify(body).length > 2;
}

/** Every query path of the API the dashboard and the users call, over the scenario. */
function queries(): string[] {
  const paths = ['/api/services?' + RANGE, '/api/servicemap?' + RANGE, CALLS_MAP];
  for (const service of ['shop', 'orders', 'edge', 'fan']) paths.push(`/api/endpoints?service=${service}&${RANGE}`);
  paths.push(`/api/context-loss?service=shop&${RANGE}`, `/api/context-loss?service=shop&from=${T0 + 20_000}&to=${NOW + 1000}`);
  paths.push(`/api/loop?service=shop&sort=worst&limit=5&${RANGE}`, `/api/loop?service=shop&sort=recent&limit=50&${RANGE}`);
  // long tasks by culprit, and one culprit's (the scenario's are render<endpoint> at app.ts:9:5)
  paths.push(`/api/loop?service=shop&group=culprit&${RANGE}`, `/api/loop?service=shop&group=culprit&limit=2&from=${T0 + 5000}&to=${T0 + 25_000}`);
  paths.push(`/api/loop?service=shop&group=culprit&function=renderGETa&location=${encodeURIComponent('app.ts:9:5')}&sort=worst&${RANGE}`, `/api/loop?service=shop&function=renderPOSTb&location=&${RANGE}`);
  for (const service of ['shop', 'orders', 'fan']) for (const sort of ['slowest', 'recent']) paths.push(`/api/traces?service=${service}&sort=${sort}&limit=20&${RANGE}`);
  paths.push(`/api/traces?service=shop&endpoint=${encodeURIComponent('POST /b')}&sort=slowest&limit=500&${RANGE}`, `/api/traces?service=shop&sort=slowest&by=response&limit=50&${RANGE}`);
  for (const endpoint of ['GET /a', 'GET /orders/:id']) paths.push(`/api/views?endpoint=${encodeURIComponent(endpoint)}&${RANGE}`);
  // an endpoint's critical path, from its random traces or from all (orders has none drawn at random)
  for (const [service, endpoint] of [...ENDPOINTS.map((e) => ['shop', e]), ['orders', 'GET /orders/:id']]) {
    paths.push(`/api/critical-path?service=${service}&endpoint=${encodeURIComponent(endpoint!)}&${RANGE}`);
  }
  for (const step of [1000, 10_000, MINUTE, 60 * MINUTE]) {
    for (const metric of SERIES_METRICS) {
      const qs = ['throughput', 'errors', 'aborted', 'utilization', 'gc'].includes(metric) ? [0.95] : [0.5, 0.99, 1];
      for (const q of qs) {
        paths.push(`/api/timeseries?service=shop&metric=${metric}&q=${q}&step=${step}&${RANGE}`);
        // (the loop's series are a service's)
        if (step === 1000 && !isLoopSeries(metric)) paths.push(`/api/timeseries?service=edge&endpoint=${encodeURIComponent('GET /a')}&metric=${metric}&q=${q}&step=${step}&${RANGE}`);
      }
    }
  }
  for (const id of traceIds.slice(0, 40).concat(traceIds.slice(-2))) paths.push(`/api/traces/${id}`, `/api/traces/${id}/holders`);
  return paths;
}

/** Every batch, eight at a time (as from many agents: ClickHouse writes those that meet in one insert). */
async function sendAll(url: string): Promise<void> {
  let next = 0;
  const sender = async (): Promise<void> => {
    while (next < batches.length) {
      const answer = await sendBatch(url, batches[next++]!);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.duplicate, false);
    }
  };
  await Promise.all(Array.from({ length: 8 }, sender));
  // sent again (an acknowledgement lost): each is known, and nothing counts twice
  for (const b of batches.slice(0, 3)) assert.equal((await sendBatch(url, b)).body.duplicate, true);
}

for (const pair of PAIRS) {
  describe(pair.name, () => {
    let sqlite: TestCollector;
    let ch: TestCollector;
    let chOther: TestCollector | undefined;
    let shards: TestCollector;
    let shardsUrl: string;

    before(async () => {
      const storageUrl = clickhouse.database();
      shardsUrl = sharded.database();
      sqlite = await startTestCollector({ retention: pair.retention });
      ch = await startTestCollector({ retention: pair.retention, storageUrl });
      shards = await startTestCollector({ retention: pair.retention, storageUrl: shardsUrl });
      collectors.push(sqlite, ch, shards);
      if (pair === PAIRS[0]) collectors.push((chOther = await startTestCollector({ retention: pair.retention, storageUrl })));
      await Promise.all([sendAll(sqlite.url), sendAll(ch.url), sendAll(shards.url)]);
    });

    test('the counts are what was sent; on two shards, each holds part of the rows', async () => {
      for (const c of [sqlite, ch, shards]) {
        const rows = (await get(`${c.url}/api/endpoints?service=shop&${RANGE}`)).body as Array<{ endpoint: string; count: number; errors: number; aborted: number }>;
        assert.deepEqual(
          Object.fromEntries(rows.map((r) => [r.endpoint, { count: r.count, errors: r.errors, aborted: r.aborted }])),
          Object.fromEntries(sent),
          `${c.storage.kind}: ${JSON.stringify(rows).slice(0, 500)}`,
        );
        const [fan] = ((await get(`${c.url}/api/services?${RANGE}`)).body as Array<{ service: string; dropped: { parts: number } }>).filter((s) => s.service === 'fan');
        const losses = (await get(`${c.url}/api/context-loss?service=shop&${RANGE}`)).body as Array<{ module: string; count: number }>;
        // (per-minute rows: none kept past a minute's retention)
        const lossKept = pair.retention.minutes === undefined ? Object.fromEntries(lossSent) : {};
        assert.deepEqual(Object.fromEntries(losses.map((l) => [l.module, l.count])), lossKept, `${c.storage.kind}: requests that lost their context`);
        assert.equal(fan?.dropped.parts, 1, `${c.storage.kind}: the 101st part of a trace is refused and counted`);
      }
      const target = parseClickHouseUrl(shardsUrl);
      const perShard = await Promise.all(
        target.servers.map(async (origin) => (await new ClickHouseClient({ ...target, origin }).query<{ n: number }>('SELECT count() AS n FROM trace_index_local'))[0]!.n),
      );
      const [all] = await new ClickHouseClient(target).query<{ n: number }>('SELECT count() AS n FROM trace_index');
      assert.ok(perShard.every((n) => n > 0) && perShard[0]! + perShard[1]! === all!.n, `trace parts per shard ${perShard.join(', ')} of ${all!.n}`);
    });

    test('every query answers the same from SQLite and from ClickHouse, one server or two shards', async () => {
      const paths = queries();
      let nonEmpty = 0;
      for (const p of paths) {
        const a = await get(sqlite.url + p);
        const b = await get(ch.url + p);
        assert.equal(a.status, 200, `${p}: ${JSON.stringify(a.body)}`);
        assert.equal(b.status, 200, `${p}: ${JSON.stringify(b.body)}`);
        same(a.body, b.body, p);
        if (hasContent(a.body)) nonEmpty++;
        if (chOther) same(a.body, (await get(chOther.url + p)).body, `${p} (the other ClickHouse collector)`);
        const c = await get(shards.url + p);
        assert.equal(c.status, 200, `${p} (two shards): ${JSON.stringify(c.body)}`);
        same(a.body, c.body, `${p} (two shards)`);
      }
      // the scenario gives every query something to answer (not a comparison of empty lists)
      assert.ok(nonEmpty > paths.length * 0.9, `${nonEmpty} of ${paths.length} answers had content`);
    });

    test('the alert rules’ totals (summary) are the same', async () => {
      const range = { from: T0 - MINUTE, to: NOW + 1000 };
      for (const endpoint of [undefined, 'GET /a']) {
        for (const service of ['shop', 'edge']) {
          const expected = await sqlite.storage.summary(service, endpoint, range);
          same(expected, await ch.storage.summary(service, endpoint, range), `summary ${service} ${endpoint}`);
          same(expected, await shards.storage.summary(service, endpoint, range), `summary ${service} ${endpoint} (two shards)`);
        }
      }
    });
  });
}

describe('ClickHouse: a batch cut short, and retention', () => {
  test('a batch begun but never finished (its collector died mid-write, within a table) is completed without counting anything twice', async () => {
    const url = clickhouse.database('partial');
    const settleMs = 2000;
    const c = await startTestCollector({ storageUrl: url, clickhouse: { settleMs } });
    collectors.push(c);
    const txs = Array.from({ length: 9 }, () => randomTx(rand));
    const intervals = ['GET /cut', 'GET /short', 'GET /off'].map((e, i) => interval(e, T0, txs.slice(i * 3, i * 3 + 3)));
    const b = batch('cut', 'cut-1', intervals, [trace('cut', 'GET /cut', T0 + 1, txs[0]!)], T0 + 1000);
    // as if a collector had died in the middle of writing it: what it wrote of its aggregates cut
    // after the first row (that row's rollups written with it, as ClickHouse's views do), no trace,
    // and no "stored" mark
    assert.equal((await sendBatch(c.url, { ...b, intervals: intervals.slice(0, 1), traces: [] })).body.duplicate, false);
    const client = new ClickHouseClient(parseClickHouseUrl(url));
    await client.exec('ALTER TABLE batches DELETE WHERE state = 2');
    for (;;) {
      const [row] = await client.query<{ n: number }>('SELECT count() AS n FROM system.mutations WHERE NOT is_done');
      if (row!.n === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await get(`${c.url}/api/traces?service=cut&${RANGE}`)).body.length, 0);
    // sent again at once: the collector that began it might still be writing it
    const early = await sendBatch(c.url, b);
    assert.equal(early.status, 503, JSON.stringify(early.body));
    assert.match(early.body.error, /is being written by another collector \(or was, when it stopped\): send it again in 2 s/);
    await new Promise((r) => setTimeout(r, settleMs + 1000)); // (its beginning is kept to the second)
    // the agent sends it again later: it is completed, not a duplicate, and counted once
    assert.equal((await sendBatch(c.url, b)).body.duplicate, false);
    assert.equal((await sendBatch(c.url, b)).body.duplicate, true);
    const rows = (await get(`${c.url}/api/endpoints?service=cut&${RANGE}`)).body as Array<{ endpoint: string; count: number }>;
    assert.deepEqual(rows.map((r) => [r.endpoint, r.count]).sort(), [['GET /cut', 3], ['GET /off', 3], ['GET /short', 3]]);
    assert.equal((await get(`${c.url}/api/traces?service=cut&${RANGE}`)).body.length, 1);
  });

  test('a collector says when it created the database (a mistyped name would split the data); the next one on it does not', async () => {
    const url = clickhouse.database('fresh');
    const first = await startTestCollector({ storageUrl: url });
    const second = await startTestCollector({ storageUrl: url });
    collectors.push(first, second);
    assert.equal(first.storage.note, `database ${new URL(url).pathname.slice(1)} is new: created now`);
    assert.equal(second.storage.note, undefined);
  });

  test('ClickHouse down: the health check, ingest and queries answer 503 with the reason (a load balancer and the agents try elsewhere)', async (t) => {
    const own = await startClickHouse();
    t.after(() => own.stop()); // (stopped below; this, if the test fails before)
    const c = await startTestCollector({ storageUrl: own.database('down') });
    collectors.push(c);
    assert.equal((await get(`${c.url}/api/health`)).body.status, 'ok');
    await own.stop();
    const health = await get(`${c.url}/api/health`);
    assert.equal(health.status, 503);
    assert.equal(health.body.status, 'unavailable');
    assert.match(health.body.error, /^ClickHouse at http:\/\/127\.0\.0\.1:\d+ is not reachable \(ECONNREFUSED\)$/);
    const b = batch('down', 'down-1', [interval('GET /down', T0, [randomTx(rand)])], [], T0 + 1000);
    const ingest = await sendBatch(c.url, b);
    assert.equal(ingest.status, 503);
    assert.match(ingest.body.error, /is not reachable/);
    const query = await get(`${c.url}/api/endpoints?service=down&${RANGE}`);
    assert.equal(query.status, 503);
    assert.match(query.body.error, /is not reachable/);
  });

  test('a database an older collector made gains the columns added since: a long task keeps its compiled location, the agent says its cost and what it cut', async () => {
    const url = clickhouse.database('older');
    collectors.push(await startTestCollector({ storageUrl: url }));
    // as the collector before compiled locations and the agent's cost left it
    const older = new ClickHouseClient(parseClickHouseUrl(url));
    await older.exec('ALTER TABLE long_tasks DROP COLUMN compiledLocation');
    // (the rollups' views made as they were: without the agent's columns)
    const views = await Promise.all(['loop_minute_mv', 'loop_hour_mv'].map(async (view) => (await older.query<{ statement: string }>(`SHOW CREATE TABLE ${view}`))[0]!.statement));
    for (const view of ['loop_minute_mv', 'loop_hour_mv']) await older.exec(`DROP TABLE ${view}`);
    for (const table of ['loop_second', 'loop_minute', 'loop_hour']) {
      for (const column of ['agentReports', 'agentMs', 'agentProcessMs', 'agentTransactions', 'agentRss']) await older.exec(`ALTER TABLE ${table} DROP COLUMN ${column}`);
    }
    for (const view of views) {
      const before = view.replace(/, (?:sum|max)State\(agent\w+\) AS agent\w+/g, '');
      assert.notEqual(before, view);
      await older.exec(before);
    }
    // (and the aggregates without the file system's and name resolution's external time, in the
    // rollups of before the arrays)
    await legacyRollups(older, ['ext_fs', 'ext_dns']);
    for (const column of ['ext_fs', 'ext_dns']) await older.exec(`ALTER TABLE agg_second DROP COLUMN ${column}`);
    // (and the instances without the count of values cut)
    const [instancesView] = await older.query<{ statement: string }>('SHOW CREATE TABLE instances_mv');
    await older.exec('DROP TABLE instances_mv');
    for (const table of ['instances_in', 'instances']) await older.exec(`ALTER TABLE ${table} DROP COLUMN cutValues`);
    const instancesBefore = instancesView!.statement.replace(/, maxState\(cutValues\) AS cutValues/, '');
    assert.notEqual(instancesBefore, instancesView!.statement);
    await older.exec(instancesBefore);
    const c = await startTestCollector({ storageUrl: url });
    collectors.push(c);
    const tx = randomTx(rand, 0);
    const b = batch('older', 'older-1', [{ ...interval('GET /files', T0, [tx]), externalByKind: { fs: 2.5, dns: 0.5 } }], [], T0 + 1000);
    b.dropped.cut = 3;
    b.loop = loopSample(T0, {
      longTasks: [{ at: T0 + 10, ms: 80, function: 'price', location: 'file:///app/src/app.ts:9:5', compiledLocation: 'file:///app/dist/app.js:6:21', blocked: [] }],
      agent: { rss: 20e6, cpu: { ms: 5, processMs: 500, transactions: 100 } },
    });
    assert.equal((await sendBatch(c.url, b)).status, 200);
    const [task] = ((await get(`${c.url}/api/loop?service=older&${RANGE}`)).body as { longTasks: Array<{ location: string; compiledLocation: string }> }).longTasks;
    assert.deepEqual([task?.location, task?.compiledLocation], ['file:///app/src/app.ts:9:5', 'file:///app/dist/app.js:6:21']);
    // over the seconds (raw rows) and over the minutes and hours (the rollups' own view of the cost)
    for (const range of [RANGE, `from=${T0 - 3 * 3600_000}&to=${T0 + 3600_000}`]) {
      const [older] = ((await get(`${c.url}/api/services?${range}`)).body as Array<{ service: string; agent: unknown; dropped: { cut: number } }>).filter((s) => s.service === 'older');
      assert.deepEqual(older?.agent, { usPerRequest: 50, cpuShare: 0.01, rss: 20e6 }, range);
      assert.equal(older?.dropped.cut, 3);
      const [files] = (await get(`${c.url}/api/endpoints?service=older&${range}`)).body as Array<{ externalByKind: Record<string, number> }>;
      assert.deepEqual(files?.externalByKind, { fs: 2.5, dns: 0.5 }, range);
    }
  });

  test("a database from before the loop's bins had tables of their own and the request metrics' bins were maps: the loop's filled from its states, the rest read from the rows of before", async () => {
    const url = clickhouse.database('loopstates');
    const first = await startTestCollector({ storageUrl: url });
    collectors.push(first);
    // as a collector before loop_bins_* and bin_maps_* left it: the rollups keep the loop's bins as
    // sumMap states, and the request metrics' bins are a row per key (bins_*, and its view)
    const older = new ClickHouseClient(parseClickHouseUrl(url));
    for (const [name, seconds] of [['minute', 60], ['hour', 3600]] as const) {
      const [view] = await older.query<{ statement: string }>(`SHOW CREATE TABLE loop_${name}_mv`);
      for (const table of [`loop_${name}_mv`, `loop_bins_${name}_mv`, `loop_bins_${name}`, `bin_maps_${name}_mv`, `bin_maps_${name}`, `bin_maps_service_${name}_mv`, `bin_maps_service_${name}`]) {
        await older.exec(`DROP TABLE ${table}`);
      }
      await older.exec(`CREATE TABLE bins_${name} (service String, endpoint String, t DateTime, metric UInt8, key Int32, count UInt64) ENGINE = SummingMergeTree(count) PARTITION BY toYYYYMMDD(t) ORDER BY (service, endpoint, t, metric, key)`);
      await older.exec(
        `CREATE MATERIALIZED VIEW bins_${name}_mv TO bins_${name} AS SELECT service, endpoint, toDateTime(intDiv(toUInt32(t), ${seconds}) * ${seconds}) AS t, bin_metric AS metric, bin_key AS key, sum(bin_count) AS count ` +
          `FROM agg_second ARRAY JOIN arrayConcat(${METRICS.map((m) => `${m}_keys`).join(', ')}) AS bin_key, arrayConcat(${METRICS.map((m) => `${m}_counts`).join(', ')}) AS bin_count, ` +
          `arrayConcat(${METRICS.map((m, i) => `arrayMap(x -> toUInt8(${i}), ${m}_keys)`).join(', ')}) AS bin_metric GROUP BY service, endpoint, t, metric, key`,
      );
      await older.exec(`ALTER TABLE loop_${name} ADD COLUMN delay_bins AggregateFunction(sumMap, Array(Int32), Array(UInt64))`);
      const before = view!.statement.replace(/sumState\(delay_zero\) AS delay_zero/, '$& , sumMapState(delay_keys, delay_counts) AS delay_bins');
      assert.notEqual(before, view!.statement);
      await older.exec(before);
    }
    const reference = await startTestCollector();
    collectors.push(reference);
    for (let i = 0; i < 6; i++) {
      const delay = newSketch();
      for (let k = 0; k < 50; k++) addValue(delay, roundMs(1 + rand() * (i + 1) * 20));
      const b = batch('loopstates', 'ls-1', [interval('GET /l', T0 + i * 1000, [randomTx(rand)])], [], T0 + (i + 1) * 1000);
      b.loop = loopSample(T0 + i * 1000, { delay: toWire(delay) });
      for (const c of [first, reference]) assert.equal((await sendBatch(c.url, b)).status, 200);
    }
    const second = await startTestCollector({ storageUrl: url });
    collectors.push(second);
    const [states] = await older.query<{ n: number }>("SELECT count() AS n FROM system.columns WHERE database = currentDatabase() AND name = 'delay_bins'");
    assert.equal(states!.n, 0, 'the states are gone once copied');
    const tables = (await older.query<{ name: string }>('SELECT name FROM system.tables WHERE database = currentDatabase()')).map((r) => r.name);
    assert.deepEqual(
      tables.filter((t) => t.startsWith('bins_')).sort(),
      ['bins_hour', 'bins_minute'],
      'the rows of before stay, their views go',
    );
    // over the minutes and hours (the rollups): the same delay as the reference, read from the copied bins
    const range = `from=${T0 - 3 * 3600_000}&to=${T0 + 3600_000}`;
    const want = (await get(`${reference.url}/api/loop?service=loopstates&${range}`)).body as { delay: { p50: number; p99: number } };
    assert.ok(want.delay.p99 > want.delay.p50);
    assert.deepEqual((await get(`${second.url}/api/loop?service=loopstates&${range}`)).body.delay, want.delay);
    // the request metrics over the minutes and hours, from the rows of before: a service's series,
    // an endpoint's, the endpoint list; and the same once a new batch has gone into the new tables
    const same = async (what: string): Promise<void> => {
      for (const step of [MINUTE, 60 * MINUTE]) {
        for (const endpoint of ['', `&endpoint=${encodeURIComponent('GET /l')}`]) {
          const series = `/api/timeseries?service=loopstates${endpoint}&metric=response&q=0.5&step=${step}&${range}`;
          const expected = (await get(`${reference.url}${series}`)).body as { points: Array<[number, number | null]> };
          assert.ok(expected.points.some(([, v]) => v !== null));
          assert.deepEqual((await get(`${second.url}${series}`)).body, expected, `${what}: ${series}`);
        }
      }
      const endpoints = `/api/endpoints?service=loopstates&${range}`;
      assert.deepEqual((await get(`${second.url}${endpoints}`)).body, (await get(`${reference.url}${endpoints}`)).body, `${what}: ${endpoints}`);
    };
    await same('before');
    const b = batch('loopstates', 'ls-1', [interval('GET /l', T0 + 10_000, [randomTx(rand)])], [], T0 + 11_000);
    const slow = newSketch();
    addValue(slow, 500);
    b.loop = loopSample(T0 + 10_000, { delay: toWire(slow) });
    for (const c of [second, reference]) assert.equal((await sendBatch(c.url, b)).status, 200);
    assert.deepEqual((await get(`${second.url}/api/loop?service=loopstates&${range}`)).body.delay, (await get(`${reference.url}/api/loop?service=loopstates&${range}`)).body.delay);
    await same('with a batch after');
    const [before, after] = await Promise.all(['bins_minute', 'bin_maps_minute'].map(async (t) => (await older.query<{ n: number }>(`SELECT count() AS n FROM ${t}`))[0]!.n));
    assert.ok(before! > 0 && after! > 0, `the bins of before and after, each in their table: ${before} rows of a key, ${after} maps`);
  });

  test("a database from before the calls' hour rollup: the service map reads the hours before it from the calls' minutes", async () => {
    // as a collector before calls_hour left it
    const { older, reference, second, send } = await upgraded('callsbefore', async (db) => {
      for (const table of ['calls_hour_mv', 'call_bin_maps_hour_mv', 'calls_hour', 'call_bin_maps_hour']) await db.exec(`DROP TABLE ${table}`);
    });
    const check = async (what: string): Promise<void> => {
      const want = (await get(reference.url + CALLS_MAP)).body as { edges: unknown[] };
      assert.ok(want.edges.length >= 2, JSON.stringify(want));
      same(want, (await get(second.url + CALLS_MAP)).body, `${what}: ${CALLS_MAP}`);
    };
    await check('before');
    // a batch after the upgrade goes into the rollup as well (its hour is still read from the minutes)
    await send(callsBatch('callsbefore', NOW - 2 * MINUTE));
    await check('with a batch after');
    const [rolled] = await older.query<{ n: number }>('SELECT count() AS n FROM calls_hour');
    assert.ok(rolled!.n > 0, 'the rollup is filled from the upgrade on');
  });

  test("a database from before the rollups' arrays: the times before the upgrade are read from its rollups of a state per column", async () => {
    const { older, reference, second, send } = await upgraded('aggbefore', (db) => legacyRollups(db));
    const range = `from=${CALLS_FROM}&to=${NOW + 1000}`;
    const job = encodeURIComponent('GET /job');
    const paths = [`/api/endpoints?service=aggbefore&${range}`, `/api/views?endpoint=${job}&${range}`, `/api/services?${range}`];
    for (const step of [MINUTE, 60 * MINUTE]) {
      for (const endpoint of ['', `&endpoint=${job}`]) {
        for (const metric of ['response', 'throughput']) paths.push(`/api/timeseries?service=aggbefore${endpoint}&metric=${metric}&q=0.5&step=${step}&${range}`);
      }
    }
    const check = async (what: string): Promise<void> => {
      for (const path of paths) {
        const want = (await get(reference.url + path)).body;
        assert.ok(hasContent(want), `${path}: ${JSON.stringify(want).slice(0, 200)}`);
        same(want, (await get(second.url + path)).body, `${what}: ${path}`);
      }
    };
    await check('before');
    // a batch after the upgrade goes into the arrays alone (its hour is read from both)
    await send(callsBatch('aggbefore', NOW - 2 * MINUTE));
    await check('with a batch after');
    const rows = async (table: string): Promise<number> => (await older.query<{ n: number }>(`SELECT count() AS n FROM ${table} WHERE service = 'aggbefore'`))[0]!.n;
    assert.ok((await rows('agg_minute')) > 0 && (await rows('agg_arrays_minute')) > 0, 'the rollups of before and after, each in their tables');
  });

  test('shards: a cluster the servers do not have, or a server of it left out of the URL, stops the start with the reason', async () => {
    const [, first, second, db] = /^clickhouse:\/\/([^,]+),([^/]+)\/(\w+)\?/.exec(sharded.database('wrong'))!;
    await assert.rejects(openClickHouseStorage({ url: `clickhouse://${first},${second}/${db}?cluster=nope` }), {
      message: `ClickHouse at http://${first} has no cluster nope in its remote_servers (every server named in the URL needs it)`,
    });
    await assert.rejects(openClickHouseStorage({ url: `clickhouse://${first}/${db}?cluster=loopscope` }), {
      message: `ClickHouse at http://${first}: cluster loopscope has 2 shards, and the URL names 1 server: name one server of each shard`,
    });
  });

  for (const layout of ['one server', 'two shards']) {
    test(`pruning drops whole days older than each retention (${layout})`, async () => {
      const url = (layout === 'one server' ? clickhouse : sharded).database('prune');
      const c = await startTestCollector({ storageUrl: url });
      collectors.push(c);
      const DAY = 24 * 60 * MINUTE;
      const old = Math.floor((NOW - 3 * DAY) / DAY) * DAY + 12 * 60 * MINUTE; // noon, three days ago
      const txs = [randomTx(rand), randomTx(rand)];
      const b = batch('old', 'old-1', [interval('GET /old', old, txs)], [trace('old', 'GET /old', old + 1, txs[0]!)], old + 1000);
      assert.equal((await sendBatch(c.url, b)).status, 200);
      const client = new ClickHouseClient(parseClickHouseUrl(url));
      const count = async (table: string): Promise<number> => (await client.query<{ n: number }>(`SELECT count() AS n FROM ${table}`))[0]!.n;
      const tables = ['agg_second', 'agg_arrays_minute', 'agg_arrays_hour', 'bin_maps_minute', 'bin_maps_hour', 'traces', 'batches'];
      const counts = async (): Promise<string> => (await Promise.all(tables.map(async (t) => `${t} ${Math.min(await count(t), 1)}`))).join(', ');
      assert.equal(await counts(), 'agg_second 1, agg_arrays_minute 1, agg_arrays_hour 1, bin_maps_minute 1, bin_maps_hour 1, traces 1, batches 1');
      await c.storage.prune(NOW); // seconds are kept 2 h: three days ago is gone (the batch ids, kept 1 d, were received now)
      assert.equal(await counts(), 'agg_second 0, agg_arrays_minute 1, agg_arrays_hour 1, bin_maps_minute 1, bin_maps_hour 1, traces 1, batches 1');
      await c.storage.prune(NOW + 5 * DAY); // minutes and traces are kept 7 d
      assert.equal(await counts(), 'agg_second 0, agg_arrays_minute 0, agg_arrays_hour 1, bin_maps_minute 0, bin_maps_hour 1, traces 0, batches 0');
      await c.storage.prune(NOW + 90 * DAY);
      assert.equal(await counts(), 'agg_second 0, agg_arrays_minute 0, agg_arrays_hour 0, bin_maps_minute 0, bin_maps_hour 0, traces 0, batches 0');
    });
  }
});
