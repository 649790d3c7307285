/**
 * A trace passes between a service under loopscope and one under OpenTelemetry's own SDK (its
 * NodeSDK and http instrumentation, in a process of its own), in both directions: each side
 * continues the other's trace under the span that called it. And both in one process, as a team
 * that adds loopscope to a service OpenTelemetry already traces: neither breaks the other, and they
 * tell one trace, with the same ids.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { get, listen, spawnApp, until, type SpawnedApp } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
/** SpanKind of OpenTelemetry's API */
const SERVER = 1;
const CLIENT = 2;

interface OtelSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
}

const seen: Array<string | undefined> = [];
const upstream = http.createServer((req, res) => {
  seen.push(req.headers.traceparent as string | undefined);
  res.end('from upstream');
});
const apps: SpawnedApp[] = [];
let upstreamUrl = '';

before(async () => {
  upstreamUrl = await listen(upstream);
});
after(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  upstream.close();
});

/** A service under OpenTelemetry calling `next`, and where its spans are written. */
async function otelService(next: string, withLoopscope = false): Promise<{ app: SpawnedApp; spans(count: number): Promise<OtelSpan[]> }> {
  const file = join(mkdtempSync(join(tmpdir(), 'loopscope-otel-')), 'spans.jsonl');
  const preload = ['--require', './otel-setup.cjs', ...(withLoopscope ? ['--import', 'loopscope/register'] : [])];
  const app = await spawnApp(preload, 'otel-app.cjs', fixtures, { SPANS_FILE: file, NEXT_URL: next, LOOPSCOPE_COLLECTOR: 'off', LOOPSCOPE_SERVICE: 'both' });
  apps.push(app);
  const read = (): OtelSpan[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as OtelSpan) : []);
  return { app, spans: (count) => until(`${count} spans of the OpenTelemetry service`, () => (read().length >= count ? read() : undefined), 10_000, () => JSON.stringify(read())) };
}

async function loopscopeService(next: string, service: string): Promise<SpawnedApp> {
  const app = await spawnApp(['--import', 'loopscope/register'], 'hop-app.mjs', fixtures, { LOOPSCOPE_COLLECTOR: 'off', LOOPSCOPE_SERVICE: service, NEXT_URL: next });
  apps.push(app);
  return app;
}

test('OpenTelemetry → loopscope: the loopscope service continues the trace under the OpenTelemetry client span', async () => {
  const callee = await loopscopeService(upstreamUrl, 'after-otel');
  const otel = await otelService(callee.url);
  assert.equal(await get(`${otel.app.url}/via/http`), 'from upstream');
  const [record] = await callee.records(1);
  const spans = await otel.spans(2);
  const server = spans.find((s) => s.kind === SERVER)!;
  const client = spans.find((s) => s.kind === CLIENT)!;
  assert.ok(server && client, JSON.stringify(spans));
  assert.equal(client.traceId, server.traceId);
  assert.equal(record!.traceId, client.traceId);
  assert.equal(record!.parentSpanId, client.spanId);
  // and passes it on beneath its own call
  assert.equal(seen.at(-1), `00-${client.traceId}-${record!.segments[0]!.spanId}-01`);
});

test('loopscope → OpenTelemetry: the OpenTelemetry service continues the trace under the loopscope segment', async () => {
  const otel = await otelService(upstreamUrl);
  const caller = await loopscopeService(otel.app.url, 'before-otel');
  assert.equal(await get(`${caller.url}/via/http`), 'from upstream');
  const [record] = await caller.records(1);
  const spans = await otel.spans(2);
  const server = spans.find((s) => s.kind === SERVER)!;
  const client = spans.find((s) => s.kind === CLIENT)!;
  assert.equal(record!.parentSpanId, null);
  assert.equal(server.traceId, record!.traceId);
  assert.equal(server.parentSpanId, record!.segments[0]!.spanId);
  // OpenTelemetry carries it on too
  assert.equal(client.traceId, record!.traceId);
  assert.equal(seen.at(-1), `00-${record!.traceId}-${client.spanId}-01`);
});

test('OpenTelemetry and loopscope in one process, two such services: both record the request, with the same trace and span ids', async () => {
  const back = await otelService(upstreamUrl, true);
  const front = await otelService(back.app.url, true);
  for (let i = 0; i < 3; i++) assert.equal(await get(`${front.app.url}/via/http`), 'from upstream');
  const frontSpans = await front.spans(6);
  const backSpans = await back.spans(6);
  const frontRecords = await front.app.records(3);
  const backRecords = await back.app.records(3);
  for (const record of frontRecords) {
    // OpenTelemetry's own trace is whole: front's server span, its client span, back's server span under it
    const server = frontSpans.find((s) => s.kind === SERVER && s.traceId === record.traceId);
    assert.ok(server, `loopscope's trace ${record.traceId} is OpenTelemetry's: ${JSON.stringify(frontSpans)}`);
    const client = frontSpans.find((s) => s.kind === CLIENT && s.parentSpanId === server.spanId)!;
    assert.ok(client);
    const backServer = backSpans.find((s) => s.kind === SERVER && s.parentSpanId === client.spanId);
    assert.ok(backServer, 'OpenTelemetry in back continues the client span of front');
    // loopscope's segment is that client span: back's loopscope part hangs under it
    assert.equal(record.segments.length, 1);
    assert.equal(record.segments[0]!.spanId, client.spanId);
    const backRecord = backRecords.find((r) => r.parentSpanId === client.spanId);
    assert.ok(backRecord, `loopscope in back continues it: ${JSON.stringify(backRecords.map((r) => [r.traceId, r.parentSpanId]))}`);
    assert.equal(backRecord.traceId, record.traceId);
    // and each still measures what it measures
    assert.equal(typeof record.cpu, 'number');
    // the call's time is external, less what the transaction was blocked meanwhile (its answer
    // ready while the loop ran other work): together never less than the call (CI, Node 22: a
    // loaded loop made all of it blocking once, external 0)
    const call = record.segments[0]!;
    assert.ok(record.external! + record.blocking! >= call.end - call.start - 0.01, `external ${record.external} + blocking ${record.blocking} against the call's ${call.end - call.start} ms`);
    assert.ok(call.end > call.start);
  }
  // what upstream received: the back's OpenTelemetry client span, which loopscope in back took as its segment
  const last = backRecords.at(-1)!;
  assert.equal(seen.at(-1), `00-${last.traceId}-${last.segments[0]!.spanId}-01`);
});
