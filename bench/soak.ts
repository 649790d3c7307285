/**
 * # Soak
 *
 * What it checks: that nothing grows or goes missing when an app under the agent and a collector
 * run for a long time at a steady load. For `--minutes` (5 by default, at most 60), all on 127.0.0.1:
 *
 *   collector   startCollector() (what `loopscope up` runs) in a process of its own, SQLite in a
 *               temp directory, with short retention so that pruning runs within the soak: for a
 *               run of T minutes, per-second aggregates kept max(30 s, T/5), traces and batch ids
 *               max(45 s, 3T/10), per-minute aggregates max(60 s, 2T/5) (10 minutes: 2, 3 and 4
 *               minutes), per-hour aggregates the default 90 days; pruned every 10 s
 *   app         servers/soak-app.ts under `--import loopscope/register` (service `soak-app`),
 *               flushing to the collector every second, with its upstream (servers/upstream.ts),
 *               driven open-loop at `--rate` requests/s (200) of a fixed mix: fast, parallel http
 *               calls, a file read under a different URL each time, slow fetches, CPU, 500s,
 *               requests the client abandons at 50 ms, and work that goes on after the response
 *   agents      `--agents` (50) simulated agents: 10 services (sim-0..sim-9) of 5 instances each,
 *               each instance posting once a second a gzip batch like an agent's flush: 10
 *               endpoints with sketches, 2 traces, its event loop, 2 call targets
 *
 * Every `--sample` seconds (5) it records the app's and the collector's heap after a full GC and
 * resident set (each asked over IPC; the GC is the child's own), the SQLite file and its WAL, and
 * the collector's request counters (/metrics). At the end, after the load has stopped and the
 * agent's last flush has landed:
 *
 *   memory   least-squares slope (MB per minute) of each process's RSS and heap after the warm-up
 *            (the first 20 % of the run), with the values at its start and end. Flat: RSS under
 *            1 MB/min and heap under 0.5 MB/min. At 200 requests/s a heap that kept 40 bytes per
 *            request would grow 0.5 MB/min: one retained object per request fails the check; an
 *            RSS moves with V8's and the allocator's sizing by a few MB either way, hence its looser bound.
 *   disk     the database and its WAL at the longest retention plus two prunes (when everything
 *            older than it has been deleted once) and at the end; bounded if the end is no more
 *            than 15 % above it (SQLite reuses the pages pruning frees, the file does not shrink).
 *            Judged when the run lasts at least that long plus a minute.
 *   app      every request the app received was closed by the agent (none open, none truncated),
 *            and every one is counted at the collector: the sum of /api/endpoints counts for
 *            `soak-app` over the whole run (read from per-hour rows, kept 90 days, so retention
 *            takes nothing from it) equals the requests received, its errors the 500s answered,
 *            its aborted the requests the client gave up; /metrics' counters agree; `dropped` of
 *            /api/services is zero
 *   agents   every simulated batch answered 200, none with records rejected, and the collector's
 *            count for their services equals the transactions in the batches it acknowledged
 *
 * It prints a table and a verdict per check, writes bench/results/soak-*.json, and exits 1 if a
 * check failed.
 *
 * Run (from the repository root):
 *   npm run bench:soak                       5 minutes
 *   npm run bench:soak -- --minutes 10
 *   node bench/dist/soak.js --minutes 2 --rate 100 --agents 20
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { DB_FILE } from '@loopscope/collector';
import { addValue, newSketch, roundMs, toWire, type EndpointSummary, type ServiceSummary } from '@loopscope/protocol';
import { saveResults, serverFile, startProcess, stopProcess } from './driver.js';
import type { SoakAppReport } from './servers/soak-app.js';
import { intervalBody, seeded, skewedBy } from './synthetic.js';
import type { SoakCollectorMessage } from './servers/soak-collector.js';
import type { MemoryMessage } from './servers/soak-memory.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    rate: { type: 'string', default: '200' },
    agents: { type: 'string', default: '50' },
    sample: { type: 'string', default: '5' },
  },
});
const MINUTES = Number(values.minutes);
if (!(MINUTES > 0 && MINUTES <= 60)) throw new Error(`--minutes ${values.minutes}: expected a number of minutes above 0, at most 60`);
const RATE = Number(values.rate);
const AGENTS = Math.round(Number(values.agents));
const SAMPLE_MS = Number(values.sample) * 1000;
const RUN_MS = MINUTES * 60_000;
const WARMUP_MS = RUN_MS * 0.2;
const S = 1000;
const RETENTION = {
  seconds: Math.max(30 * S, RUN_MS / 5),
  traces: Math.max(45 * S, (RUN_MS * 3) / 10),
  batches: Math.max(45 * S, (RUN_MS * 3) / 10),
  minutes: Math.max(60 * S, (RUN_MS * 2) / 5),
};
const PRUNE_MS = 10_000;
/** When everything older than the longest retention has been pruned once: the disk should hold steady from here. */
const LEVEL_AT_MS = RETENTION.minutes + 2 * PRUNE_MS;
const LIMITS = { rssMbPerMin: 1, heapMbPerMin: 0.5, diskGrowth: 0.15 };
const MB = 1024 * 1024;
const APP_SERVICE = 'soak-app';

// ---- the processes ---------------------------------------------------------------------------

function forkCollector(): Promise<{ child: ChildProcess; port: number; dataDir: string }> {
  const child = fork(serverFile('soak-collector'), [JSON.stringify(RETENTION), String(PRUNE_MS)], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('message', (m: SoakCollectorMessage) => resolve({ child, port: m.port, dataDir: m.dataDir }));
    child.once('exit', (code) => reject(new Error(`the collector exited (code ${code}) before it listened`)));
  });
}

function ask<T>(child: ChildProcess, question: string, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no '${type}' within 30 s`));
    }, 30_000);
    const onMessage = (m: { type: string }) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m as T);
    };
    child.on('message', onMessage);
    child.send(question);
  });
}

const memoryOf = (child: ChildProcess): Promise<MemoryMessage> => ask<MemoryMessage>(child, 'memory', 'memory');

function diskBytes(dataDir: string): { db: number; wal: number } {
  const size = (f: string): number => (existsSync(f) ? statSync(f).size : 0);
  const db = path.join(dataDir, DB_FILE);
  return { db: size(db), wal: size(`${db}-wal`) };
}

/** Bytes per table and index (SQLite's dbstat), from a read-only connection of this process. */
function tableBytes(dataDir: string): Record<string, number> {
  const db = new Database(path.join(dataDir, DB_FILE), { readonly: true });
  try {
    const rows = db.prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as Array<{ name: string; bytes: number }>;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    const page = db.pragma('page_size', { simple: true }) as number;
    return { ...Object.fromEntries(rows.map((r) => [r.name, r.bytes])), '(free pages)': free * page };
  } finally {
    db.close();
  }
}

// ---- the app's load --------------------------------------------------------------------------

/** The mix, in requests out of 100. */
const MIX: Array<{ kind: string; weight: number }> = [
  { kind: 'fast', weight: 30 },
  { kind: 'io', weight: 20 },
  { kind: 'users', weight: 15 },
  { kind: 'slow', weight: 10 },
  { kind: 'cpu', weight: 8 },
  { kind: 'fail', weight: 7 },
  { kind: 'abort', weight: 5 },
  { kind: 'after', weight: 5 },
];
/** A shuffled round of 100 kinds, repeated: every second of load has the same mix. */
const ROUND = (() => {
  const round = MIX.flatMap((m) => Array.from({ length: m.weight }, () => m.kind));
  let seed = 7;
  for (let i = round.length - 1; i > 0; i--) {
    seed = (seed * 16807) % 2147483647;
    const j = seed % (i + 1);
    [round[i], round[j]] = [round[j]!, round[i]!];
  }
  return round;
})();
const ABORT_AFTER_MS = 50;
/** The app answers `abort` after 300 ms: a client that goes away later than this may be too late. */
const ABORT_LATE_MS = 250;

interface LoadCounts {
  sent: number;
  /** answered, by status */
  byStatus: Record<string, number>;
  /** abandoned by the client on purpose (the `abort` requests) */
  abandoned: number;
  /** failed otherwise (a connection error) */
  failed: number;
  failures: Record<string, number>;
  inFlight: number;
  /** `abort` requests given up more than ABORT_LATE_MS after they were sent */
  lateAborts: number;
}

function startLoad(port: number): { counts: LoadCounts; stop: () => Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const counts: LoadCounts = { sent: 0, byStatus: {}, abandoned: 0, failed: 0, failures: {}, inFlight: 0, lateAborts: 0 };
  let n = 0;
  let user = 0;
  const one = (): void => {
    const kind = ROUND[n++ % ROUND.length]!;
    const url = kind === 'users' ? `/users/${++user}` : `/${kind}`;
    counts.sent++;
    counts.inFlight++;
    let done = false;
    const finish = (): void => {
      if (!done) counts.inFlight--;
      done = true;
    };
    const req = http.get({ host: '127.0.0.1', port, path: url, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        counts.byStatus[res.statusCode!] = (counts.byStatus[res.statusCode!] ?? 0) + 1;
        finish();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      if (kind === 'abort') counts.abandoned++;
      else {
        counts.failed++;
        counts.failures[err.code ?? err.message] = (counts.failures[err.code ?? err.message] ?? 0) + 1;
      }
      finish();
    });
    if (kind === 'abort') {
      const sentAt = performance.now();
      setTimeout(() => {
        // this process's loop can be late on a busy machine: past 250 ms the app may have answered
        // (at 300 ms) before the client went away, and sees no abort; counted apart
        if (performance.now() - sentAt > ABORT_LATE_MS) counts.lateAborts++;
        req.destroy();
      }, ABORT_AFTER_MS);
    }
  };
  // open loop: every 10 ms the requests due by then, whatever the answers
  const started = performance.now();
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    while (counts.sent < due) one();
  }, 10);
  return {
    counts,
    async stop() {
      clearInterval(timer);
      const until = Date.now() + 30_000;
      while (counts.inFlight > 0 && Date.now() < until) await sleep(50);
      agent.destroy();
    },
  };
}

// ---- the simulated agents --------------------------------------------------------------------

const rand = seeded(26);
const skewed = skewedBy(rand);
const SIM_SERVICES = 10;
const SIM_ENDPOINTS = 10;
const VARIANTS = 20;
const intervalOf = (endpoint: string): { json: string; count: number } => intervalBody(rand, endpoint, 5, 60, true);

function sketchJson(n: number, scale: number): string {
  const s = newSketch();
  for (let i = 0; i < n; i++) addValue(s, skewed(scale));
  return JSON.stringify(toWire(s));
}

const simEndpoints = Array.from({ length: SIM_ENDPOINTS }, (_, e) => `${e % 3 ? 'GET' : 'POST'} /api/thing${e}/:id`);
const simIntervals = simEndpoints.map((e) => Array.from({ length: VARIANTS }, () => intervalOf(e)));
const delays = Array.from({ length: VARIANTS }, () => sketchJson(100, 1));
const callDurations = Array.from({ length: VARIANTS }, () => sketchJson(40, 2));

let traceSerial = 0;
function traceJson(service: string, start: number): string {
  const traceId = (++traceSerial).toString(16).padStart(32, '0');
  const endpoint = simEndpoints[traceSerial % SIM_ENDPOINTS]!;
  const segments = Array.from({ length: 6 }, (_, i) => ({ id: i, parentId: null, name: i % 2 ? `GET http://sim-db:5432/q${i}` : `SELECT * FROM things WHERE id = $${i}`, kind: i % 2 ? 'http' : 'db', start: i * 2, end: i * 2 + 5, onCriticalPath: i % 3 === 0 }));
  return JSON.stringify({ traceId, service, endpoint, start, status: 200, error: false, response: 16.5, duration: 17, cpu: 2.1, external: 13, externalByKind: { db: 7, http: 8 }, blocking: 0.3, segments, criticalPath: [0, 3], truncated: false, droppedSegments: 0, slices: [[0, 1], [15, 16]], waits: [] });
}

interface SimCounts {
  sent: number;
  ok: number;
  /** answers other than 200, by status, and failed requests */
  other: Record<string, number>;
  /** answers that named records left out of the batch */
  rejected: number;
  /** transactions in the batches answered 200, per service */
  transactions: Record<string, number>;
}

function simBatch(k: number, serial: number): { body: Buffer; service: string; transactions: number } {
  const service = `sim-${k % SIM_SERVICES}`;
  const start = Math.floor(Date.now() / 1000) * 1000 - 1000;
  let transactions = 0;
  const intervals = simIntervals.map((vs) => {
    const v = vs[Math.floor(rand() * VARIANTS)]!;
    transactions += v.count;
    return `{"start":${start},${v.json}`;
  });
  const traces = [traceJson(service, start + 100), traceJson(service, start + 600)];
  const pick = (a: string[]): string => a[Math.floor(rand() * a.length)]!;
  const loop = `{"start":${start},"ms":1000,"delay":${pick(delays)},"busyMs":${roundMs(100 + rand() * 200)},"idleMs":${roundMs(600 + rand() * 100)},"gc":{"minor":{"count":3,"ms":1.5}},"cpu":{"user":${roundMs(rand() * 200)},"system":${roundMs(rand() * 30)}},"memory":{"rss":${80 * MB},"heapUsed":${30 * MB},"heapTotal":${40 * MB}},"longTasks":[]}`;
  const calls = ['sim-db:5432', 'sim-cache:6379'].map((target, i) => `{"start":${start},"ms":1000,"kind":"${i ? 'cache' : 'db'}","target":"${target}","count":40,"errors":0,"duration":${pick(callDurations)}}`);
  const json =
    `{"v":1,"batchId":"soak-${process.pid}-${k}-${serial}","service":"${service}","instance":"${service}-host${Math.floor(k / SIM_SERVICES)}:${1000 + k}","agent":{"name":"loopscope","version":"0.1.0"},` +
    `"sentAt":${start + 1000},"intervals":[${intervals.join(',')}],"traces":[${traces.join(',')}],"loop":${loop},"calls":[${calls.join(',')}],"dropped":{"batches":0,"transactions":0,"traces":0}}`;
  return { body: gzipSync(json), service, transactions };
}

function post(port: number, agent: http.Agent, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/ingest', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function startSims(port: number): { counts: SimCounts; stop: () => Promise<void> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: AGENTS });
  const counts: SimCounts = { sent: 0, ok: 0, other: {}, rejected: 0, transactions: {} };
  const pending = new Set<Promise<void>>();
  const timers: NodeJS.Timeout[] = [];
  for (let k = 0; k < AGENTS; k++) {
    let serial = 0;
    const send = (): void => {
      const batch = simBatch(k, serial++);
      counts.sent++;
      const p = post(port, agent, batch.body).then(
        ({ status, text }) => {
          if (status !== 200) counts.other[status] = (counts.other[status] ?? 0) + 1;
          else {
            counts.ok++;
            counts.transactions[batch.service] = (counts.transactions[batch.service] ?? 0) + batch.transactions;
            if ((JSON.parse(text) as { rejected?: unknown }).rejected !== undefined) counts.rejected++;
          }
        },
        (err: NodeJS.ErrnoException) => {
          counts.other[err.code ?? err.message] = (counts.other[err.code ?? err.message] ?? 0) + 1;
        },
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    };
    // each agent at its own phase of the second, as independent processes would be
    timers.push(
      setTimeout(() => {
        send();
        timers.push(setInterval(send, 1000));
      }, Math.floor((k * 1000) / AGENTS)),
    );
  }
  return {
    counts,
    async stop() {
      for (const t of timers) clearTimeout(t);
      await Promise.all(pending);
      agent.destroy();
    },
  };
}

// ---- the collector's answers -----------------------------------------------------------------

async function getJson<T>(port: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** The sums of /metrics' counters per service: requests, errors, aborted; and the over-limit and rejected records. */
async function metricsCounters(port: number): Promise<{ requests: Record<string, number>; errors: Record<string, number>; aborted: Record<string, number>; overLimit: number; rejected: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = { requests: {} as Record<string, number>, errors: {} as Record<string, number>, aborted: {} as Record<string, number>, overLimit: 0, rejected: 0 };
  for (const line of text.split('\n')) {
    const m = /^loopscope_(requests|errors|aborted|over_limit|rejected_records)_total\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const value = Number(m[3]);
    if (m[1] === 'over_limit') out.overLimit += value;
    else if (m[1] === 'rejected_records') out.rejected += value;
    else {
      const service = /service="([^"]*)"/.exec(m[2]!)?.[1] ?? '';
      const into = out[m[1] as 'requests' | 'errors' | 'aborted'];
      into[service] = (into[service] ?? 0) + value;
    }
  }
  return out;
}

// ---- figures ---------------------------------------------------------------------------------

interface Sample {
  /** ms since the load started */
  t: number;
  app: MemoryMessage;
  collector: MemoryMessage;
  /** VmRSS of /proc/PID/status (bytes) */
  appRss: number;
  collectorRss: number;
  db: number;
  wal: number;
  /** the collector's count of the app's transactions and of all (/metrics) */
  appCounted: number;
  allCounted: number;
}

function vmRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) * 1024;
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

const mb = (bytes: number): string => (bytes / MB).toFixed(1);
const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

// ---- main ------------------------------------------------------------------------------------

console.log(
  `soak: ${MINUTES} min; app at ${RATE} req/s (${MIX.map((m) => `${m.kind} ${m.weight} %`).join(', ')}); ${AGENTS} simulated agents at 1 batch/s; ` +
    `retention seconds ${RETENTION.seconds / S} s, traces and batch ids ${RETENTION.traces / S} s, minutes ${RETENTION.minutes / S} s, hours 90 d; pruned every ${PRUNE_MS / S} s; a sample every ${SAMPLE_MS / S} s`,
);

const collector = await forkCollector();
const upstream = await startProcess(serverFile('upstream'), { cpu: '0,1' });
const app = await startProcess(serverFile('soak-app'), {
  cpu: '0,1',
  execArgv: ['--import', 'loopscope/register'],
  env: { LOOPSCOPE_SERVICE: APP_SERVICE, LOOPSCOPE_COLLECTOR: `http://127.0.0.1:${collector.port}`, UPSTREAM_URL: `http://127.0.0.1:${upstream.port}` },
});
const runStart = Date.now();
const samples: Sample[] = [];
let failed = false;
let load: ReturnType<typeof startLoad> | undefined;
let sims: ReturnType<typeof startSims> | undefined;
try {
  const started = performance.now();
  load = startLoad(app.port);
  sims = startSims(collector.port);
  let nextSample = 0;
  while (performance.now() - started < RUN_MS) {
    const t = performance.now() - started;
    if (t >= nextSample) {
      const [appMem, collectorMem, counters] = await Promise.all([memoryOf(app.child), memoryOf(collector.child), metricsCounters(collector.port)]);
      const disk = diskBytes(collector.dataDir);
      samples.push({ t, app: appMem, collector: collectorMem, appRss: vmRss(app.child.pid!), collectorRss: vmRss(collector.child.pid!), ...disk, appCounted: counters.requests[APP_SERVICE] ?? 0, allCounted: sum(counters.requests) });
      const s = samples[samples.length - 1]!;
      if (samples.length % Math.max(1, Math.round(60_000 / SAMPLE_MS)) === 1) {
        console.log(
          `${(t / 60_000).toFixed(1)} min: app RSS ${mb(s.appRss)} MB heap ${mb(s.app.heapUsed)} MB; collector RSS ${mb(s.collectorRss)} MB heap ${mb(s.collector.heapUsed)} MB external ${mb(s.collector.external)} MB; ` +
            `db ${mb(s.db)} + WAL ${mb(s.wal)} MB; requests sent ${load.counts.sent}, simulated batches ${sims.counts.sent}`,
        );
      }
      nextSample += SAMPLE_MS;
    }
    await sleep(Math.min(1000, Math.max(10, nextSample - (performance.now() - started))));
  }
  console.log('load over; waiting for the last answers and the agent\'s last flush...');
  await Promise.all([load.stop(), sims.stop()]);
  // the agent delivers, then ships every second: wait until the app's count stops moving
  let report = await ask<SoakAppReport>(app.child, 'report', 'report');
  const range = `from=${Math.floor(runStart / 3_600_000) * 3_600_000 - 3_600_000}&to=${Date.now() + 3_600_000}`;
  const appCount = async (): Promise<EndpointSummary[]> => getJson<EndpointSummary[]>(collector.port, `/api/endpoints?service=${APP_SERVICE}&${range}`);
  let appRows = await appCount();
  for (let i = 0; i < 20 && sum(Object.fromEntries(appRows.map((r) => [r.endpoint, r.count]))) !== report.transactions; i++) {
    await sleep(1000);
    report = await ask<SoakAppReport>(app.child, 'report', 'report');
    appRows = await appCount();
  }
  const tables = tableBytes(collector.dataDir);
  const services = await getJson<ServiceSummary[]>(collector.port, `/api/services?${range}`);
  const counters = await metricsCounters(collector.port);
  const simCounted: Record<string, number> = {};
  for (let s = 0; s < SIM_SERVICES; s++) {
    const rows = await getJson<EndpointSummary[]>(collector.port, `/api/endpoints?service=sim-${s}&${range}`);
    simCounted[`sim-${s}`] = rows.reduce((a, r) => a + r.count, 0);
  }

  // ---- memory
  const after = samples.filter((s) => s.t >= WARMUP_MS);
  const lastHalf = samples.filter((s) => s.t >= RUN_MS / 2);
  const series: Array<{ name: string; value: (s: Sample) => number; limit: number }> = [
    { name: 'app RSS', value: (s) => s.appRss, limit: LIMITS.rssMbPerMin },
    { name: 'app heap after GC', value: (s) => s.app.heapUsed, limit: LIMITS.heapMbPerMin },
    { name: 'collector RSS', value: (s) => s.collectorRss, limit: LIMITS.rssMbPerMin },
    { name: 'collector heap after GC', value: (s) => s.collector.heapUsed, limit: LIMITS.heapMbPerMin },
  ];
  const perMin = (points: Sample[], value: (s: Sample) => number): number => slope(points.map((s) => [s.t / 60_000, value(s) / MB]));
  const memory = series.map(({ name, value, limit }) => {
    const mbPerMin = perMin(after, value);
    return { name, start: value(after[0]!), end: value(after[after.length - 1]!), max: Math.max(...after.map(value)), mbPerMin, lastHalfMbPerMin: perMin(lastHalf, value), limit, flat: mbPerMin < limit };
  });
  console.log(`\nmemory after the warm-up (${(WARMUP_MS / 60_000).toFixed(1)} min) to the end, ${after.length} samples:`);
  console.log('| process | at warm-up end (MB) | at the end (MB) | highest (MB) | slope (MB/min) | slope, second half (MB/min) | limit (MB/min) | verdict |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const m of memory) console.log(`| ${m.name} | ${mb(m.start)} | ${mb(m.end)} | ${mb(m.max)} | ${m.mbPerMin.toFixed(3)} | ${m.lastHalfMbPerMin.toFixed(3)} | ${m.limit} | ${m.flat ? 'flat' : 'NOT FLAT'} |`);

  // ---- disk
  const total = (s: Sample): number => s.db + s.wal;
  const atLevel = samples.find((s) => s.t >= LEVEL_AT_MS);
  const last = samples[samples.length - 1]!;
  const judged = atLevel !== undefined && last.t - atLevel.t >= 60_000;
  const levelled = samples.filter((s) => s.t >= LEVEL_AT_MS);
  const diskSlope = levelled.length > 1 ? perMin(levelled, total) : NaN;
  const diskOk = !judged || total(last) <= total(atLevel) * (1 + LIMITS.diskGrowth);
  const byMinute = samples.filter((s, i) => i === 0 || Math.floor(s.t / 60_000) > Math.floor(samples[i - 1]!.t / 60_000) || s === last);
  console.log(`\ndisk (the database + its WAL, MB) by minute: ${byMinute.map((s) => `${(s.t / 60_000).toFixed(1)}: ${mb(s.db)}+${mb(s.wal)}`).join(', ')}`);
  console.log(`largest tables and indexes at the end (MB): ${Object.entries(tables).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, b]) => `${n} ${mb(b)}`).join(', ')}`);
  const diskLine = judged
    ? `disk: ${mb(total(atLevel))} MB at ${(atLevel.t / 60_000).toFixed(1)} min (longest retention + 2 prunes), ${mb(total(last))} MB at the end (${(100 * (total(last) / total(atLevel) - 1)).toFixed(1)} %, limit +${LIMITS.diskGrowth * 100} %), slope since ${diskSlope.toFixed(3)} MB/min: ${diskOk ? 'bounded' : 'NOT BOUNDED'}`
    : `disk: not judged (the run ends less than a minute after the longest retention + 2 prunes, ${(LEVEL_AT_MS / 60_000).toFixed(1)} min); ${mb(total(last))} MB at the end`;
  console.log(diskLine);

  // ---- the app's transactions
  const counted = appRows.reduce((a, r) => a + r.count, 0);
  const countedErrors = appRows.reduce((a, r) => a + r.errors, 0);
  const countedAborted = appRows.reduce((a, r) => a + r.aborted, 0);
  const answered = sum(load.counts.byStatus);
  const appService = services.find((s) => s.service === APP_SERVICE);
  const dropped = appService?.dropped ?? { batches: NaN, transactions: NaN, traces: NaN, parts: NaN, cut: NaN };
  const open = report.requests - report.transactions;
  const appChecks: Array<[string, boolean]> = [
    [`requests sent ${load.counts.sent} = answered ${answered} (${Object.entries(load.counts.byStatus).map(([s, n]) => `${n}× ${s}`).join(', ')}) + abandoned by the client ${load.counts.abandoned} + failed ${load.counts.failed}${load.counts.failed > 0 ? ` (${JSON.stringify(load.counts.failures)})` : ''}`, load.counts.failed === 0 && load.counts.sent === answered + load.counts.abandoned],
    [`the app received ${report.requests} requests; the agent closed ${report.transactions} transactions (left open: ${open}; truncated: ${report.truncated})`, report.requests === load.counts.sent && open === 0 && report.truncated === 0],
    [`the collector counts ${counted} transactions of ${APP_SERVICE} over the run (/api/endpoints), /metrics ${counters.requests[APP_SERVICE] ?? 0}; the app received ${report.requests}`, counted === report.requests && counters.requests[APP_SERVICE] === counted],
    [
      `errors counted ${countedErrors} = 500s answered ${load.counts.byStatus['500'] ?? 0}; aborted counted ${countedAborted} = seen by the agent ${report.aborted}, of ${load.counts.abandoned} abandoned by the client (${load.counts.lateAborts} of them more than ${ABORT_LATE_MS} ms after sending)`,
      countedErrors === (load.counts.byStatus['500'] ?? 0) && countedAborted === report.aborted && countedAborted <= load.counts.abandoned && countedAborted >= load.counts.abandoned - load.counts.lateAborts,
    ],
    [`dropped by the agent: batches ${dropped.batches}, transactions ${dropped.transactions}; trace parts refused ${dropped.parts}, values cut ${dropped.cut}; records with a segment ending before its start ${report.inverted}`, dropped.batches === 0 && dropped.transactions === 0 && dropped.parts === 0 && dropped.cut === 0 && report.inverted === 0],
  ];
  const simTotal = sum(sims.counts.transactions);
  const simCountedTotal = sum(simCounted);
  const simChecks: Array<[string, boolean]> = [
    [`simulated batches sent ${sims.counts.sent}, answered 200 ${sims.counts.ok}${Object.keys(sims.counts.other).length > 0 ? `, otherwise ${JSON.stringify(sims.counts.other)}` : ''}; answers naming rejected records ${sims.counts.rejected}`, sims.counts.ok === sims.counts.sent && sims.counts.rejected === 0],
    [`their transactions acknowledged ${simTotal}, counted at the collector ${simCountedTotal} (${Object.entries(simCounted).filter(([s, n]) => n !== sims!.counts.transactions[s]).map(([s, n]) => `${s}: ${n} of ${sims!.counts.transactions[s]}`).join(', ') || 'every service exact'})`, simCountedTotal === simTotal && Object.entries(simCounted).every(([s, n]) => n === sims!.counts.transactions[s])],
    [`over limits ${counters.overLimit}, rejected records ${counters.rejected} (/metrics)`, counters.overLimit === 0 && counters.rejected === 0],
  ];
  // the agent ships at most 20 traces kept for an error or an abort per interval (export/sampling.ts) and
  // counts the others as dropped traces: 7 % failing and 5 % abandoned of 200 requests/s are 24 a second
  const keepWorthy = ((MIX.find((m) => m.kind === 'fail')!.weight + MIX.find((m) => m.kind === 'abort')!.weight) * RATE) / 100;
  const tracesNote = `traces of errors and aborts over the agent's 20 per second, counted as dropped: ${dropped.traces} (${keepWorthy} such requests a second; not a loss of transactions)`;
  console.log('\ntransactions:');
  for (const [text, ok] of [...appChecks, ...simChecks]) console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${text}`);
  console.log(`       ${tracesNote}`);

  const verdicts: Array<[string, boolean]> = [
    ...memory.map((m): [string, boolean] => [`${m.name} ${m.flat ? 'flat' : 'not flat'}: ${m.mbPerMin.toFixed(3)} MB/min after the warm-up (limit ${m.limit})`, m.flat]),
    [diskLine, diskOk],
    ['every app request counted and closed', appChecks.every(([, ok]) => ok)],
    ['every simulated batch acknowledged and counted', simChecks.every(([, ok]) => ok)],
  ];
  console.log('\nverdicts:');
  for (const [text, ok] of verdicts) console.log(`  ${ok ? 'PASS' : 'FAIL'} ${text}`);
  failed = verdicts.some(([, ok]) => !ok);
  saveResults('soak', {
    options: { minutes: MINUTES, rate: RATE, agents: AGENTS, sampleMs: SAMPLE_MS, retention: RETENTION, pruneEveryMs: PRUNE_MS, mix: MIX, limits: LIMITS },
    memory,
    disk: { judged, atLevel: atLevel && { t: atLevel.t, bytes: total(atLevel) }, end: total(last), slopeMbPerMin: diskSlope, tables },
    app: { load: load.counts, report, counted, countedErrors, countedAborted, metrics: counters.requests[APP_SERVICE], dropped },
    sims: { ...sims.counts, counted: simCounted },
    tracesNote,
    verdicts,
    samples,
  });
} finally {
  await load?.stop();
  await sims?.stop();
  await stopProcess(app.child);
  await stopProcess(upstream.child);
  const exited = once(collector.child, 'exit');
  collector.child.disconnect();
  const killer = setTimeout(() => collector.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}
process.exitCode = failed ? 1 : 0;
