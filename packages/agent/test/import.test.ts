/** `import` of each data-store library under `node --import loopscope/register`: the ESM path is patched too. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@loopscope/protocol';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

test('an ESM app importing pg, mysql2, ioredis, redis, amqplib and nats gets their segments, and the agent prints nothing', () => {
  const report = join(mkdtempSync(join(tmpdir(), 'loopscope-')), 'records.jsonl');
  const run = spawnSync(process.execPath, ['--import', 'loopscope/register', '--import', './report.mjs', 'datastores.mjs'], {
    cwd: fixtures,
    env: { ...process.env, REPORT_FILE: report, LOOPSCOPE_COLLECTOR: 'off' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(run.status, 0, run.stderr);
  // no warning of the agent's in the app's output (Node 26 deprecates module.register(): DEP0205)
  assert.equal(run.stderr, '');
  const records = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TransactionRecord);
  const ops = (name: string): string[] => records.find((r) => r.endpoint === name)!.segments.map((s) => `${s.kind} ${s.operation}`);
  assert.deepEqual(ops('esm pg'), ['db checkout', 'db SELECT']);
  assert.deepEqual(ops('esm mysql2'), ['db checkout', 'db SELECT']);
  assert.deepEqual(ops('esm ioredis'), ['cache GET']);
  assert.deepEqual(ops('esm redis'), ['cache GET']);
  assert.deepEqual(ops('esm amqplib'), ['queue publish']);
  assert.deepEqual(ops('esm nats'), ['queue publish']);
});
