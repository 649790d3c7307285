/**
 * # Ingest benchmark
 *
 * What it measures: how many batches, and how many transactions in them, a real collector stores
 * per second over HTTP on 127.0.0.1 (each answered 200 after its SQLite commit), against two
 * floors measured in the same run on the same bytes:
 *
 *   parse+validate  in this process: gunzip, JSON.parse and the compiled wire schema check — what
 *                   any collector must do with a batch before it can store it
 *   http discard    a plain node:http server that reads each body and answers 200: the transport
 *   collector       startCollector(): decompression, validation, the one-transaction rollup into
 *                   per-second, per-minute and per-hour rows, traces, commit with synchronous=FULL
 *   collector OTLP  the same collector taking OTLP/HTTP traces (POST /v1/traces): exports of 512
 *                   spans as an SDK's batch span processor sends them (64 server spans of 8 client
 *                   spans each, protobuf, gzip), each server span a transaction stored as a trace
 *                   and counted in the aggregates: spans/s on one core
 *
 * The batches are realistic agent flushes: one process, 20 endpoints, a 1 s interval each with
 * 20–120 transactions (five sketches per endpoint), three sampled traces of eight segments,
 * gzip-compressed. Four instances report every second, so each per-second row is merged 4 times
 * and each minute row up to 240 times, as in production. Every batch has its own batchId (no
 * duplicate shortcut). The servers run in their own process (pinned to CPU 1 when taskset
 * exists, the driver on CPU 0); the table shows their CPU time per batch too.
 *
 * Run (from the repository root, after `npm run build`):
 *   npm run bench:ingest                               10 s per phase (about 40 s in all)
 *   node bench/dist/ingest.js --duration 5 --concurrency 8 --batches 2000
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import Compile from 'typebox/compile';
import { BatchSchema } from '@loopscope/protocol/wire';
import protobuf from 'protobufjs';
import type { TargetMessage } from './servers/ingest-target.js';
import { intervalBody, seeded } from './synthetic.js';

const { values: opts } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '4' },
    batches: { type: 'string', default: '4000' },
  },
});
const DURATION_MS = Number(opts.duration) * 1000;
const CONCURRENCY = Number(opts.concurrency);
const POOL = Number(opts.batches);

const ENDPOINTS = 20;
const INSTANCES = 4;
const VARIANTS = 40; // distinct intervals per endpoint the batches are assembled from

function pin(cpu: number, pid = process.pid): boolean {
  try {
    execFileSync('taskset', ['-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ---- the batches -----------------------------------------------------------------------------

const rand = seeded(1);
const intervalOf = (endpoint: string): { json: string; count: number } => intervalBody(rand, endpoint, 20, 100);

function traceJson(service: string, endpoint: string, start: number, id: string): string {
  const segments = Array.from({ length: 8 }, (_, i) => ({
    id: i,
    parentId: null,
    name: i % 2 ? `GET http://upstream/api/${i}` : `SELECT * FROM puppies WHERE id = $${i}`,
    kind: i % 2 ? 'http' : 'db',
    start: i * 2,
    end: i * 2 + 5,
    onCriticalPath: i % 3 === 0,
  }));
  return JSON.stringify({
    traceId: id,
    service,
    endpoint,
    start,
    status: 200,
    error: false,
    response: 21.5,
    duration: 22,
    cpu: 3.2,
    external: 17,
    externalByKind: { db: 9, http: 12 },
    blocking: 0.4,
    segments,
    criticalPath: [0, 3, 6],
    truncated: false,
    droppedSegments: 0,
  });
}

interface Batch {
  gz: Buffer;
  rawBytes: number;
  transactions: number;
  /** OTLP exports: their spans */
  spans?: number;
}

/** OTLP exports of 512 spans: 64 transactions (server spans) of 8 client calls each, protobuf, gzip. */
function buildOtlpExports(count: number): Batch[] {
  const root = new protobuf.Root();
  const dir = fileURLToPath(new URL('../../packages/collector/proto/', import.meta.url));
  root.resolvePath = (_origin, target) => dir + target;
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
  const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
  const ns = (ms: number): string => (BigInt(Math.round(ms * 1000)) * 1000n).toString();
  const t0 = Date.now() - 60_000;
  const out: Batch[] = [];
  let id = 0;
  for (let b = 0; b < count; b++) {
    const spans: object[] = [];
    for (let t = 0; t < 64; t++) {
      const traceId = Buffer.from((++id).toString(16).padStart(32, '0'), 'hex');
      const server = Buffer.from(id.toString(16).padStart(16, '0'), 'hex');
      const start = t0 + b * 10 + t * 0.1;
      spans.push({ traceId, spanId: server, name: 'GET /api/resource/:id', kind: 2, startTimeUnixNano: ns(start), endTimeUnixNano: ns(start + 22), attributes: [str('http.request.method', 'GET'), str('http.route', `/api/resource${t % ENDPOINTS}/:id`), { key: 'http.response.status_code', value: { intValue: 200 } }] });
      for (let c = 0; c < 8; c++) {
        const spanId = Buffer.alloc(8);
        spanId.writeUInt32BE(id, 0);
        spanId.writeUInt32BE(c + 1, 4);
        spans.push({ traceId, spanId, parentSpanId: server, name: c % 2 ? 'GET' : 'SELECT puppies', kind: 3, startTimeUnixNano: ns(start + c * 2), endTimeUnixNano: ns(start + c * 2 + 5), attributes: c % 2 ? [str('http.request.method', 'GET'), str('url.full', `http://upstream:8080/api/${c}`)] : [str('db.system.name', 'postgresql'), str('db.query.text', 'SELECT * FROM puppies WHERE id = $1'), str('server.address', 'db')] });
      }
    }
    const bytes = Buffer.from(Request.encode(Request.fromObject({ resourceSpans: [{ resource: { attributes: [str('service.name', 'bench-otlp'), str('service.instance.id', `host:${b % INSTANCES}`)] }, scopeSpans: [{ spans }] }] })).finish());
    out.push({ gz: gzipSync(bytes), rawBytes: bytes.length, transactions: 64, spans: spans.length });
  }
  return out;
}

function buildBatches(): Batch[] {
  const endpoints = Array.from({ length: ENDPOINTS }, (_, e) => `${e % 3 ? 'GET' : 'POST'} /api/resource${e}/:id`);
  const variants = endpoints.map((e) => Array.from({ length: VARIANTS }, () => intervalOf(e)));
  const seconds = Math.ceil(POOL / INSTANCES);
  const t0 = Math.floor(Date.now() / 1000) * 1000 - seconds * 1000 - 5000;
  const run = Date.now().toString(36);
  const batches: Batch[] = [];
  for (let i = 0; i < POOL; i++) {
    const instance = i % INSTANCES;
    const start = t0 + Math.floor(i / INSTANCES) * 1000;
    let transactions = 0;
    const intervals = variants.map((vs) => {
      const v = vs[Math.floor(rand() * VARIANTS)]!;
      transactions += v.count;
      return `{"start":${start},${v.json}`;
    });
    const traces = [0, 1, 2].map((k) => traceJson('bench', endpoints[(i + k) % ENDPOINTS]!, start + k * 100, (i * 3 + k).toString(16).padStart(32, '0')));
    const json =
      `{"v":1,"batchId":"bench-${run}-${i}","service":"bench","instance":"host:${1000 + instance}","agent":{"name":"loopscope","version":"0.1.0"},` +
      `"sentAt":${start + 1000},"intervals":[${intervals.join(',')}],"traces":[${traces.join(',')}],"dropped":{"batches":0,"transactions":0,"traces":0}}`;
    batches.push({ gz: gzipSync(json), rawBytes: Buffer.byteLength(json), transactions });
  }
  return batches;
}

// ---- the phases ------------------------------------------------------------------------------

interface Result {
  name: string;
  batches: number;
  transactions: number;
  spans?: number;
  seconds: number;
  cpuMsPerBatch: number;
}

function parseAndValidate(batches: Batch[]): Result {
  const validator = Compile(BatchSchema);
  const started = performance.now();
  const cpu = process.cpuUsage();
  let n = 0;
  let transactions = 0;
  while (performance.now() - started < DURATION_MS) {
    const b = batches[n % batches.length]!;
    const value: unknown = JSON.parse(gunzipSync(b.gz).toString('utf8'));
    if (!validator.Check(value)) throw new Error('a benchmark batch is invalid');
    n++;
    transactions += b.transactions;
  }
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  return { name: 'parse+validate (in process)', batches: n, transactions, seconds, cpuMsPerBatch: (user + system) / 1000 / n };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(port: number, body: Buffer, otlp: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const [path, type] = otlp ? ['/v1/traces', 'application/x-protobuf'] : ['/v1/ingest', 'application/json'];
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': type, 'content-encoding': 'gzip', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function overHttp(name: string, mode: 'collector' | 'discard', batches: Batch[], unique: boolean): Promise<Result> {
  const target: ChildProcess = fork(fileURLToPath(new URL('./servers/ingest-target.js', import.meta.url)), [mode], { stdio: 'inherit' });
  const [listening] = (await once(target, 'message')) as [TargetMessage];
  if (listening.type !== 'listening') throw new Error('target did not start');
  pin(1, target.pid);
  // warm-up: 1 s of the same traffic, not counted (and not reused: every stored batch is new)
  let next = 0;
  /** with unique batches, each prepared batch is sent once: the run ends early when they run out */
  const limit = unique ? batches.length : Infinity;
  const drive = async (until: number): Promise<{ n: number; transactions: number; spans: number }> => {
    let n = 0;
    let transactions = 0;
    let spans = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < until && next < limit) {
          const b = batches[next++ % batches.length]!;
          const status = await post(listening.port, b.gz, b.spans !== undefined);
          if (status !== 200) throw new Error(`${name}: status ${status}`);
          n++;
          transactions += b.transactions;
          spans += b.spans ?? 0;
        }
      }),
    );
    return { n, transactions, spans };
  };
  await drive(performance.now() + 1000);
  target.send('start');
  const started = performance.now();
  const { n, transactions, spans } = await drive(started + DURATION_MS);
  const seconds = (performance.now() - started) / 1000;
  target.send('stop');
  const [usage] = (await once(target, 'message')) as [TargetMessage];
  target.disconnect();
  await once(target, 'exit');
  const cpuUs = usage.type === 'usage' ? usage.cpuUs : NaN;
  if (unique && next >= batches.length) console.log(`  (${name}: the ${batches.length} prepared batches ran out after ${seconds.toFixed(1)} s; use --batches for more)`);
  return { name, batches: n, transactions, ...(spans > 0 ? { spans } : {}), seconds, cpuMsPerBatch: cpuUs / 1000 / n };
}

// ---- main ------------------------------------------------------------------------------------

const pinned = pin(0);
console.log(`building ${POOL} batches (${ENDPOINTS} endpoints × 1 s, 3 traces, gzip)...`);
const batches = buildBatches();
const avg = (f: (b: Batch) => number): number => batches.reduce((s, b) => s + f(b), 0) / batches.length;
console.log(
  `a batch: ${(avg((b) => b.gz.length) / 1024).toFixed(1)} KB gzip, ${(avg((b) => b.rawBytes) / 1024).toFixed(1)} KB JSON, ${avg((b) => b.transactions).toFixed(0)} transactions; ` +
    `${DURATION_MS / 1000} s per phase, ${CONCURRENCY} requests in flight${pinned ? ', driver on CPU 0, server on CPU 1' : ' (no taskset: not pinned)'}\n`,
);

const results: Result[] = [parseAndValidate(batches)];
results.push(await overHttp('http discard (node:http)', 'discard', batches, false));
results.push(await overHttp('collector (SQLite, FULL sync)', 'collector', batches, true));
console.log(`building ${Math.ceil(POOL / 8)} OTLP exports (512 spans each, protobuf, gzip)...`);
results.push(await overHttp('collector OTLP (POST /v1/traces)', 'collector', buildOtlpExports(Math.ceil(POOL / 8)), true));
agent.destroy();

const floor = results[0]!;
const rows = results.map((r) => {
  const perSecond = r.batches / r.seconds;
  const spans = r.spans === undefined ? '' : `${(r.spans / r.seconds / 1000).toFixed(1)} k`;
  return [r.name, perSecond.toFixed(0), (r.transactions / r.seconds / 1000).toFixed(1) + ' k', spans, r.cpuMsPerBatch.toFixed(2), r.spans === undefined ? `${((100 * perSecond) / (floor.batches / floor.seconds)).toFixed(0)} %` : ''];
});
const header = ['', 'requests/s', 'transactions/s', 'spans/s', 'CPU ms/request', 'of parse+validate'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
for (const r of rows) console.log(line(r));
