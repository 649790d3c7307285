/**
 * # Storage benchmark: SQLite and ClickHouse side by side, on the same data
 *
 * What it measures, for each backend, with a real collector in a process of its own (forked; the
 * ClickHouse one on a Debian clickhouse-server this run starts on 127.0.0.1):
 *
 *   ingest    a day of history sent over HTTP as agents send it, `--concurrency` batches in flight:
 *             one batch per service and minute, each with one interval of every endpoint (a
 *             one-minute interval), three traces, loop data and two call targets. Batches/s and
 *             endpoint-intervals/s, each batch answered 200 after it is durable.
 *   queries   each dashboard query over the whole day, `--queries` times: p50 and p95 latency.
 *   bytes     on disk per endpoint-interval (SQLite: the file and its WAL; ClickHouse: the active
 *             parts of the database).
 *
 * The goals (issue 24): ClickHouse answers every dashboard query over 24 h in under 100 ms at 100
 * services × 50 endpoints, and ingests at least 5 times what one SQLite collector can.
 *
 * Run (from the repository root):
 *   npm run bench:storage                                   10 services × 50 endpoints, 24 h (a few minutes)
 *   node bench/dist/storage.js --services 100 --hours 24    the goal's size (the SQLite ingest takes long)
 *   node bench/dist/storage.js --only clickhouse
 *   node bench/dist/storage.js --clickhouse clickhouse://HOST:8123/DB    your own ClickHouse (DB is filled, not emptied)
 *   node bench/dist/storage.js --only clickhouse --services 10 --copies 10
 *       the goal's 100 services in a tenth of the ingest: 10 services are ingested, then ClickHouse
 *       copies every table's rows of them 9 times under new service names (svc-10 … svc-99; the
 *       views are detached meanwhile, so each rollup row is copied once), and the queries run over
 *       all 100. Ingest figures are those of the 10.
 *   node bench/dist/storage.js --only clickhouse --clickhouse URL --query-only --services 100
 *       the queries (and bytes) only, over a database an earlier run filled
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { METRICS, addValue, newSketch, roundMs, toWire, type MetricName, type WireBatch, type WireSketch, type WireTrace } from '@loopscope/protocol';
import { parseClickHouseUrl } from '@loopscope/collector';
import type { TargetMessage } from './servers/ingest-target.js';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '10' },
    endpoints: { type: 'string', default: '50' },
    hours: { type: 'string', default: '24' },
    concurrency: { type: 'string', default: '32' },
    queries: { type: 'string', default: '20' },
    only: { type: 'string' },
    clickhouse: { type: 'string' },
    copies: { type: 'string', default: '1' },
    'query-only': { type: 'boolean', default: false },
  },
});
const COPIES = Number(values.copies);
const QUERY_ONLY = values['query-only'];
if (!Number.isInteger(COPIES) || COPIES < 1) throw new Error(`--copies must be a whole number ≥ 1, not ${values.copies}`);
if ((COPIES > 1 || QUERY_ONLY) && values.only !== 'clickhouse') throw new Error('--copies and --query-only are for ClickHouse only: add --only clickhouse');
if (QUERY_ONLY && values.clickhouse === undefined) throw new Error('--query-only reads a database an earlier run filled: name it with --clickhouse');
const SERVICES = Number(values.services);
const ENDPOINTS = Number(values.endpoints);
const MINUTES = Math.round(Number(values.hours) * 60);
const CONCURRENCY = Number(values.concurrency);
const QUERIES = Number(values.queries);
const MINUTE = 60_000;
const TO = Math.floor(Date.now() / MINUTE) * MINUTE;
const FROM = TO - MINUTES * MINUTE;

// ---- the data ----------------------------------------------------------------------------------

/** A deterministic pseudo-random source (mulberry32). */
let seed = 24;
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function sketchOf(n: number, scale: number): WireSketch {
  const s = newSketch();
  for (let i = 0; i < n; i++) addValue(s, roundMs(scale * Math.exp(rand() * 3)));
  return toWire(s);
}

/** The batch of service `s` for minute `m`: one interval per endpoint, three traces, the loop, two call targets. */
function batchOf(s: number, m: number): { body: Buffer; intervals: number } {
  const service = `svc-${s}`;
  const start = FROM + m * MINUTE;
  const intervals = Array.from({ length: ENDPOINTS }, (_, e) => {
    const count = 1 + Math.floor(rand() * 40);
    const sketches = Object.fromEntries(METRICS.map((metric) => [metric, sketchOf(count, metric === 'external' ? 2 : 0.5)])) as Record<MetricName, WireSketch>;
    return { start, ms: MINUTE, endpoint: `GET /api/e${e}/:id`, count, errors: rand() < 0.05 ? 1 : 0, ...sketches };
  });
  const traces = [0, 1, 2].map((k): WireTrace => {
    const duration = roundMs(5 + rand() * 200);
    return {
      traceId: (s * 1e9 + m * 10 + k).toString(16).padStart(32, '0'),
      service,
      endpoint: `GET /api/e${(m + k) % ENDPOINTS}/:id`,
      start: start + k * 1000,
      status: 200,
      error: false,
      response: duration,
      duration,
      cpu: roundMs(duration / 4),
      external: roundMs(duration / 2),
      externalByKind: { db: roundMs(duration / 2) },
      blocking: roundMs(duration / 8),
      segments: [{ id: 0, parentId: null, name: 'pg SELECT', kind: 'db', start: 1, end: roundMs(1 + duration / 2), onCriticalPath: true }],
      criticalPath: [0],
      truncated: false,
      droppedSegments: 0,
      slices: [[0, roundMs(duration / 4)]],
      waits: [],
    };
  });
  const batch: WireBatch = {
    v: 1,
    batchId: `storage-${process.pid}-${s}-${m}`,
    service,
    instance: `${service}-host:1`,
    agent: { name: 'loopscope', version: '0.1.0' },
    sentAt: start + MINUTE,
    intervals,
    traces,
    dropped: { batches: 0, transactions: 0, traces: 0 },
    loop: {
      start,
      ms: MINUTE,
      delay: sketchOf(600, 1),
      busyMs: roundMs(rand() * 30_000),
      idleMs: roundMs(30_000 + rand() * 30_000),
      gc: { minor: { count: 12, ms: 8.5 } },
      cpu: { user: roundMs(rand() * 20_000), system: roundMs(rand() * 3000) },
      memory: { rss: 120_000_000, heapUsed: 40_000_000, heapTotal: 60_000_000 },
      longTasks: [],
    },
    calls: [
      { start, ms: MINUTE, kind: 'http', target: `10.0.0.${(s + 1) % SERVICES}:8080`, count: 30, errors: 0, duration: sketchOf(30, 3) },
      { start, ms: MINUTE, kind: 'db', target: '10.0.1.1:5432/app', count: 90, errors: 0, duration: sketchOf(90, 0.5) },
    ],
  };
  return { body: gzipSync(JSON.stringify(batch)), intervals: ENDPOINTS };
}

// ---- the phases ----------------------------------------------------------------------------------

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(port: number, method: 'GET' | 'POST', pathname: string, body?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length } : {};
    const req = http.request({ host: '127.0.0.1', port, path: pathname, method, agent, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Report {
  backend: string;
  batchesPerS: number;
  intervalsPerS: number;
  queries: Array<{ name: string; p50: number; p95: number }>;
  bytesPerInterval: number;
}

async function ingest(port: number): Promise<{ batchesPerS: number; intervalsPerS: number; intervals: number }> {
  // built as they are sent (a day of 100 services is too much to hold at once), in minute order
  const order: Array<[number, number]> = [];
  for (let m = 0; m < MINUTES; m++) for (let s = 0; s < SERVICES; s++) order.push([s, m]);
  let next = 0;
  let intervals = 0;
  let buildMs = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < order.length) {
        const [s, m] = order[next++]!;
        const t0 = performance.now();
        const b = batchOf(s, m);
        buildMs += performance.now() - t0;
        const { status, text } = await request(port, 'POST', '/v1/ingest', b.body);
        if (status !== 200) throw new Error(`ingest: ${status} ${text.slice(0, 300)}`);
        intervals += b.intervals;
      }
    }),
  );
  // the time spent building batches in this process is not the collector's
  const seconds = (performance.now() - started - buildMs / CONCURRENCY) / 1000;
  return { batchesPerS: order.length / seconds, intervalsPerS: intervals / seconds, intervals };
}

function quantileOf(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Every query the dashboard makes over the day, timed. */
async function queries(port: number): Promise<Report['queries']> {
  const range = `from=${FROM}&to=${TO}`;
  const e = encodeURIComponent('GET /api/e1/:id');
  const list: Array<[string, string]> = [
    ['services', `/api/services?${range}`],
    ['endpoints of a service', `/api/endpoints?service=svc-1&${range}`],
    ['p95 response series of a service', `/api/timeseries?service=svc-1&metric=response&q=0.95&${range}`],
    ['throughput series of an endpoint', `/api/timeseries?service=svc-1&endpoint=${e}&metric=throughput&${range}`],
    ['an endpoint in every service', `/api/views?endpoint=${e}&${range}`],
    ['slowest traces of a service', `/api/traces?service=svc-1&sort=slowest&limit=50&${range}`],
    ['service map', `/api/servicemap?${range}`],
    ['event loop of a service', `/api/loop?service=svc-1&sort=worst&limit=20&${range}`],
  ];
  const out: Report['queries'] = [];
  for (const [name, pathname] of list) {
    const times: number[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const t0 = performance.now();
      const { status, text } = await request(port, 'GET', pathname);
      times.push(performance.now() - t0);
      if (status !== 200 || text.length < 3) throw new Error(`${name}: ${status} ${text.slice(0, 300)}`);
    }
    times.sort((a, b) => a - b);
    out.push({ name, p50: quantileOf(times, 0.5), p95: quantileOf(times, 0.95) });
  }
  return out;
}

async function run(backend: 'sqlite' | 'clickhouse', storageUrl?: string, bytes?: () => Promise<number>, copy?: () => Promise<void>): Promise<Report> {
  const target: ChildProcess = fork(fileURLToPath(new URL('./servers/ingest-target.js', import.meta.url)), ['collector', ...(storageUrl ? [storageUrl] : [])], { stdio: 'inherit' });
  const [listening] = (await once(target, 'message')) as [TargetMessage];
  if (listening.type !== 'listening') throw new Error('the collector did not start');
  try {
    let ingested = { batchesPerS: NaN, intervalsPerS: NaN, intervals: SERVICES * MINUTES * ENDPOINTS };
    if (!QUERY_ONLY) {
      process.stdout.write(`${backend}: ingesting ${SERVICES * MINUTES} batches (${SERVICES} services × ${MINUTES} minutes × ${ENDPOINTS} endpoints)...`);
      ingested = await ingest(listening.port);
      process.stdout.write(` ${ingested.batchesPerS.toFixed(0)} batches/s\n`);
    }
    const { batchesPerS, intervalsPerS } = ingested;
    let intervals = ingested.intervals;
    if (copy !== undefined) {
      process.stdout.write(`${backend}: copying the ${SERVICES} services' rows ${COPIES - 1} times...`);
      const t0 = performance.now();
      await copy();
      intervals *= COPIES;
      process.stdout.write(` ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
    }
    process.stdout.write(`${backend}: querying...\n`);
    const timed = await queries(listening.port);
    const size = bytes
      ? await bytes()
      : ['loopscope.db', 'loopscope.db-wal'].reduce((sum, f) => {
          try {
            return sum + statSync(path.join(listening.dataDir!, f)).size;
          } catch {
            return sum;
          }
        }, 0);
    return { backend, batchesPerS, intervalsPerS, queries: timed, bytesPerInterval: size / intervals };
  } finally {
    target.disconnect();
    await once(target, 'exit');
  }
}

/**
 * Copies every table's rows of services svc-0 … svc-(S-1) COPIES - 1 times, as svc-S … (and their
 * instances and trace ids with them), with the materialized views detached so that each rollup's
 * rows are copied rather than made again from the copied second rows.
 */
async function copyServices(sql: (query: string) => Promise<string>, database: string): Promise<void> {
  const tables = (await sql(`SELECT name, engine FROM system.tables WHERE database = '${database}' FORMAT TSV`))
    .trim()
    .split('\n')
    .map((line) => line.split('\t') as [string, string]);
  const views = tables.filter(([, engine]) => engine === 'MaterializedView').map(([name]) => name);
  const columns = (await sql(`SELECT table, name FROM system.columns WHERE database = '${database}' FORMAT TSV`))
    .trim()
    .split('\n')
    .map((line) => line.split('\t') as [string, string]);
  for (const view of views) await sql(`DETACH TABLE ${view}`);
  try {
    for (const [table, engine] of tables) {
      const names = columns.filter(([t]) => t === table).map(([, name]) => name);
      if (!names.includes('service') || !engine.includes('MergeTree')) continue;
      for (let k = 1; k < COPIES; k++) {
        // (from a subquery: in ClickHouse an alias of the outer query, `service`, hides the column of the same name)
        const service = `concat('svc-', toString(toUInt32(substring(original, 5)) + ${k * SERVICES}))`;
        const select = names.map((name) => {
          if (name === 'service') return `${service} AS service`;
          if (name === 'instance') return `concat(${service}, substring(instance, length(original) + 1)) AS instance`;
          // a copy's trace ids differ from the original's in their first two hex digits
          if (name === 'traceId') return `concat(lower(hex(toUInt8(${k}))), substring(traceId, 3)) AS traceId`;
          return `\`${name}\``;
        });
        await sql(`INSERT INTO ${table} (${names.map((n) => `\`${n}\``).join(', ')}) SELECT ${select.join(', ')} FROM (SELECT *, service AS original FROM ${table} WHERE service IN (${Array.from({ length: SERVICES }, (_, s) => `'svc-${s}'`).join(', ')}))`);
      }
    }
  } finally {
    for (const view of views) await sql(`ATTACH TABLE ${view}`);
  }
}

interface ClickHouseTools {
  startClickHouse(): Promise<{ url: string; database(prefix?: string): string; stop(): Promise<void> }>;
}

const reports: Report[] = [];
if (values.only !== 'clickhouse') reports.push(await run('sqlite'));
if (values.only !== 'sqlite') {
  // the collector's test tool starts Debian's clickhouse-server on free ports, data in a temp directory
  const tools = (await import(new URL('../../packages/collector/dist/test/clickhouse-tools.js', import.meta.url).href)) as ClickHouseTools;
  const clickhouse = values.clickhouse === undefined ? await tools.startClickHouse() : undefined;
  try {
    const storageUrl = values.clickhouse ?? clickhouse!.database('bench');
    const { origin, database, user, password } = parseClickHouseUrl(storageUrl);
    const sql = async (query: string): Promise<string> => {
      const res = await fetch(`${origin}/?database=${database}`, { method: 'POST', body: query, headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } });
      const text = await res.text();
      if (!res.ok) throw new Error(`ClickHouse: ${text.slice(0, 300)}`);
      return text;
    };
    const bytes = async (): Promise<number> => Number((await sql(`SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '${database}' AND active`)).trim());
    reports.push(await run('clickhouse', storageUrl, bytes, COPIES > 1 ? () => copyServices(sql, database) : undefined));
  } finally {
    await clickhouse?.stop();
  }
}

const ms = (v: number): string => v.toFixed(1).padStart(7);
const copied = COPIES > 1 ? ` (${SERVICES} ingested, copied to ${SERVICES * COPIES})` : '';
console.log(`\nstorage benchmark: ${SERVICES * COPIES} services${copied} × ${ENDPOINTS} endpoints × ${MINUTES / 60} h of one-minute intervals, ${CONCURRENCY} batches in flight, Node ${process.version}`);
console.log(`\n${'backend'.padEnd(12)}${'batches/s'.padStart(11)}${'intervals/s'.padStart(13)}${'bytes/interval'.padStart(16)}`);
for (const r of reports) console.log(`${r.backend.padEnd(12)}${(QUERY_ONLY ? '-' : r.batchesPerS.toFixed(0)).padStart(11)}${(QUERY_ONLY ? '-' : r.intervalsPerS.toFixed(0)).padStart(13)}${r.bytesPerInterval.toFixed(1).padStart(16)}`);
console.log(`\n${'query over the whole range (ms)'.padEnd(36)}${reports.map((r) => `${r.backend} p50`.padStart(16) + `${r.backend} p95`.padStart(16)).join('')}`);
for (let i = 0; i < reports[0]!.queries.length; i++) {
  console.log(`${reports[0]!.queries[i]!.name.padEnd(36)}${reports.map((r) => ms(r.queries[i]!.p50).padStart(16) + ms(r.queries[i]!.p95).padStart(16)).join('')}`);
}
const sqlite = reports.find((r) => r.backend === 'sqlite');
const ch = reports.find((r) => r.backend === 'clickhouse');
if (ch) {
  const slowest = Math.max(...ch.queries.map((q) => q.p95));
  console.log(`\ngoal: ClickHouse answers every query in under 100 ms: slowest p95 ${slowest.toFixed(1)} ms (${slowest < 100 ? 'met' : 'MISSED'}${SERVICES * COPIES < 100 ? `, at ${SERVICES * COPIES} services, not the goal's 100` : ''})`);
}
if (ch && sqlite) {
  const ratio = ch.batchesPerS / sqlite.batchesPerS;
  console.log(`goal: ClickHouse ingests at least 5 times what SQLite does: ${ratio.toFixed(1)} times (${ratio >= 5 ? 'met' : 'MISSED'})`);
}
