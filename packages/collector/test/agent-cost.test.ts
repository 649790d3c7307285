/**
 * What the agents say they cost, as GET /api/services gives it per service: their own time over
 * the transactions finished meanwhile and over the processes' CPU time, summed over a service's
 * processes and the range; the largest memory figure. Known inputs, known answers; a service no
 * agent reported the cost of has none, and a database of schema 7 gains the columns.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { ServiceSummary, WireBatch, WireLoop } from '@loopscope/protocol';
import { DB_FILE, SCHEMA_VERSION } from '../src/index.js';
import { batch, get, loopSample, sendBatch, startTestCollector, tempDir } from './helpers.js';

const second = Math.floor(Date.now() / 1000) * 1000 - 20_000;
const range = `from=${second - 60_000}&to=${second + 60_000}`;

function withLoop(service: string, instance: string, at: number, agent: WireLoop['agent']): WireBatch {
  const b = batch(service, instance, [], [], at + 1000);
  b.loop = loopSample(at, { cpu: { user: 400, system: 100 }, ...(agent !== undefined ? { agent } : {}) });
  return b;
}

const services = async (url: string): Promise<Map<string, ServiceSummary['agent']>> =>
  new Map(((await get(`${url}/api/services?${range}`)).body as ServiceSummary[]).map((s) => [s.service, s.agent]));

test("a service's agent cost: its agents' own time per request and per CPU time, summed over processes and time; the largest memory", async () => {
  const c = await startTestCollector();
  try {
    const sent = [
      // two processes of one service, over three seconds (the cpu figure now and then)
      withLoop('shop', 'a', second, { rss: 20e6, cpu: { ms: 12, processMs: 400, transactions: 1000 } }),
      withLoop('shop', 'a', second + 1000, { rss: 20e6 }),
      withLoop('shop', 'b', second, { rss: 25e6 }),
      withLoop('shop', 'b', second + 2000, { rss: 25e6, cpu: { ms: 8, processMs: 600, transactions: 1000 } }),
      // the profiler off: memory only
      withLoop('quiet', 'q', second, { rss: 18e6 }),
      // an agent from before the field, a proxy, a probe: nothing said
      withLoop('older', 'o', second, undefined),
    ];
    for (const b of sent) assert.equal((await sendBatch(c.url, b)).status, 200);
    const agents = await services(c.url);
    // (12 + 8) ms over 2000 transactions; over (400 + 600) ms of CPU
    assert.deepEqual(agents.get('shop'), { usPerRequest: 10, cpuShare: 0.02, rss: 25e6 });
    assert.deepEqual(agents.get('quiet'), { usPerRequest: null, cpuShare: null, rss: 18e6 });
    assert.equal(agents.get('older'), null);
    // a range of one second holds that second's figures alone
    const [shop] = ((await get(`${c.url}/api/services?from=${second + 2000}&to=${second + 3000}`)).body as ServiceSummary[]).filter((s) => s.service === 'shop');
    assert.deepEqual(shop?.agent, { usPerRequest: 8, cpuShare: 0.0133, rss: 25e6 });
  } finally {
    await c.close();
  }
});

test('a database of schema 7 gains the columns of the agent cost: its rows say nothing, new ones do', async () => {
  const seed = await startTestCollector({ dataDir: tempDir() });
  assert.equal((await sendBatch(seed.url, withLoop('shop', 'a', second, undefined))).status, 200);
  await seed.close();
  // as a collector of schema 7 left it
  const db = new Database(path.join(seed.dataDir, DB_FILE));
  for (const table of ['loop_second', 'loop_minute', 'loop_hour']) {
    for (const column of ['agentReports', 'agentMs', 'agentProcessMs', 'agentTransactions', 'agentRss']) db.exec(`ALTER TABLE ${table} DROP COLUMN ${column}`);
  }
  db.pragma('user_version = 7');
  db.close();

  const migrated = await startTestCollector({ dataDir: seed.dataDir });
  try {
    assert.equal((await services(migrated.url)).get('shop'), null, 'the rows of before say nothing of the agent');
    assert.equal((await sendBatch(migrated.url, withLoop('shop', 'a', second + 1000, { rss: 20e6, cpu: { ms: 5, processMs: 500, transactions: 100 } }))).status, 200);
    assert.deepEqual((await services(migrated.url)).get('shop'), { usPerRequest: 50, cpuShare: 0.01, rss: 20e6 });
    const db2 = new Database(path.join(seed.dataDir, DB_FILE), { readonly: true });
    assert.equal(db2.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    db2.close();
  } finally {
    await migrated.close();
  }
});
