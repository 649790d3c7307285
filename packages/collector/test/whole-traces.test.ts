/**
 * Whole traces across services: a chain gateway → orders → stock, each an app under the agent
 * shipping to this collector. The gateway keeps its failed requests' traces; orders and stock, which
 * never fail and sample nothing at random, would keep only their slowest per interval. Every failed
 * trace must still arrive whole: the collector asks for the missing parts in its answers to their
 * batches, and the agents that hold them ship them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { get, startTestCollector, until, type TestCollector } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
let collector: TestCollector;
const apps: ChildProcess[] = [];

async function startService(service: string, next?: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'loopscope/register', 'chain-app.mjs'], {
    cwd: fixtures,
    env: { ...process.env, LOOPSCOPE_COLLECTOR: collector.url, LOOPSCOPE_SERVICE: service, LOOPSCOPE_SAMPLE_RATE: '0', ...(next !== undefined ? { NEXT_URL: next } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  apps.push(child);
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  const url = /listening (\S+)/.exec(chunk.toString())?.[1];
  assert.ok(url, chunk.toString());
  return url;
}

before(async () => {
  collector = await startTestCollector();
});
after(async () => {
  for (const child of apps) child.kill('SIGTERM');
  await Promise.all(apps.map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
  await collector.close();
});

test('every failed trace of the gateway arrives with the parts of orders and stock', async () => {
  const stock = await startService('stock');
  const orders = await startService('orders', stock);
  const gateway = await startService('gateway', orders);
  const requests = 60;
  for (let i = 0; i < requests; i++) {
    const res = await fetch(`${gateway}/work${i % 5 === 0 ? '?fail=1' : ''}`);
    assert.equal(res.status, i % 5 === 0 ? 500 : 200);
    await res.text();
  }
  const range = `from=${Date.now() - 120_000}&to=${Date.now() + 60_000}`;
  const failed = async (): Promise<string[]> =>
    ((await get(`${collector.url}/api/traces?service=gateway&sort=recent&limit=1000&${range}`)).body as Array<{ traceId: string; status: number }>).filter((t) => t.status === 500).map((t) => t.traceId);
  const whole = async (traceId: string): Promise<boolean> => {
    const parts = (await get(`${collector.url}/api/traces/${traceId}`)).body.parts as Array<{ service: string; orphan: boolean }>;
    return parts.length === 3 && parts.every((p) => !p.orphan);
  };
  // the agents flush every second, and the parts asked for come one or two batches later
  const deadline = Date.now() + 15_000;
  let ids: string[] = [];
  let complete: boolean[] = [];
  do {
    await new Promise((r) => setTimeout(r, 500));
    ids = await failed();
    complete = await Promise.all(ids.map(whole));
  } while ((ids.length < requests / 5 || complete.includes(false)) && Date.now() < deadline);
  assert.equal(ids.length, requests / 5, 'every failed request of the gateway has its trace');
  assert.deepEqual(ids.filter((_, i) => !complete[i]), [], 'traces missing a part');
  const one = (await get(`${collector.url}/api/traces/${ids[0]}`)).body;
  assert.deepEqual(one.parts.map((p: { service: string }) => p.service), ['gateway', 'orders', 'stock']);
  // the stock service's own parts: all of them under orders' calls
  assert.ok(one.parts[2].parentSpanId === one.parts[1].segments[0].spanId);
});

test('the service map: gateway calls orders, orders calls stock, every call counted (not a sample)', async () => {
  const range = `from=${Date.now() - 120_000}&to=${Date.now() + 60_000}`;
  type Map = { nodes: Array<{ id: string; kind: string; name: string }>; edges: Array<{ from: string; to: string; kind: string; count: number; errors: number; p95: number }> };
  const map = await until('every call of the 60 requests in the map', async () => {
    const m = (await get(`${collector.url}/api/servicemap?${range}`)).body as Map;
    return m.edges.length === 2 && m.edges.every((e) => e.count === 60) ? m : undefined;
  }, () => `${collector.url}/api/servicemap?${range}`);
  assert.deepEqual(map.nodes.map((n) => `${n.kind} ${n.name}`), ['service gateway', 'service orders', 'service stock']);
  assert.deepEqual(
    map.edges.map((e) => [e.from, e.to, e.kind, e.count, e.errors]).sort(),
    [
      ['service:gateway', 'service:orders', 'http', 60, 0],
      ['service:orders', 'service:stock', 'http', 60, 0],
    ],
  );
  for (const e of map.edges) assert.ok(e.p95 > 0, JSON.stringify(e));
});
