/** `import` of each data-store library under `node --import loopscope/register`: the ESM path is patched too. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runToEnd } from './helpers.js';

test('an ESM app importing pg, mysql2, ioredis, redis, amqplib and nats gets their segments, and the agent prints nothing', () => {
  const run = runToEnd([], 'datastores.mjs', 20_000);
  assert.equal(run.status, 0, run.stderr);
  // no warning of the agent's in the app's output (Node 26 deprecates module.register(): DEP0205)
  assert.equal(run.stderr, '');
  const records = run.records;
  const ops = (name: string): string[] => records.find((r) => r.endpoint === name)!.segments.map((s) => `${s.kind} ${s.operation}`);
  assert.deepEqual(ops('esm pg'), ['db checkout', 'db SELECT']);
  assert.deepEqual(ops('esm mysql2'), ['db checkout', 'db SELECT']);
  assert.deepEqual(ops('esm ioredis'), ['cache GET']);
  assert.deepEqual(ops('esm redis'), ['cache GET']);
  assert.deepEqual(ops('esm amqplib'), ['queue publish']);
  assert.deepEqual(ops('esm nats'), ['queue publish']);
});
