/**
 * A trace passes between a service under loopscope and one under OpenTelemetry's own SDK (its
 * NodeSDK and http instrumentation, in a process of its own), in both directions: each side
 * continues the other's trace under the span that called it.
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
async function otelService(next: string): Promise<{ app: SpawnedApp; spans(count: number): Promise<OtelSpan[]> }> {
  const file = join(mkdtempSync(join(tmpdir(), 'loopscope-otel-')), 'spans.jsonl');
  const app = await spawnApp(['--require', './otel-setup.cjs'], 'otel-app.cjs', fixtures, { SPANS_FILE: file, NEXT_URL: next });
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
