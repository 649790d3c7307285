/**
 * One trace from many services: the parts two agents send under one W3C trace id come back as one
 * trace, root first, each with the span it continues; a part whose parent never arrived is kept as
 * an orphan; a trace id that a client sends on every request (10 000 of them) keeps a bounded
 * number of parts, the rest counted, and a bounded number of rows on disk.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { MAX_TRACE_PARTS, type TraceAnswer, type WireTrace } from '@loopscope/protocol';
import { DB_FILE } from '../src/index.js';
import { batch, get, random, randomTx, sendBatch, startTestCollector, trace, type TestCollector } from './helpers.js';

const rand = random(21);
const now = Date.now() - 60_000;
let collector: TestCollector;
before(async () => {
  // (10 000 parts of one service in a minute: past the default trace limit per service, quotas.test.ts's)
  collector = await startTestCollector({ quotas: { tracesPerMinute: 20_000 } });
});
after(() => collector.close());

/** A part of trace `traceId`: span `spanId`, continuing `parentSpanId`, its first segment span `callSpan`. */
function part(service: string, endpoint: string, start: number, traceId: string, spanId: string, parentSpanId: string | null, callSpan: string): WireTrace {
  const t = trace(service, endpoint, start, randomTx(rand, 0));
  return { ...t, traceId, spanId, parentSpanId, segments: t.segments.map((s, i) => (i === 0 ? { ...s, spanId: callSpan } : s)) };
}

test('the parts of one trace from two services come back as one trace, root first; a late part with an unknown parent is an orphan', async () => {
  const traceId = 'a'.repeat(32);
  const gateway = part('gateway', 'GET /checkout', now, traceId, '1'.repeat(16), null, '2'.repeat(16));
  const orders = part('orders', 'GET /orders/:id', now + 1, traceId, '3'.repeat(16), '2'.repeat(16), '4'.repeat(16));
  // the callee's agent ships first: it finished first
  assert.equal((await sendBatch(collector.url, batch('orders', 'o:1', [], [orders]))).status, 200);
  assert.equal((await sendBatch(collector.url, batch('gateway', 'g:1', [], [gateway]))).status, 200);
  const stray = part('audit', 'AMQP consume audit', now + 2, traceId, '5'.repeat(16), '6'.repeat(16), '7'.repeat(16));
  assert.equal((await sendBatch(collector.url, batch('audit', 'a:1', [], [stray]))).status, 200);

  const { status, body } = await get(`${collector.url}/api/traces/${traceId}`);
  assert.equal(status, 200);
  // the root's record at the top level, as for a trace of one service
  assert.equal(body.service, 'gateway');
  assert.equal(body.spanId, gateway.spanId);
  assert.deepEqual(
    body.parts.map((p: any) => [p.service, p.instance, p.endpoint, p.spanId, p.parentSpanId, p.orphan]),
    [
      ['gateway', 'g:1', 'GET /checkout', gateway.spanId, null, false],
      ['orders', 'o:1', 'GET /orders/:id', orders.spanId, gateway.segments[0]!.spanId, false],
      ['audit', 'a:1', 'AMQP consume audit', stray.spanId, stray.parentSpanId, true],
    ],
  );
  const ordersPart = body.parts[1];
  for (const key of ['start', 'response', 'duration', 'cpu', 'external', 'blocking', 'segments', 'criticalPath'] as const) assert.deepEqual(ordersPart[key], orders[key], key);
  // each service still lists its own part
  const listed = (await get(`${collector.url}/api/traces?service=orders&from=${now - 1000}&to=${now + 1000}`)).body;
  assert.deepEqual(listed.map((t: any) => t.traceId), [traceId]);
});

test(`a trace id sent with 10 000 requests keeps ${MAX_TRACE_PARTS} parts, the rest counted; the rest of each batch is stored; the database stays small`, async () => {
  // a client that sends the same traceparent on each of 10 000 requests: twenty batches of 500
  // parts of one trace id; the last one, long after the limit, also carries a part of another trace
  const traceId = 'b'.repeat(32);
  const hex = (n: number) => n.toString(16).padStart(16, '0');
  const parts = Array.from({ length: 10_000 }, (_, i) => part('flood', 'GET /same', now + i, traceId, hex(i + 1), 'c'.repeat(16), hex(100_000 + i)));
  const other = part('flood', 'GET /other', now, 'd'.repeat(32), 'e'.repeat(16), null, 'f'.repeat(16));
  for (let i = 0; i < parts.length; i += 500) assert.equal((await sendBatch(collector.url, batch('flood', 'f:1', [], [...parts.slice(i, i + 500), ...(i + 500 === parts.length ? [other] : [])]))).status, 200);
  const { status, body } = await get(`${collector.url}/api/traces/${traceId}`);
  assert.equal(status, 200);
  assert.equal(body.parts.length, MAX_TRACE_PARTS);
  assert.equal(body.atPartLimit, true);
  const services = (await get(`${collector.url}/api/services?from=${now - 60_000}&to=${now + 60_000}`)).body as Array<{ service: string; dropped: { parts: number } }>;
  assert.equal(services.find((s) => s.service === 'flood')?.dropped.parts, 10_000 - MAX_TRACE_PARTS);
  const unrelated = (await get(`${collector.url}/api/traces/${'d'.repeat(32)}`)).body as TraceAnswer;
  assert.equal(unrelated.endpoint, 'GET /other');
  assert.equal(unrelated.atPartLimit, false);
  // what is on disk: that trace's rows stop at the limit, and the whole database (with its
  // write-ahead log) is a fraction of what the 10 000 parts sent take as JSON
  const db = new Database(path.join(collector.dataDir, DB_FILE), { readonly: true });
  try {
    assert.equal((db.prepare('SELECT COUNT(*) AS n FROM traces WHERE traceId = ?').get(traceId) as { n: number }).n, MAX_TRACE_PARTS);
  } finally {
    db.close();
  }
  const onDisk = readdirSync(collector.dataDir).reduce((sum, f) => sum + statSync(path.join(collector.dataDir, f)).size, 0);
  const sent = parts.reduce((sum, p) => sum + JSON.stringify(p).length, 0);
  assert.ok(onDisk < sent / 5, `${onDisk} bytes on disk, ${sent} bytes of parts sent`);
});
