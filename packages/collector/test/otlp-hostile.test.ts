/**
 * Bad OTLP bodies: each gets the OTLP/HTTP spec's answer (400 for what is no export, never to be
 * retried; 413 too large; 415 another type; 200 with a partial success counting the spans
 * rejected alone), in the request's encoding; none crashes or stalls the collector, and what was
 * stored before is unchanged. The protobuf bodies are encoded with protobufjs from the official
 * protocol definitions the collector decodes with (proto/), the way an SDK's are.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { get, postRaw, startTestCollector, type TestCollector } from './helpers.js';

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => PROTO_DIR + target;
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'google/rpc/status.proto']);
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const Response = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const Status = root.lookupType('google.rpc.Status');

const NOW_NS = BigInt(Date.now() - 5000) * 1_000_000n;
const hexId = (n: number, bytes: number): string => n.toString(16).padStart(bytes * 2, '0');
const attr = (key: string, value: string | number) => ({ key, value: typeof value === 'number' ? { intValue: value } : { stringValue: value } });

interface SpanSpec {
  trace?: number;
  id: number;
  parent?: number;
  kind?: number;
  name?: string;
  startMs?: number;
  endMs?: number;
  attributes?: Array<ReturnType<typeof attr>>;
}

/** A span as OTLP/JSON has it (hex ids, ns as strings), times in ms after NOW. */
function jsonSpan(s: SpanSpec): Record<string, unknown> {
  return {
    traceId: hexId(s.trace ?? 1, 16),
    spanId: hexId(s.id, 8),
    ...(s.parent !== undefined ? { parentSpanId: hexId(s.parent, 8) } : {}),
    name: s.name ?? 'GET /hostile',
    kind: s.kind ?? 2,
    startTimeUnixNano: String(NOW_NS + BigInt((s.startMs ?? 0) * 1e6)),
    endTimeUnixNano: String(NOW_NS + BigInt((s.endMs ?? 10) * 1e6)),
    attributes: s.attributes ?? [attr('http.request.method', 'GET'), attr('http.route', '/hostile'), attr('http.response.status_code', 200)],
  };
}
const jsonRequest = (spans: Array<Record<string, unknown>>, service = 'hostile') => ({
  resourceSpans: [{ resource: { attributes: [attr('service.name', service)] }, scopeSpans: [{ scope: { name: 'test' }, spans }] }],
});
/** The same request in protobuf: ids as bytes (protobufjs takes the ns, uint64, as decimal strings). */
function protoRequest(spans: Array<Record<string, unknown>>, service = 'hostile'): Buffer {
  const pb = spans.map((s) => ({
    ...s,
    traceId: Buffer.from(s.traceId as string, 'hex'),
    spanId: Buffer.from(s.spanId as string, 'hex'),
    ...(s.parentSpanId !== undefined ? { parentSpanId: Buffer.from(s.parentSpanId as string, 'hex') } : {}),
  }));
  const message = Request.fromObject(jsonRequest(pb as Array<Record<string, unknown>>, service));
  return Buffer.from(Request.encode(message).finish());
}

const PROTO = { 'content-type': 'application/x-protobuf' };
const JSON_TYPE = { 'content-type': 'application/json' };
let collector: TestCollector;
let before_: { traces: unknown; trace: unknown };
const stored = async () => {
  const list = (await get(`${collector.url}/api/traces?service=good&from=0&to=${Date.now() + 60_000}&limit=100`)).body as Array<{ traceId: string }>;
  return { traces: list, trace: (await get(`${collector.url}/api/traces/${list[0]?.traceId}`)).body };
};

before(async () => {
  collector = await startTestCollector({ limits: { maxBodyBytes: 5 * 1024 * 1024, maxDecompressedBytes: 20 * 1024 * 1024 } });
  // what is stored before: a good export, with a client call under its server span
  const good = [jsonSpan({ trace: 900, id: 1 }), jsonSpan({ trace: 900, id: 2, parent: 1, kind: 3, name: 'GET', startMs: 2, endMs: 8, attributes: [attr('http.request.method', 'GET'), attr('url.full', 'http://127.0.0.1:9/x')] })];
  const res = await postRaw(`${collector.url}/v1/traces`, protoRequest(good, 'good'), PROTO);
  assert.equal(res.status, 200);
  before_ = await stored();
  assert.equal((before_.traces as unknown[]).length, 1);
});
after(async () => {
  // nothing stored before was damaged, and the collector still answers
  assert.deepEqual(await stored(), before_);
  assert.equal((await get(`${collector.url}/api/health`)).status, 200);
  await collector.close();
});

/** Posts `body` and checks the status; for errors, that the body is a google.rpc.Status in the request's encoding. */
async function expect(status: number, body: Buffer | string, headers: Record<string, string>, message?: RegExp): Promise<{ rejected: number; errorMessage: string }> {
  const res = await postRaw(`${collector.url}/v1/traces`, body, headers);
  assert.equal(res.status, status, res.raw.toString().slice(0, 500));
  const isJson = headers['content-type'] !== 'application/x-protobuf';
  const raw = res.raw;
  if (status !== 200) {
    const decoded = (isJson ? JSON.parse(raw.toString()) : Status.toObject(Status.decode(raw))) as { code: number; message: string };
    assert.equal(decoded.code, status);
    if (message) assert.match(decoded.message, message);
    return { rejected: 0, errorMessage: decoded.message };
  }
  const decoded = (isJson ? JSON.parse(raw.toString()) : Response.toObject(Response.decode(raw), { longs: Number })) as { partialSuccess?: { rejectedSpans?: number; errorMessage?: string } };
  return { rejected: Number(decoded.partialSuccess?.rejectedSpans ?? 0), errorMessage: decoded.partialSuccess?.errorMessage ?? '' };
}

test('bodies that are no export: 400 in the request encoding, never stored', async () => {
  const good = protoRequest([jsonSpan({ trace: 2, id: 1 })]);
  await expect(400, good.subarray(0, good.length - 7), PROTO, /not an OTLP ExportTraceServiceRequest in protobuf/); // 1. truncated protobuf
  await expect(400, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), PROTO); // 2. a length past the end
  await expect(400, '{"resourceSpans": [', JSON_TYPE, /not an OTLP ExportTraceServiceRequest in JSON/); // 3. not JSON
  await expect(400, '[1, 2]', JSON_TYPE, /must be an object/); // 4. not an object
  await expect(400, '{"resourceSpans": {"spans": 1}}', JSON_TYPE, /resourceSpans must be an array/); // 5. a field of the wrong type
  await expect(400, Buffer.from('not gzip at all'), { ...PROTO, 'content-encoding': 'gzip' }, /not valid gzip/); // 6. a broken gzip
});

test('too large, or another type: 413 and 415', async () => {
  await expect(413, gzipSync(Buffer.alloc(100 * 1024 * 1024)), { ...PROTO, 'content-encoding': 'gzip' }, /decompresses to more than/); // 7. a gzip bomb
  await expect(413, Buffer.alloc(6 * 1024 * 1024, 0x20), JSON_TYPE, /larger than/); // 8. over the body limit
  await expect(415, 'hello', { 'content-type': 'text/plain' }, /application\/x-protobuf or application\/json/); // 9. another type
});

test('spans malformed alone are rejected and counted; the rest of the request is stored', async () => {
  const spans = [
    jsonSpan({ trace: 3, id: 1 }),
    { ...jsonSpan({ trace: 3, id: 2 }), traceId: 12345 }, // 10. an id of the wrong type
    { ...jsonSpan({ trace: 3, id: 3 }), traceId: '00000000000000000000000000000000' }, // 11. an all-zero trace id
    { ...jsonSpan({ trace: 3, id: 4 }), spanId: 'abc' }, // 12. a span id of the wrong length
    jsonSpan({ trace: 3, id: 5, startMs: 10, endMs: 5 }), // 13. ends before it starts
    { ...jsonSpan({ trace: 3, id: 6 }), startTimeUnixNano: '1', endTimeUnixNano: '2' }, // 14. in 1970
    { ...jsonSpan({ trace: 3, id: 7 }), startTimeUnixNano: 'soon' }, // 15. a time that is no number
  ];
  const { rejected, errorMessage } = await expect(200, JSON.stringify({ ...jsonRequest(spans), unknownField: { deep: [1] } }), JSON_TYPE); // 16. unknown fields
  assert.equal(rejected, 6, errorMessage);
  assert.match(errorMessage, /trace id/);
  const kept = (await get(`${collector.url}/api/traces/${hexId(3, 16)}`)).body as { spanId: string };
  assert.equal(kept.spanId, hexId(1, 8));
});

test('a span its own parent, cycles of parents, 1 MB values, a 10 000-deep chain: stored within bounds, or left to wait', async () => {
  const mb = 'x'.repeat(1024 * 1024);
  const spans = [
    jsonSpan({ trace: 4, id: 1, parent: 1 }), // 17. its own parent: a root
    jsonSpan({ trace: 5, id: 1, kind: 3, parent: 2 }), // 18. a cycle of client spans: they wait for a transaction
    jsonSpan({ trace: 5, id: 2, kind: 3, parent: 1 }),
    jsonSpan({ trace: 6, id: 1, parent: 2 }), // 19. a server span whose child is its parent
    jsonSpan({ trace: 6, id: 2, kind: 3, parent: 1, startMs: 1, endMs: 2 }),
    jsonSpan({ trace: 7, id: 1, attributes: [attr('http.request.method', 'GET'), attr('http.route', mb), attr('db.statement', mb)] }), // 20. 1 MB values
  ];
  // 21. a 10 000-deep chain of internal spans under one server span
  spans.push(jsonSpan({ trace: 8, id: 1 }));
  for (let i = 2; i <= 10_000; i++) spans.push(jsonSpan({ trace: 8, id: i, parent: i - 1, kind: 1, name: 'step', startMs: 1, endMs: 2 }));
  const { rejected } = await expect(200, protoRequest(spans), PROTO);
  assert.equal(rejected, 0);
  const own = (await get(`${collector.url}/api/traces/${hexId(4, 16)}`)).body as { parentSpanId: string | null };
  assert.equal(own.parentSpanId, null);
  const cycle = (await get(`${collector.url}/api/traces/${hexId(6, 16)}`)).body as { segments: unknown[] };
  assert.equal(cycle.segments.length, 1);
  const big = (await get(`${collector.url}/api/traces/${hexId(7, 16)}`)).body as { endpoint: string };
  assert.equal(big.endpoint.length, 512);
  const deep = (await get(`${collector.url}/api/traces/${hexId(8, 16)}`)).body as { segments: unknown[]; droppedSegments: number };
  assert.equal(deep.segments.length, 1000);
  assert.equal(deep.droppedSegments, 9999 - 1000);
});

test('100 000 spans in one request: the first 50 000 are taken, the rest rejected; the collector answers meanwhile', async () => {
  // 22. children of a transaction that never comes: they wait, within the bound, then go
  const spans = Array.from({ length: 100_000 }, (_, i) => jsonSpan({ trace: 10 + (i % 100), id: i + 2, parent: 1, kind: 3, name: 'GET' }));
  const body = gzipSync(protoRequest(spans));
  const sent = postRaw(`${collector.url}/v1/traces`, body, { ...PROTO, 'content-encoding': 'gzip' });
  const health = await get(`${collector.url}/api/health`);
  assert.equal(health.status, 200);
  const res = await sent;
  assert.equal(res.status, 200);
  const decoded = Response.toObject(Response.decode(res.raw), { longs: Number }) as { partialSuccess: { rejectedSpans: number; errorMessage: string } };
  assert.equal(decoded.partialSuccess.rejectedSpans, 50_000);
  assert.match(decoded.partialSuccess.errorMessage, /more than 50000 spans in one request/);
  // the 50 000 taken wait for a transaction that never comes, in memory, within its bound
  const { otlpIn } = (await get(`${collector.url}/api/health`)).body as { otlpIn: { waiting: number; expired: number } };
  assert.ok(otlpIn.waiting >= 50_000 && otlpIn.waiting <= 100_000, JSON.stringify(otlpIn));
});
