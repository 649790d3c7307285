/**
 * OTLP out: a collector started with an OTLP endpoint forwards every trace it stores as OTLP spans.
 * What it sends is decoded with the official protocol definitions (proto/, loaded by protobufjs
 * here as any backend would): a server span per transaction with loopscope's numbers as attributes,
 * a client span per segment under it. End to end, a second loopscope collector's OTLP receiver
 * gives back the same traces. A backend that is down costs retries and nothing else: ingest
 * answers as fast, and the traces arrive once it is up; one that refuses them has them counted.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { gunzipSync } from 'node:zlib';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { roundMs, type TraceAnswer } from '@loopscope/protocol';
import { batch, exactQuantile, get, interval, random, randomTx, sendBatch, startTestCollector, trace, until, type TestCollector } from './helpers.js';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => PROTO_DIR + target;
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto']);
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const MetricsRequest = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');

interface Histogram {
  count: string;
  sum: number;
  min: number;
  max: number;
  scale: number;
  zeroCount: string;
  positive: { offset: number; bucketCounts: string[] };
}
interface MetricsBody {
  resourceMetrics: Array<{ resource: { attributes: Attr[] }; scopeMetrics: Array<{ metrics: Array<{ name: string; unit: string; sum?: { dataPoints: Array<{ asInt: string; attributes: Attr[] }> }; exponentialHistogram?: { dataPoints: Array<Histogram & { attributes: Attr[] }> } }> }> }>;
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: { resourceSpans: Array<{ resource: { attributes: Attr[] }; scopeSpans: Array<{ spans: Span[] }> }> };
}
interface Attr {
  key: string;
  value: { stringValue?: string; intValue?: string; doubleValue?: number; boolValue?: boolean };
}
interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Attr[];
  status?: { code?: number; message?: string };
}

/** A backend on 127.0.0.1 that answers `status` and keeps what it is sent, decoded: traces and metrics. */
async function backend(status: () => number): Promise<{ url: string; received: Received[]; metrics: MetricsBody[]; close(): void }> {
  const received: Received[] = [];
  const metrics: MetricsBody[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = req.headers['content-encoding'] === 'gzip' ? gunzipSync(Buffer.concat(chunks)) : Buffer.concat(chunks);
      const code = status();
      if (code === 200 && req.url === '/v1/traces') received.push({ headers: req.headers, body: Request.toObject(Request.decode(raw), { longs: String, bytes: String }) as Received['body'] });
      if (code === 200 && req.url === '/v1/metrics') metrics.push(MetricsRequest.toObject(MetricsRequest.decode(raw), { longs: String }) as MetricsBody);
      res.writeHead(code, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, received, metrics, close: () => server.close() };
}

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});
async function collectorTo(endpoint: string): Promise<TestCollector> {
  const c = await startTestCollector({ otlpExport: { endpoint, headers: { 'x-api-key': 'secret' } } });
  cleanup.push(() => c.close());
  return c;
}

/** name → value; an int64 comes as a decimal string (longs: String) */
const attrs = (list: Attr[]): Record<string, unknown> => Object.fromEntries(list.map((a) => [a.key, a.value.intValue !== undefined ? Number(a.value.intValue) : Object.values(a.value)[0]]));
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');

test('each stored transaction is a server span with its numbers, each segment a client span under it, decoded with the official definitions', async () => {
  const be = await backend(() => 200);
  cleanup.push(be.close);
  const collector = await collectorTo(be.url);
  const rand = random(7);
  const now = Date.now();
  const sent = [trace('shop', 'GET /cart', now - 3000, randomTx(rand, 0)), trace('shop', 'POST /pay', now - 2000, { ...randomTx(rand, 0), error: true })];
  assert.equal((await sendBatch(collector.url, batch('shop', 'shop-1:42', [], sent))).status, 200);
  await until('the backend to receive the spans', async () => (be.received.length > 0 ? true : undefined), () => 'nothing yet');
  const [request] = be.received;
  assert.equal(request!.headers['x-api-key'], 'secret');
  assert.equal(request!.headers['content-type'], 'application/x-protobuf');
  const [resource] = request!.body.resourceSpans;
  assert.deepEqual(attrs(resource!.resource.attributes), { 'service.name': 'shop', 'service.instance.id': 'shop-1:42' });
  const spans = resource!.scopeSpans[0]!.spans;
  for (const t of sent) {
    const server = spans.find((s) => s.kind === 2 && s.name === t.endpoint)!;
    assert.ok(server, t.endpoint);
    assert.equal(hex(server.traceId), t.traceId);
    assert.equal(BigInt(server.startTimeUnixNano), BigInt(Math.round(t.start * 1000)) * 1000n);
    // the end is the start plus the duration, to the µs
    assert.ok(Math.abs(Number(BigInt(server.endTimeUnixNano) - BigInt(server.startTimeUnixNano)) - t.duration * 1e6) <= 1000);
    assert.deepEqual(attrs(server.attributes), { 'loopscope.response_ms': t.response, 'loopscope.cpu_ms': t.cpu, 'loopscope.external_ms': t.external, 'loopscope.blocking_ms': t.blocking, 'http.response.status_code': t.status });
    assert.equal(server.status?.code ?? 0, t.error ? 2 : 0);
    const children = spans.filter((s) => s.parentSpanId === server.spanId);
    assert.deepEqual(
      children.map((c) => [c.name, c.kind, attrs(c.attributes)['loopscope.critical_path'], attrs(c.attributes)['loopscope.kind']]),
      t.segments.map((s) => [s.name, 3, s.onCriticalPath, s.kind]),
    );
    const db = attrs(children[0]!.attributes);
    assert.equal(db['db.query.text'], t.segments[0]!.statement);
    assert.equal(db['server.address'], t.segments[0]!.target);
  }
});

test("end to end: a second loopscope collector's OTLP receiver gives back the same traces", async () => {
  const second = await startTestCollector();
  cleanup.push(() => second.close());
  const first = await collectorTo(second.url);
  const rand = random(11);
  const now = Date.now();
  const sent = Array.from({ length: 20 }, (_, i) => trace('shop', i % 2 ? 'GET /cart' : 'POST /pay', now - 5000 + i * 100, randomTx(rand, 0.2)));
  assert.equal((await sendBatch(first.url, batch('shop', 'shop-1:42', [], sent))).status, 200);
  const same = (t: TraceAnswer | (typeof sent)[number]) => ({
    endpoint: t.endpoint,
    start: t.start,
    status: t.status,
    error: t.error,
    errorMessage: t.errorMessage,
    response: t.response,
    duration: t.duration,
    cpu: t.cpu,
    external: t.external,
    blocking: t.blocking,
    // to the µs, as agents send them (the test's own sums are not rounded)
    segments: t.segments.map(({ spanId: _, ...s }) => ({ ...s, start: roundMs(s.start), end: roundMs(s.end) })),
    criticalPath: t.criticalPath,
  });
  for (const t of sent) {
    const back = await until(`trace ${t.traceId} in the second collector`, async () => {
      const res = await get(`${second.url}/api/traces/${t.traceId}`);
      return res.status === 200 ? (res.body as TraceAnswer) : undefined;
    }, () => 'not there');
    assert.deepEqual(same(back), same(t));
    assert.equal(back.service, 'shop');
  }
});

test('a backend that is down costs retries, never ingest; its traces arrive when it is up. One that refuses them has them counted as dropped', async () => {
  let up = false;
  const be = await backend(() => (up ? 200 : 503));
  cleanup.push(be.close);
  const collector = await collectorTo(be.url);
  const rand = random(3);
  for (let i = 0; i < 5; i++) assert.equal((await sendBatch(collector.url, batch('shop', 'shop-1:42', [], [trace('shop', 'GET /cart', Date.now() - 1000, randomTx(rand, 0))]))).status, 200);
  const health = async () => ((await get(`${collector.url}/api/health`)).body as { otlpExport: { traces: { sent: number; dropped: number; retries: number; queued: number } } }).otlpExport.traces;
  await until('a retry', async () => ((await health()).retries > 0 ? true : undefined), () => 'none');
  assert.equal((await health()).queued, 5);
  up = true;
  await until('the traces to arrive once the backend is up', async () => ((await health()).sent === 5 ? true : undefined), () => 'not all sent');
  assert.equal(be.received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))).filter((s) => s.kind === 2).length, 5);

  const refusing = await backend(() => 400);
  cleanup.push(refusing.close);
  const other = await collectorTo(refusing.url);
  assert.equal((await sendBatch(other.url, batch('shop', 'shop-1:42', [], [trace('shop', 'GET /cart', Date.now() - 1000, randomTx(rand, 0))]))).status, 200);
  await until('the refused trace counted', async () => (((await get(`${other.url}/api/health`)).body as { otlpExport: { traces: { dropped: number } } }).otlpExport.traces.dropped === 1 ? true : undefined), () => 'not yet');
});

/**
 * The quantile a backend reads from an exponential histogram: the rank's bucket, at its geometric
 * middle. Ground truth: the exact quantiles of the values the interval's sketches were made of.
 */
function histogramQuantile(h: Histogram, q: number): number {
  const rank = Math.floor(q * (Number(h.count) - 1));
  let seen = Number(h.zeroCount);
  if (rank < seen) return 0;
  const base = 2 ** 2 ** -h.scale;
  for (let i = 0; i < h.positive.bucketCounts.length; i++) {
    seen += Number(h.positive.bucketCounts[i]);
    if (rank < seen) return base ** (h.positive.offset + i + 0.5);
  }
  return h.max;
}

test('each interval is a count, an error count and an exponential histogram per number, whose quantiles are within 1.6 % of the exact ones', async () => {
  const be = await backend(() => 200);
  cleanup.push(be.close);
  const collector = await collectorTo(be.url);
  const rand = random(5);
  const txs = Array.from({ length: 2000 }, () => randomTx(rand, 0.1));
  const start = Math.floor(Date.now() / 1000) * 1000 - 10_000;
  assert.equal((await sendBatch(collector.url, batch('shop', 'shop-1:42', [interval('GET /cart', start, txs)]))).status, 200);
  const body = await until('the backend to receive the metrics', async () => be.metrics[0], () => 'nothing yet');
  const [resource] = body.resourceMetrics;
  assert.deepEqual(attrs(resource!.resource.attributes), { 'service.name': 'shop', 'service.instance.id': 'shop-1:42' });
  const metrics = new Map(resource!.scopeMetrics[0]!.metrics.map((m) => [m.name, m]));
  assert.equal(Number(metrics.get('loopscope.requests')!.sum!.dataPoints[0]!.asInt), txs.length);
  assert.equal(Number(metrics.get('loopscope.errors')!.sum!.dataPoints[0]!.asInt), txs.filter((t) => t.error).length);
  assert.deepEqual(attrs(metrics.get('loopscope.requests')!.sum!.dataPoints[0]!.attributes), { 'loopscope.endpoint': 'GET /cart' });
  for (const m of ['response', 'duration', 'cpu', 'external', 'blocking'] as const) {
    const metric = metrics.get(`loopscope.${m}`)!;
    assert.equal(metric.unit, 'ms');
    const h = metric.exponentialHistogram!.dataPoints[0]!;
    const values = txs.map((t) => t[m]);
    assert.equal(Number(h.count), values.length);
    assert.ok(Math.abs(h.sum - values.reduce((a, b) => a + b, 0)) < 1e-6 * h.sum + 1e-9, `${m} sum`);
    assert.equal(h.max, Math.max(...values));
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = exactQuantile(values, q);
      const read = histogramQuantile(h, q);
      assert.ok(exact === 0 ? read === 0 : Math.abs(read - exact) / exact <= 0.016, `${m} p${q * 100}: read ${read}, exact ${exact}`);
    }
  }
});
