/**
 * # One trace id on every request
 *
 * What it measures: what a client that sends the same `traceparent` on every request costs the
 * collector. A real collector (SQLite, in this process) takes 10 000 parts of one trace id (20
 * batches of 500 over HTTP, as agents would ship them), and, for comparison, one ordinary trace of
 * three services. Then, for each of the two trace ids:
 *
 *   api    GET /api/traces/:traceId over HTTP on 127.0.0.1, sequentially (median and slowest)
 *   page   the dashboard's trace page in Debian's Chromium (playwright-core), from `goto` until
 *          the waterfall shows every part the API answered (median and slowest)
 *
 * and the parts kept, `atPartLimit`, `dropped.parts` of /api/services, the rows of that trace id
 * in the database, and the database's size on disk (with its write-ahead log).
 *
 * Run (from the repository root, after `npm run build`):
 *   node bench/dist/trace-flood.js
 *   node bench/dist/trace-flood.js --parts 10000 --api-rounds 20 --page-rounds 5
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { chromium } from 'playwright-core';
import { DB_FILE, startCollector } from '@loopscope/collector';
import { MAX_TRACE_PARTS, type TraceAnswer, type WireBatch, type WireTrace } from '@loopscope/protocol';

const { values } = parseArgs({
  options: {
    parts: { type: 'string', default: '10000' },
    'api-rounds': { type: 'string', default: '20' },
    'page-rounds': { type: 'string', default: '5' },
  },
});
const PARTS = Number(values.parts);
const API_ROUNDS = Number(values['api-rounds']);
const PAGE_ROUNDS = Number(values['page-rounds']);

const T = Date.now() - 60_000;
const FLOOD = '9'.repeat(32);
const ORDINARY = 'e'.repeat(32);
const hex = (n: number): string => n.toString(16).padStart(16, '0');

/** A part of `traceId` of `service`: one http call (`callSpan`) from 10 % to 90 % of its 10 ms. */
function part(traceId: string, service: string, endpoint: string, start: number, spanId: string, parentSpanId: string | null, callSpan: string): WireTrace {
  return {
    traceId,
    spanId,
    parentSpanId,
    service,
    endpoint,
    start,
    status: 200,
    error: false,
    response: 10,
    duration: 10,
    cpu: 1,
    external: 8,
    externalByKind: { http: 8 },
    blocking: 0,
    segments: [{ id: 1, parentId: null, spanId: callSpan, name: 'GET next:80/x', kind: 'http', start: 1, end: 9, onCriticalPath: true }],
    criticalPath: [1],
    truncated: false,
    droppedSegments: 0,
  };
}

function batch(service: string, n: number, traces: WireTrace[]): WireBatch {
  return { v: 1, batchId: `flood-${service}-${process.pid}-${n}`, service, instance: `${service}-1:1`, agent: { name: 'loopscope', version: '0.1.0' }, sentAt: T + n, intervals: [], traces, dropped: { batches: 0, transactions: 0, traces: 0 } };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number): string => `${x.toFixed(1)} ms`;

const dataDir = mkdtempSync(join(tmpdir(), 'loopscope-flood-'));
// (10 000 parts of one service in a minute: past the collector's default trace limit, which is not what is measured here)
const collector = await startCollector({ port: 0, dataDir, logger: false, quotas: { tracesPerMinute: Number.MAX_SAFE_INTEGER } });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const send = async (b: WireBatch): Promise<void> => {
    const res = await fetch(`${collector.url}/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
    if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
  };
  // an ordinary trace: gateway → orders → inventory
  await send(batch('inventory', 0, [part(ORDINARY, 'inventory', 'GET /stock', T + 2, 'c'.repeat(16), '2'.repeat(16), '3'.repeat(16))]));
  await send(batch('orders', 0, [part(ORDINARY, 'orders', 'GET /order', T + 1, 'b'.repeat(16), '1'.repeat(16), '2'.repeat(16))]));
  await send(batch('gateway', 0, [part(ORDINARY, 'gateway', 'GET /checkout', T, 'a'.repeat(16), null, '1'.repeat(16))]));
  // the flood
  const flood = Array.from({ length: PARTS }, (_, i) => part(FLOOD, 'flood', 'GET /same', T + i, hex(i + 1), '7'.repeat(16), hex(1_000_000 + i)));
  const ingestStart = performance.now();
  for (let i = 0; i < flood.length; i += 500) await send(batch('flood', i, flood.slice(i, i + 500)));
  const ingestMs = performance.now() - ingestStart;

  const measure = async (traceId: string) => {
    const api: number[] = [];
    let answer: TraceAnswer | undefined;
    for (let r = 0; r < API_ROUNDS; r++) {
      const t0 = performance.now();
      const res = await fetch(`${collector.url}/api/traces/${traceId}`);
      answer = (await res.json()) as TraceAnswer;
      api.push(performance.now() - t0);
    }
    const page: number[] = [];
    const shown = answer!.parts.length - 1; // every part but the root's (a flood's parts all name a parent nobody sent: each is a row of its own)
    for (let r = 0; r < PAGE_ROUNDS; r++) {
      const tab = await browser.newPage();
      const t0 = performance.now();
      await tab.goto(`${collector.url}/trace?id=${traceId}`);
      await tab.waitForFunction(`document.querySelectorAll('section.waterfall .wf-part').length >= ${shown}`, undefined, { timeout: 30_000 });
      page.push(performance.now() - t0);
      await tab.close();
    }
    return { answer: answer!, api, page };
  };
  const ordinary = await measure(ORDINARY);
  const flooded = await measure(FLOOD);

  const services = (await (await fetch(`${collector.url}/api/services?from=${T - 60_000}&to=${T + PARTS + 60_000}`)).json()) as Array<{ service: string; dropped: { parts: number } }>;
  const db = new Database(join(dataDir, DB_FILE), { readonly: true });
  const rows = (db.prepare('SELECT COUNT(*) AS n FROM traces WHERE traceId = ?').get(FLOOD) as { n: number }).n;
  db.close();
  const onDisk = readdirSync(dataDir).reduce((sum, f) => sum + statSync(join(dataDir, f)).size, 0);
  const sent = flood.reduce((sum, p) => sum + JSON.stringify(p).length, 0);

  console.log(`Node ${process.version}; ${PARTS} parts of one trace id in ${Math.ceil(PARTS / 500)} batches of 500, ingested in ${ms(ingestMs)}; part limit ${MAX_TRACE_PARTS}`);
  console.log(`flooded trace: ${flooded.answer.parts.length} parts kept, atPartLimit ${String(flooded.answer.atPartLimit)}, dropped.parts ${services.find((s) => s.service === 'flood')?.dropped.parts}, ${rows} rows in the database`);
  console.log(`database on disk (with its WAL): ${(onDisk / 1e6).toFixed(2)} MB; the parts sent, as JSON: ${(sent / 1e6).toFixed(2)} MB`);
  console.log('| trace | parts | GET /api/traces/:id median (slowest of ' + API_ROUNDS + ') | trace page in Chromium median (slowest of ' + PAGE_ROUNDS + ') |');
  console.log('|---|---|---|---|');
  for (const [name, m] of [['ordinary, 3 services', ordinary], [`one trace id on ${PARTS} requests`, flooded]] as const) {
    console.log(`| ${name} | ${m.answer.parts.length} | ${ms(median(m.api))} (${ms(Math.max(...m.api))}) | ${ms(median(m.page))} (${ms(Math.max(...m.page))}) |`);
  }
} finally {
  await browser.close();
  await collector.close();
  rmSync(dataDir, { recursive: true, force: true });
}
