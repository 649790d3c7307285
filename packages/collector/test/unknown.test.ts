/**
 * cpu, external and blocking from a sender outside the process (`loopscope proxy`, `loopscope
 * probe`): null on the wire, kept as unknown, and null in every answer of the query API — never 0.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import type { WireBatch, WireInterval, WireTrace } from '@loopscope/protocol';
import { DB_FILE, openSqliteStorage, type EndpointSummary, type EndpointView, type ServiceSummary, type TimeseriesResult, type TraceSummary } from '../src/index.js';
import { asSent, batch, get, interval, post, randomTx, random, startTestCollector, tempDir, trace, type TestCollector } from './helpers.js';

let collector: TestCollector;
const second = Math.floor(Date.now() / 1000) * 1000 - 10_000;
const rand = random(6);

/** An interval and a trace as a proxy sends them: the inside metrics null. */
function outside(service: string, endpoint: string, n: number): { iv: WireInterval; tr: WireTrace } {
  const txs = Array.from({ length: n }, () => randomTx(rand, 0));
  const iv: WireInterval = { ...interval(endpoint, second, txs), cpu: null, external: null, blocking: null };
  const tr: WireTrace = { ...trace(service, endpoint, second + 5, txs[0]!), cpu: null, external: null, blocking: null, externalByKind: {}, segments: [], criticalPath: [], firstByte: 1.5, requestBytes: 0, responseBytes: 12 };
  return { iv, tr };
}

function from(sender: string, b: WireBatch): WireBatch {
  return { ...b, agent: { name: sender, version: '0.1.0' } };
}

before(async () => {
  collector = await startTestCollector();
});
after(() => collector.close());

test('a proxy batch is stored, and the API says null for what it cannot know', async () => {
  const { iv, tr } = outside('web-proxy', 'GET /users/:id', 20);
  const answer = await post(`${collector.url}/v1/ingest`, JSON.stringify(from('loopscope-proxy', batch('web-proxy', 'host:1', [iv], [tr]))));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const range = `from=${second - 60_000}&to=${second + 60_000}`;
  const [row] = (await get(`${collector.url}/api/endpoints?service=web-proxy&${range}`)).body as EndpointSummary[];
  assert.equal(row!.count, 20);
  assert.ok(row!.response.p50 > 0);
  assert.deepEqual([row!.cpu, row!.external, row!.blocking, row!.externalByKind], [null, null, null, {}]);
  const cpu = (await get(`${collector.url}/api/timeseries?service=web-proxy&metric=cpu&step=1000&${range}`)).body as TimeseriesResult;
  assert.ok(cpu.points.every(([, v]) => v === null), 'no 0 where cpu is unknown');
  const response = (await get(`${collector.url}/api/timeseries?service=web-proxy&metric=response&step=1000&${range}`)).body as TimeseriesResult;
  assert.equal(response.points.filter(([, v]) => v !== null).length, 1);
  const [summary] = (await get(`${collector.url}/api/traces?service=web-proxy&${range}`)).body as TraceSummary[];
  assert.deepEqual([summary!.cpu, summary!.external, summary!.blocking], [null, null, null]);
  assert.deepEqual(asSent((await get(`${collector.url}/api/traces/${tr.traceId}`)).body), tr, 'the trace comes back as it was sent');
  const services = (await get(`${collector.url}/api/services?${range}`)).body as ServiceSummary[];
  assert.deepEqual(services.find((s) => s.service === 'web-proxy')?.agents, ['loopscope-proxy']);
});

test('/api/views: one endpoint in every service, with who reported it', async () => {
  const endpoint = 'GET /orders/:id';
  const inside = Array.from({ length: 30 }, () => randomTx(rand, 0));
  await post(`${collector.url}/v1/ingest`, JSON.stringify(from('loopscope', batch('shop', 'host:2', [interval(endpoint, second, inside)]))));
  await post(`${collector.url}/v1/ingest`, JSON.stringify(from('loopscope-proxy', batch('shop-proxy', 'host:3', [outside('shop-proxy', endpoint, 30).iv]))));
  const views = (await get(`${collector.url}/api/views?endpoint=${encodeURIComponent(endpoint)}&from=${second - 60_000}&to=${second + 60_000}`)).body as EndpointView[];
  assert.deepEqual(views.map((v) => [v.service, v.agents, v.count, v.cpu === null]).sort(), [
    ['shop', ['loopscope'], 30, false],
    ['shop-proxy', ['loopscope-proxy'], 30, true],
  ]);
  assert.ok(views.every((v) => v.endpoint === endpoint));
  const missing = await get(`${collector.url}/api/views`);
  assert.equal(missing.status, 400);
  assert.match(missing.body.error, /^endpoint is required/);
});

test('where some senders of a service know cpu and others do not, its percentiles cover those that know', async () => {
  const endpoint = 'GET /mixed';
  const known = Array.from({ length: 10 }, () => ({ ...randomTx(rand, 0), cpu: 7 }));
  await post(`${collector.url}/v1/ingest`, JSON.stringify(batch('mixed', 'a:1', [interval(endpoint, second, known)])));
  await post(`${collector.url}/v1/ingest`, JSON.stringify(from('loopscope-proxy', batch('mixed', 'b:1', [outside('mixed', endpoint, 5).iv]))));
  const [row] = (await get(`${collector.url}/api/endpoints?service=mixed&from=${second - 60_000}&to=${second + 60_000}`)).body as EndpointSummary[];
  assert.equal(row!.count, 15);
  assert.equal(row!.cpu!.max, 7);
  assert.equal(row!.cpu!.mean, 7, 'the mean of the ten that know, not diluted by five zeros');
});

test('null is allowed for cpu, external and blocking only; a sketch that is there still counts every transaction', async () => {
  const { iv } = outside('bad', 'GET /x', 3);
  const cases: Array<[WireInterval, RegExp]> = [
    [{ ...iv, response: null } as unknown as WireInterval, /^\/intervals\/0\/response /],
    [{ ...iv, cpu: { ...iv.response, n: 2 } }, /^\/intervals\/0\/cpu: bins and zero hold 3 values but n is 2/],
  ];
  for (const [bad, message] of cases) {
    const answer = await post(`${collector.url}/v1/ingest`, JSON.stringify(batch('bad', 'h:1', [bad])));
    assert.equal(answer.status, 400);
    assert.match(answer.body.error, message);
  }
});

test('a database of schema 2 is migrated: its traces kept, cpu of new ones may be null', async () => {
  const dataDir = tempDir();
  const db = new Database(path.join(dataDir, DB_FILE));
  db.exec(`CREATE TABLE traces (
      traceId TEXT PRIMARY KEY, service TEXT NOT NULL, endpoint TEXT NOT NULL, start REAL NOT NULL,
      status INTEGER NOT NULL, error INTEGER NOT NULL,
      response REAL NOT NULL, duration REAL NOT NULL, cpu REAL NOT NULL, external REAL NOT NULL, blocking REAL NOT NULL,
      record TEXT NOT NULL);
    CREATE TABLE instances (
      service TEXT NOT NULL, instance TEXT NOT NULL, firstSeen INTEGER NOT NULL, lastSeen INTEGER NOT NULL,
      droppedBatches INTEGER NOT NULL, droppedTransactions INTEGER NOT NULL, droppedTraces INTEGER NOT NULL,
      PRIMARY KEY (service, instance));`);
  const old = trace('old', 'GET /old', second, randomTx(rand, 0));
  db.prepare('INSERT INTO traces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(old.traceId, 'old', old.endpoint, old.start, 200, 0, old.response, old.duration, old.cpu, old.external, old.blocking, JSON.stringify(old));
  db.prepare('INSERT INTO instances VALUES (?, ?, ?, ?, 0, 0, 0)').run('old', 'h:1', second, second);
  db.pragma('user_version = 2');
  db.close();

  const storage = openSqliteStorage({ dataDir });
  try {
    assert.deepEqual((await storage.traceParts(old.traceId)).map((p) => p.record), [old]);
    const { iv, tr } = outside('new-proxy', 'GET /new', 2);
    await storage.ingest(from('loopscope-proxy', batch('new-proxy', 'h:2', [iv], [tr])), Date.now());
    const [summary] = await storage.traces({ service: 'new-proxy', from: second - 1000, to: second + 1000, sort: 'recent', limit: 5 });
    assert.equal(summary!.cpu, null);
    const services = await storage.services({ from: second - 60_000, to: second + 60_000 });
    assert.deepEqual(services.map((s) => [s.service, s.agents]), [['new-proxy', ['loopscope-proxy']], ['old', ['loopscope']]]);
  } finally {
    await storage.close();
  }
});
