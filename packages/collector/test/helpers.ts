import assert from 'node:assert/strict';
/** Real parts for the collector's tests: batches built by hand, a collector on 127.0.0.1, HTTP. */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { METRICS, addValue, newSketch, roundMs, toWire, type MetricName, type WireBatch, type WireInterval, type WireLoop, type WireTrace } from '@loopscope/protocol';
import { startCollector, type Collector, type CollectorOptions } from '../src/index.js';

export type Tx = Record<MetricName, number> & { error: boolean };

/** A deterministic pseudo-random source (mulberry32), so a failing test fails the same way again. */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A transaction with plausible, skewed numbers (µs precision, as the agent sends them). */
export function randomTx(rand: () => number, errorRate = 0.1): Tx {
  const skew = (scale: number): number => roundMs(scale * Math.exp(rand() * 4) * (0.5 + rand()));
  const cpu = skew(0.2);
  const external = rand() < 0.2 ? 0 : skew(2);
  const blocking = skew(0.05);
  const response = roundMs(cpu + external + blocking + skew(0.1));
  return { response, duration: roundMs(response + (rand() < 0.3 ? skew(1) : 0)), cpu, external, blocking, error: rand() < errorRate };
}

export function interval(endpoint: string, start: number, txs: Tx[], ms = 1000): WireInterval {
  const sketches = Object.fromEntries(
    METRICS.map((m) => {
      const s = newSketch();
      for (const tx of txs) addValue(s, tx[m]);
      return [m, toWire(s)];
    }),
  ) as Record<MetricName, ReturnType<typeof toWire>>;
  return { start, ms, endpoint, count: txs.length, errors: txs.filter((t) => t.error).length, ...sketches };
}

let traceCounter = 0;
export function trace(service: string, endpoint: string, start: number, tx: Tx): WireTrace {
  const traceId = (++traceCounter).toString(16).padStart(32, '0');
  return {
    traceId,
    service,
    endpoint,
    start,
    status: tx.error ? 500 : 200,
    error: tx.error,
    ...(tx.error ? { errorMessage: 'boom' } : {}),
    response: tx.response,
    duration: tx.duration,
    cpu: tx.cpu,
    external: tx.external,
    externalByKind: tx.external > 0 ? { db: tx.external } : {},
    blocking: tx.blocking,
    segments: [
      // a data-store call carries operation, target and sanitized statement (returned as sent by /api/traces/:id)
      {
        id: 0,
        parentId: null,
        name: 'postgres SELECT',
        kind: 'db',
        start: 0.1,
        end: 0.1 + tx.external,
        onCriticalPath: true,
        operation: 'SELECT',
        target: '127.0.0.1:5432/puppies',
        statement: 'SELECT * FROM puppies WHERE id = $1 AND name <> ?',
      },
      { id: 1, parentId: null, name: 'GET cache', kind: 'cache', start: 0.1, end: 0.2, onCriticalPath: false },
    ],
    criticalPath: [0],
    truncated: false,
    droppedSegments: 0,
    // queued before its first slice, then its own code, the call, a wait for the loop, its code again
    waits: [[0, roundMs(tx.blocking / 2)], [roundMs(0.2 + tx.external), roundMs(0.2 + tx.external + tx.blocking / 2)]],
    slices: [[roundMs(tx.blocking / 2), roundMs(tx.blocking / 2 + tx.cpu / 2)], [roundMs(0.2 + tx.external + tx.blocking / 2), roundMs(0.2 + tx.external + tx.blocking / 2 + tx.cpu / 2)]],
  };
}

let batchCounter = 0;
export function batch(service: string, instance: string, intervals: WireInterval[], traces: WireTrace[] = [], sentAt = Date.now()): WireBatch {
  return {
    v: 1,
    batchId: `test-${process.pid}-${++batchCounter}-${Math.floor(Math.random() * 1e9)}`,
    service,
    instance,
    agent: { name: 'test', version: '0.0.0' },
    sentAt,
    intervals,
    traces,
    dropped: { batches: 0, transactions: 0, traces: 0 },
  };
}

/** The value at quantile q of the exact data, by the same rank rule as the sketch (q·(n−1), rounded down). */
export function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

export interface TestCollector extends Collector {
  dataDir: string;
}

/** A real collector on 127.0.0.1 with its SQLite file in a fresh temp directory. */
export async function startTestCollector(options: CollectorOptions = {}): Promise<TestCollector> {
  const dataDir = options.dataDir ?? tempDir();
  const collector = await startCollector({ port: 0, logger: false, ...options, dataDir });
  return {
    ...collector,
    dataDir,
    async close() {
      await collector.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'loopscope-test-'));
}

export interface Answer {
  status: number;
  body: any;
}

/**
 * POSTs raw bytes and takes the answer's bytes. The answer is taken even when the server answers
 * before reading the whole body (a 413 on a 10 MB upload) and the upload then fails.
 */
export function postRaw(url: string, body: Buffer | string, headers: Record<string, string>): Promise<{ status: number; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, raw: Buffer.concat(chunks) }));
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end(body);
  });
}

/** POSTs raw bytes; the answer must be JSON. */
export async function post(url: string, body: Buffer | string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer> {
  const { status, raw } = await postRaw(url, body, headers);
  const text = raw.toString();
  try {
    return { status, body: JSON.parse(text) };
  } catch {
    throw new Error(`not JSON (status ${status}): ${text.slice(0, 200)}`);
  }
}

export function sendBatch(url: string, b: WireBatch, headers: Record<string, string> = {}): Promise<Answer> {
  return post(`${url}/v1/ingest`, JSON.stringify(b), { 'content-type': 'application/json', ...headers });
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json() };
}

/**
 * A one-service trace from `GET /api/traces/:traceId`, as its sender sent it: the root's record at
 * the top level; its `parts` (GUIDE §3.5) must be that one part, its `path` stay in its service and
 * `atPartLimit` be false, which this checks and takes off.
 */
export function asSent(body: Record<string, unknown>): Record<string, unknown> {
  const { parts, path, atPartLimit, ...record } = body as { parts: Array<{ spanId: string | null; endpoint: string; orphan: boolean }>; path: Array<{ service: string }>; atPartLimit: boolean } & Record<string, unknown>;
  assert.equal(atPartLimit, false);
  assert.ok(path.length > 0 && path.every((step) => step.service === record.service), `the path stays in the one service: ${JSON.stringify(path).slice(0, 300)}`);
  assert.equal(parts.length, 1, `one part: ${JSON.stringify(parts).slice(0, 300)}`);
  assert.equal(parts[0]!.endpoint, record.endpoint);
  assert.equal(parts[0]!.spanId, record.spanId ?? null);
  assert.equal(parts[0]!.orphan, false);
  return record;
}

/** Polls `probe` until it returns something (every 200 ms, for 15 s at most). */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, detail: () => string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within 15 s (${detail()})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A well-formed loop sample of one second from `start`, with nothing in it but what `fields` say. */
export function loopSample(start: number, fields: Partial<WireLoop> = {}): WireLoop {
  return {
    start,
    ms: 1000,
    delay: toWire(newSketch()),
    busyMs: 500,
    idleMs: 500,
    gc: {},
    cpu: { user: 1, system: 0 },
    memory: { rss: 1, heapUsed: 1, heapTotal: 1 },
    longTasks: [],
    ...fields,
  };
}
