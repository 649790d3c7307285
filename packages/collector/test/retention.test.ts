/** A batch sent twice is stored once; pruning deletes each kind of row after its retention. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import type { WireBatch } from '@loopscope/protocol';
import { DB_FILE } from '../src/index.js';
import { batch, get, interval, random, randomTx, sendBatch, startTestCollector, trace, type TestCollector } from './helpers.js';

const rand = random(3);
let collector: TestCollector;

before(async () => {
  collector = await startTestCollector();
});
after(() => collector.close());

test('a batch sent twice (a retry after a lost acknowledgement) is stored once', async () => {
  const now = Date.now();
  const txs = Array.from({ length: 7 }, () => randomTx(rand));
  const b = batch('dup', 'i-1', [interval('GET /x', now - 3000, txs)], [trace('dup', 'GET /x', now - 3000, txs[0]!)]);
  const first = await sendBatch(collector.url, b);
  assert.deepEqual(first.body, { ok: true, batchId: b.batchId, duplicate: false });
  const again = await Promise.all([sendBatch(collector.url, b), sendBatch(collector.url, b)]);
  for (const a of again) assert.deepEqual(a, { status: 200, body: { ok: true, batchId: b.batchId, duplicate: true } });

  const [row] = (await get(`${collector.url}/api/endpoints?service=dup`)).body;
  assert.equal(row.count, 7);
  const throughput = (await get(`${collector.url}/api/timeseries?service=dup&metric=throughput&step=1000`)).body;
  assert.equal(throughput.points.reduce((sum: number, p: [number, number | null]) => sum + (p[1] ?? 0), 0), 7);
  assert.equal((await get(`${collector.url}/api/traces?service=dup`)).body.length, 1);
});

test('services report what their agents dropped: the latest counter of each instance, summed', async () => {
  const now = Date.now();
  const send = async (instance: string, dropped: WireBatch['dropped'], sentAt: number): Promise<void> => {
    const b = batch('lossy', instance, [interval('GET /l', sentAt - 1000, [randomTx(rand)])], [], sentAt);
    b.dropped = dropped;
    assert.equal((await sendBatch(collector.url, b)).status, 200);
  };
  await send('i-1', { batches: 2, transactions: 40, traces: 3 }, now - 2000);
  await send('i-1', { batches: 5, transactions: 90, traces: 4 }, now - 1000);
  await send('i-2', { batches: 1, transactions: 10, traces: 0 }, now - 1000);
  const [service] = (await get(`${collector.url}/api/services`)).body.filter((s: any) => s.service === 'lossy');
  assert.deepEqual(service, { service: 'lossy', firstSeen: now - 3000, lastSeen: now - 1000, instances: 2, dropped: { batches: 6, transactions: 100, traces: 4, parts: 0, cut: 0 }, agents: ['test'], agent: null });
});

test('pruning deletes per-second rows after 2 h, traces and per-minute rows after 7 d, per-hour rows after 90 d', async () => {
  const now = Date.now();
  const txs = [randomTx(rand), randomTx(rand)];
  const b = batch('old', 'i-1', [interval('GET /y', now - 1000, txs)], [trace('old', 'GET /y', now - 1000, txs[0]!)]);
  assert.equal((await sendBatch(collector.url, b)).status, 200);

  const db = new Database(path.join(collector.dataDir, DB_FILE), { readonly: true });
  const rows = (): Record<string, number> => {
    const count = (table: string): number => (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${table === 'batches' ? `batchId = '${b.batchId}'` : "service = 'old'"}`).get() as { n: number }).n;
    return Object.fromEntries(['agg_second', 'agg_minute', 'agg_hour', 'traces', 'instances', 'batches'].map((t) => [t, count(t)]));
  };
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;
  try {
    await collector.storage.prune(now);
    assert.deepEqual(rows(), { agg_second: 1, agg_minute: 1, agg_hour: 1, traces: 1, instances: 1, batches: 1 });
    await collector.storage.prune(now + 2 * HOUR + 60_000);
    assert.deepEqual(rows(), { agg_second: 0, agg_minute: 1, agg_hour: 1, traces: 1, instances: 1, batches: 1 });
    await collector.storage.prune(now + DAY + 60_000);
    assert.deepEqual(rows(), { agg_second: 0, agg_minute: 1, agg_hour: 1, traces: 1, instances: 1, batches: 0 });
    await collector.storage.prune(now + 7 * DAY + HOUR);
    assert.deepEqual(rows(), { agg_second: 0, agg_minute: 0, agg_hour: 1, traces: 0, instances: 1, batches: 0 });
    await collector.storage.prune(now + 90 * DAY + 2 * HOUR);
    assert.deepEqual(rows(), { agg_second: 0, agg_minute: 0, agg_hour: 0, traces: 0, instances: 0, batches: 0 });
  } finally {
    db.close();
  }
});

test('retention is configurable: a short per-second retention leaves per-minute rows to answer', async () => {
  const short = await startTestCollector({ retention: { seconds: 10_000 } });
  try {
    const now = Date.now();
    const txs = Array.from({ length: 5 }, () => randomTx(rand));
    assert.equal((await sendBatch(short.url, batch('short', 'i-1', [interval('GET /z', now - 1000, txs)]))).status, 200);
    await short.storage.prune(now + 30_000);
    const db = new Database(path.join(short.dataDir, DB_FILE), { readonly: true });
    try {
      assert.equal((db.prepare("SELECT COUNT(*) AS n FROM agg_second WHERE service = 'short'").get() as { n: number }).n, 0);
      assert.equal((db.prepare("SELECT COUNT(*) AS n FROM agg_minute WHERE service = 'short'").get() as { n: number }).n, 1);
    } finally {
      db.close();
    }
  } finally {
    await short.close();
  }
});
