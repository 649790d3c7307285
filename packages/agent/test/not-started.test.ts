/**
 * The API before the agent is started: like OpenTelemetry's API before an SDK is registered, every
 * call only runs the code it is given and installs nothing; a listener subscribed then is attached
 * at the start. Observed in a process of its own (fixtures/fingerprint.mjs) that uses the whole API,
 * fingerprints the process, then starts the agent and serves a request.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fingerprint } from './helpers.js';

test('before start(): the API runs the code it is given and installs nothing; a listener subscribed then gets what follows the start', async () => {
  const run = await fingerprint([], { LOOPSCOPE_ENABLED: 'true', FINGERPRINT_API_FIRST: '1' });
  assert.deepEqual(run.beforeStart, { wrapped: true, job: 42, asyncJob: null }, 'wrap returned the function itself, the jobs ran, and there was no current transaction');
  assert.deepEqual(run.changedBeforeStart, [], 'nothing the agent installs was there before the start');
  // once started, the agent is there (the same observations see it) ...
  assert.deepEqual(run.changed, Object.keys(run.seen));
  // ... and the listener subscribed before the start got what ran after it, not what ran before
  for (const endpoint of ['job', 'async job', 'GET /request']) assert.ok(run.delivered.includes(endpoint), `delivered ${endpoint}: ${run.delivered.join(', ')}`);
  assert.ok(!run.delivered.some((endpoint) => endpoint.startsWith('early')), `nothing from before the start: ${run.delivered.join(', ')}`);
});
