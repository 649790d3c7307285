/**
 * Aborted requests (the connection closed before the response was finished): counted per interval
 * (`aborted`, at most `count`) and flagged per trace on the wire, kept by the store, and shown by the
 * query API: the endpoint's `aborted`, the `aborted` time series, the trace list's and the trace's flag.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import type { EndpointSummary, TimeseriesResult, TraceSummary, WireTrace } from '@loopscope/protocol';
import { DB_FILE, SCHEMA_VERSION } from '../src/index.js';
import { asSent, batch, get, interval, randomTx, random, sendBatch, startTestCollector, tempDir, trace, type TestCollector } from './helpers.js';

let collector: TestCollector;
const second = Math.floor(Date.now() / 1000) * 1000 - 10_000;
const range = `from=${second - 60_000}&to=${second + 60_000}`;
const rand = random(19);

before(async () => {
  collector = await startTestCollector();
});
after(() => collector.close());

/** An aborted trace as the agent sends it: the app's answer never reached the client. */
function abortedTrace(service: string, endpoint: string, start: number): WireTrace {
  return { ...trace(service, endpoint, start, randomTx(rand, 0)), aborted: true, status: 200 };
}

test('aborted requests: counted per endpoint and per second, flagged in the trace list and the trace', async () => {
  const txs = Array.from({ length: 10 }, () => randomTx(rand, 0));
  const gone = abortedTrace('shop', 'GET /items/:id', second + 3);
  const kept = trace('shop', 'GET /items/:id', second + 5, txs[0]!);
  const answer = await sendBatch(collector.url, batch('shop', 'h:1', [{ ...interval('GET /items/:id', second, txs), aborted: 3 }, interval('GET /health', second, txs.slice(0, 4))], [gone, kept]));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  // one more second of the same endpoint: the counts add up
  await sendBatch(collector.url, batch('shop', 'h:2', [{ ...interval('GET /items/:id', second, txs.slice(0, 2)), aborted: 1 }]));

  const rows = (await get(`${collector.url}/api/endpoints?service=shop&${range}`)).body as EndpointSummary[];
  assert.deepEqual(rows.map((r) => [r.endpoint, r.count, r.errors, r.aborted]), [['GET /items/:id', 12, 0, 4], ['GET /health', 4, 0, 0]]);

  const series = (await get(`${collector.url}/api/timeseries?service=shop&endpoint=${encodeURIComponent('GET /items/:id')}&metric=aborted&step=1000&${range}`)).body as TimeseriesResult;
  assert.deepEqual(series.points.filter(([, v]) => v !== null), [[second, 4]], 'aborted per second');

  const list = (await get(`${collector.url}/api/traces?service=shop&sort=recent&${range}`)).body as TraceSummary[];
  assert.deepEqual(list.map((t) => [t.traceId, t.aborted]), [[kept.traceId, false], [gone.traceId, true]]);
  assert.deepEqual(asSent((await get(`${collector.url}/api/traces/${gone.traceId}`)).body), gone, 'the trace comes back as it was sent, its flag with it');
});

test('an interval cannot have more aborted requests than it counts; a trace whose flag is not a boolean is left out', async () => {
  const txs = Array.from({ length: 2 }, () => randomTx(rand, 0));
  const answer = await sendBatch(collector.url, batch('shop', 'h:3', [{ ...interval('GET /x', second, txs), aborted: 3 }]));
  assert.equal(answer.status, 400);
  assert.equal(answer.body.error, '/intervals/0/aborted 3 is more than count 2');
  const flag = await sendBatch(collector.url, batch('shop', 'h:3', [], [{ ...trace('shop', 'GET /x', second, txs[0]!), aborted: 'yes' as unknown as boolean }]));
  assert.equal(flag.status, 200);
  assert.equal(flag.body.rejected.traces, 1);
  assert.match(flag.body.rejected.message, /^\/traces\/0\/aborted/);
});

test('a database of schema 4 gains the aborted counts: its rows count none, new ones add up', async () => {
  const seed = await startTestCollector({ dataDir: tempDir() });
  const txs = Array.from({ length: 5 }, () => randomTx(rand, 0));
  await sendBatch(seed.url, batch('old', 'h:1', [interval('GET /old', second, txs)]));
  await seed.close();
  // as a collector of schema 4 left it: no aborted column
  const db = new Database(path.join(seed.dataDir, DB_FILE));
  for (const res of ['second', 'minute', 'hour']) db.exec(`ALTER TABLE agg_${res} DROP COLUMN aborted`);
  db.pragma('user_version = 4');
  db.close();

  const migrated = await startTestCollector({ dataDir: seed.dataDir });
  try {
    const before = (await get(`${migrated.url}/api/endpoints?service=old&${range}`)).body as EndpointSummary[];
    assert.deepEqual(before.map((r) => [r.count, r.aborted]), [[5, 0]]);
    await sendBatch(migrated.url, batch('old', 'h:1', [{ ...interval('GET /old', second, txs.slice(0, 2)), aborted: 2 }]));
    const rows = (await get(`${migrated.url}/api/endpoints?service=old&${range}`)).body as EndpointSummary[];
    assert.deepEqual(rows.map((r) => [r.count, r.aborted]), [[7, 2]]);
    const db2 = new Database(path.join(seed.dataDir, DB_FILE), { readonly: true });
    assert.equal(db2.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    db2.close();
  } finally {
    await migrated.close();
  }
});
