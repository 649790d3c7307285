/**
 * `GET /api/traces/:traceId/holders`: for each wait of a trace, the long tasks and the other traces
 * that held the loop of the same process then. Batches built by hand with known times go in through
 * the real ingest; the answer must name exactly the holders that overlap, by how much.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import type { TraceHolders, WireBatch, WireLongTask, WireTrace } from '@loopscope/protocol';
import { DB_FILE } from '../src/storage/sqlite.js';
import { asSent, batch, get, loopSample, random, randomTx, sendBatch, startTestCollector, tempDir, trace, type TestCollector } from './helpers.js';

const SERVICE = 'held';
const T = Math.floor(Date.now() / 1000) * 1000 - 60_000;
const rand = random(3);

/** A trace of `instance`'s process with the given slices and waits (ms from its start). */
function tx(endpoint: string, start: number, slices: Array<[number, number]>, waits: Array<[number, number]> = []): WireTrace {
  const t = trace(SERVICE, endpoint, start, randomTx(rand, 0));
  const end = Math.max(...slices.map((s) => s[1]), ...waits.map((w) => w[1]), 1);
  return { ...t, response: end, duration: end, slices, waits };
}

function task(at: number, ms: number, of?: WireTrace): WireLongTask {
  return { at, ms, function: of ? `render${of.endpoint.replace(/\W/g, '')}` : 'tick', location: 'app.js:1:1', blocked: [], ...(of ? { endpoint: of.endpoint, traceId: of.traceId } : {}) };
}

function withLoop(b: WireBatch, longTasks: WireLongTask[]): WireBatch {
  return {
    ...b,
    loop: loopSample(T - 1000, { longTasks }),
  };
}

// the waiting trace: queued 20 ms before its first slice, then a wait from 50 to 80 ms
const waiting = tx('GET /fast', T, [[20, 25], [80, 90]], [[0, 20], [50, 80]]);
// on the same process: GET /report's long task held the loop from 100 ms before until 15 ms into it...
const report = tx('GET /report', T - 120, [[20, 135]]);
const reportTask = task(T - 100, 115, report);
// ...and GET /other ran twice during the second wait (10 + 5 ms), and once long after it
const other = tx('GET /other', T + 40, [[15, 25], [30, 35], [500, 510]]);
// a task of no transaction overlapping the second wait by 2 ms
const timer = task(T + 78, 10);
// on another process of the service, at the same times: never a holder
const elsewhere = tx('GET /elsewhere', T, [[0, 100]]);
const elsewhereTask = task(T + 50, 30, elsewhere);
// a trace that never waited
const calm = tx('GET /calm', T + 1000, [[0, 3]]);

let collector: TestCollector;

before(async () => {
  collector = await startTestCollector();
  for (const b of [
    withLoop(batch(SERVICE, 'web-1:1', [], [waiting, report, other, calm]), [reportTask, timer]),
    withLoop(batch(SERVICE, 'web-2:2', [], [elsewhere]), [elsewhereTask]),
  ]) {
    const answer = await sendBatch(collector.url, b);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  }
});

after(() => collector.close());

test("each wait names the long tasks and traces of the trace's own process that overlapped it, largest first", async () => {
  const { status, body } = await get(`${collector.url}/api/traces/${waiting.traceId}/holders`);
  assert.equal(status, 200, JSON.stringify(body));
  const expected: TraceHolders = {
    traceId: waiting.traceId,
    instance: 'web-1:1',
    waits: [
      {
        start: 0,
        end: 20,
        // the report's own slices are not listed again: its long task says more
        holders: [{ kind: 'long-task', overlap: 15, at: reportTask.at, ms: 115, endpoint: 'GET /report', traceId: report.traceId, function: 'renderGETreport', location: 'app.js:1:1', instance: 'web-1:1' }],
      },
      {
        start: 50,
        end: 80,
        holders: [
          { kind: 'trace', overlap: 15, traceId: other.traceId, endpoint: 'GET /other', instance: 'web-1:1' },
          { kind: 'long-task', overlap: 2, at: T + 78, ms: 10, endpoint: null, traceId: null, function: 'tick', location: 'app.js:1:1', instance: 'web-1:1' },
        ],
      },
    ],
  };
  assert.deepEqual(body, expected);
  // and the trace itself comes back with its slices and waits as sent
  assert.deepEqual(asSent((await get(`${collector.url}/api/traces/${waiting.traceId}`)).body), waiting);
});

test('limit keeps the largest holders of each wait; a trace without waits has none; an unknown trace is a 404', async () => {
  const one = (await get(`${collector.url}/api/traces/${waiting.traceId}/holders?limit=1`)).body as TraceHolders;
  assert.deepEqual(one.waits.map((w) => w.holders.map((h) => h.kind)), [['long-task'], ['trace']]);
  assert.deepEqual((await get(`${collector.url}/api/traces/${calm.traceId}/holders`)).body, { traceId: calm.traceId, instance: 'web-1:1', waits: [] });
  const missing = await get(`${collector.url}/api/traces/${'e'.repeat(32)}/holders`);
  assert.equal(missing.status, 404);
  assert.match(missing.body.error, /^no trace e{32}/);
});

test('a database of schema 3 gains the traces\' instance; its old traces search every process of the service', async () => {
  const dataDir = tempDir();
  const seed = await startTestCollector({ dataDir });
  await seed.close();
  // as a collector of schema 3 left it: no instance column
  const db = new Database(path.join(dataDir, DB_FILE));
  db.exec('ALTER TABLE traces DROP COLUMN instance');
  db.pragma('user_version = 3');
  const insert = db.prepare(
    'INSERT INTO traces (traceId, service, endpoint, start, status, error, response, duration, cpu, external, blocking, record) VALUES (?, ?, ?, ?, 200, 0, ?, ?, 1, 0, 1, ?)',
  );
  for (const t of [waiting, elsewhere]) insert.run(t.traceId, SERVICE, t.endpoint, t.start, t.response, t.duration, JSON.stringify(t));
  db.close();

  const migrated = await startTestCollector({ dataDir });
  try {
    const { status, body } = await get(`${migrated.url}/api/traces/${waiting.traceId}/holders`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.instance, null);
    // not knowing its process, the wait is matched against every process of the service
    assert.deepEqual(body.waits.map((w: TraceHolders['waits'][number]) => w.holders.map((h) => [h.traceId, h.overlap])), [[[elsewhere.traceId, 20]], [[elsewhere.traceId, 30]]]);
    // new traces are stored with their instance
    await sendBatch(migrated.url, batch(SERVICE, 'web-3:3', [], [calm]));
    assert.equal((await get(`${migrated.url}/api/traces/${calm.traceId}/holders`)).body.instance, 'web-3:3');
  } finally {
    await migrated.close();
  }
});
