/**
 * A long task's two locations (schema 7): where a source map put it, and where it is in the
 * compiled file. Stored and answered as sent; a database of schema 6 gains the column, its tasks
 * without one.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { LoopSummary, WireBatch, WireLongTask } from '@loopscope/protocol';
import { DB_FILE, SCHEMA_VERSION } from '../src/index.js';
import { batch, get, loopSample, sendBatch, startTestCollector, tempDir } from './helpers.js';

const second = Math.floor(Date.now() / 1000) * 1000 - 10_000;
const range = `from=${second - 60_000}&to=${second + 60_000}`;

function withTasks(id: string, tasks: WireLongTask[]): WireBatch {
  const b = batch('mapped', 'm-1', [], [], second + 1000);
  b.batchId = id;
  b.loop = loopSample(second, { longTasks: tasks });
  return b;
}

const mapped: WireLongTask = { at: second + 100, ms: 120, function: 'priceOrders', location: 'file:///app/src/app.ts:14:47', compiledLocation: 'file:///app/dist/app.mjs:3:47', blocked: [] };
const plain: WireLongTask = { at: second + 300, ms: 60, function: 'render', location: 'file:///app/lib/render.js:2:16', blocked: [] };

test('a database of schema 6 gains the compiled location: its tasks have none, new ones keep theirs', async () => {
  const seed = await startTestCollector({ dataDir: tempDir() });
  assert.equal((await sendBatch(seed.url, withTasks('old-tasks-0000001', [plain]))).status, 200);
  await seed.close();
  // as a collector of schema 6 left it
  const db = new Database(path.join(seed.dataDir, DB_FILE));
  db.exec('ALTER TABLE long_tasks DROP COLUMN compiledLocation');
  db.pragma('user_version = 6');
  db.close();

  const migrated = await startTestCollector({ dataDir: seed.dataDir });
  try {
    assert.equal((await sendBatch(migrated.url, withTasks('new-tasks-0000001', [mapped]))).status, 200);
    const loop = (await get(`${migrated.url}/api/loop?service=mapped&group=culprit&${range}`)).body as LoopSummary;
    assert.deepEqual(
      loop.longTasks.map((t) => [t.function, t.location, t.compiledLocation]),
      [
        ['render', plain.location, null],
        ['priceOrders', mapped.location, mapped.compiledLocation],
      ],
    );
    assert.deepEqual(
      loop.groups!.map((g) => [g.function, g.location, g.compiledLocation]),
      [
        ['priceOrders', mapped.location, mapped.compiledLocation],
        ['render', plain.location, null],
      ],
    );
    const db2 = new Database(path.join(seed.dataDir, DB_FILE), { readonly: true });
    assert.equal(db2.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    db2.close();
  } finally {
    await migrated.close();
  }
});
