/**
 * OTLP in, from the real OpenTelemetry Node SDK: a chain front → back, each an app under
 * `@opentelemetry/sdk-node` with its http instrumentation, front exporting protobuf
 * (exporter-trace-otlp-proto) to the collector's own port, back JSON (exporter-trace-otlp-http)
 * to the OTLP port. back waits a known 40 ms before it answers. Read back through the query API:
 * each service's transactions with their endpoints, statuses and errors; front's call to back a
 * segment whose span is back's parent, so the two parts are one trace; external from the client
 * span; cpu and blocking unknown (null), never 0.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { EndpointSummary, ServiceMap, ServiceSummary, TraceAnswer, TraceSummary } from '@loopscope/protocol';
import { get, startTestCollector, until, type TestCollector } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const DELAY_MS = 40;
const REQUESTS = 6;
let collector: TestCollector;
const apps: ChildProcess[] = [];

async function startOtelService(service: string, encoding: 'proto' | 'json', otlpUrl: string, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ['--require', './otel-setup.cjs', 'otel-chain.cjs'], {
    cwd: fixtures,
    env: { ...process.env, OTEL_SERVICE_NAME: service, OTLP_ENCODING: encoding, OTLP_URL: otlpUrl, OTEL_BSP_SCHEDULE_DELAY: '200', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  apps.push(child);
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  const url = /listening (\S+)/.exec(chunk.toString())?.[1];
  assert.ok(url, chunk.toString());
  return url;
}

let front: string;
let back: string;
const from = Date.now() - 60_000;
const range = (): string => `from=${from}&to=${Date.now() + 60_000}`;

before(async () => {
  collector = await startTestCollector({ otlpPort: 0 });
  back = await startOtelService('otel-back', 'json', `${collector.otlpUrl}/v1/traces`, { DELAY_MS: String(DELAY_MS) });
  front = await startOtelService('otel-front', 'proto', `${collector.url}/v1/traces`, { NEXT_URL: back });
  for (let i = 0; i < REQUESTS; i++) {
    const res = await fetch(`${front}/work${i === 0 ? '?fail=1' : ''}`);
    assert.equal(res.status, i === 0 ? 500 : 200);
    await res.text();
  }
});
after(async () => {
  for (const child of apps) child.kill('SIGTERM');
  await Promise.all(apps.map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
  await collector.close();
});

const traces = async (service: string): Promise<TraceSummary[]> => (await get(`${collector.url}/api/traces?service=${service}&${range()}&limit=100`)).body as TraceSummary[];

test('each service of the chain is a service of its own, sent by opentelemetry, with its endpoint, counts and errors; cpu and blocking unknown', async () => {
  const seen = await until('the spans of both services', async () => ((await traces('otel-front')).length >= REQUESTS && (await traces('otel-back')).length >= REQUESTS ? true : undefined), () => 'fewer traces');
  assert.ok(seen);
  const services = (await get(`${collector.url}/api/services?${range()}`)).body as ServiceSummary[];
  for (const name of ['otel-front', 'otel-back']) assert.deepEqual(services.find((s) => s.service === name)?.agents, ['opentelemetry'], name);
  for (const service of ['otel-front', 'otel-back']) {
    const endpoints = (await get(`${collector.url}/api/endpoints?service=${service}&${range()}`)).body as EndpointSummary[];
    assert.deepEqual(endpoints.map((e) => e.endpoint), ['GET /work'], service);
    const [work] = endpoints;
    assert.equal(work!.count, REQUESTS);
    assert.equal(work!.errors, service === 'otel-front' ? 1 : 0, 'front answered one request 500; back answered all 200');
    assert.equal(work!.cpu, null);
    assert.equal(work!.blocking, null);
    assert.ok(work!.response.p50 >= DELAY_MS, `${service} response p50 ${work!.response.p50}`);
  }
});

test("front's call to back is a segment, back's part hangs under it: one trace, its external the call", async () => {
  const list = await traces('otel-front');
  for (const summary of list) {
    const trace = (await get(`${collector.url}/api/traces/${summary.traceId}`)).body as TraceAnswer;
    assert.deepEqual(trace.parts.map((p) => p.service), ['otel-front', 'otel-back']);
    const [call, ...others] = trace.segments;
    assert.equal(others.length, 0, JSON.stringify(trace.segments));
    assert.equal(call!.kind, 'http');
    assert.equal(call!.name, `GET ${new URL(back).host}/work`);
    assert.equal(call!.spanId, trace.parts[1]!.parentSpanId, 'back continues the span of the call');
    assert.equal(trace.parts[1]!.orphan, false);
    assert.ok(call!.onCriticalPath);
    assert.equal(trace.external, call!.end - call!.start);
    assert.equal(trace.cpu, null);
    assert.equal(trace.blocking, null);
    // the caller waits as long as the callee worked, which waited DELAY_MS; within 1 ms, as the
    // callee's server span ends at its response's 'finish', which can come after the caller has read it
    assert.ok(trace.parts[1]!.response >= DELAY_MS, `back ${trace.parts[1]!.response}`);
    assert.ok(trace.external! >= trace.parts[1]!.response - 1, `external ${trace.external} < back's response ${trace.parts[1]!.response}`);
    assert.ok(trace.response >= trace.external!);
    assert.equal(trace.error, trace.status === 500, JSON.stringify({ status: trace.status, error: trace.error, message: trace.errorMessage }));
    // the path across services goes from front into back and out again
    assert.deepEqual([...new Set(trace.path.map((s) => s.service))], ['otel-front', 'otel-back']);
  }
  assert.equal(list.filter((t) => t.status === 500).length, 1);
});

test('the service map has the edge front → back, every call counted', async () => {
  const map = (await get(`${collector.url}/api/servicemap?${range()}`)).body as ServiceMap;
  const edge = map.edges.find((e) => e.from === 'service:otel-front' && e.to === 'service:otel-back');
  assert.ok(edge, JSON.stringify(map));
  assert.equal(edge.count, REQUESTS);
  assert.equal(edge.errors, 0);
});
