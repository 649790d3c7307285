/**
 * LOOPSCOPE_ENABLED=false: the API runs the code it is given, installs nothing and delivers
 * nothing. What the agent installs and delivers is observed in a process of its own
 * (fixtures/fingerprint.mjs), run twice in the same setup: disabled, and enabled as the control. An
 * observation that cannot tell a running agent from none fails the control; one that can, and sees
 * an agent while it is disabled, fails the test.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fingerprint } from './helpers.js';

test('disabled: the process is as it was, and no transaction is delivered; enabled (the control): each of these changes, and they are', async () => {
  const [disabled, enabled] = await Promise.all([fingerprint([], { LOOPSCOPE_ENABLED: 'false' }), fingerprint([], { LOOPSCOPE_ENABLED: 'true' })]);
  // the app works either way
  assert.equal(disabled.body, 'fed');
  assert.equal(enabled.body, 'fed');
  // every observation can see an agent...
  assert.deepEqual(enabled.changed, Object.keys(enabled.seen));
  for (const endpoint of ['job', 'async job', 'GET /request']) assert.ok(enabled.delivered.includes(endpoint), `the control delivered ${endpoint}: ${enabled.delivered.join(', ')}`);
  // ...and sees none when it is disabled
  assert.deepEqual(disabled.changed, []);
  assert.deepEqual(disabled.delivered, []);
});

test('disabled, in this process: every API call is a pass-through', async () => {
  process.env.LOOPSCOPE_ENABLED = 'false';
  const { current, segment, start, transaction, wrap } = await import('../src/index.js');
  assert.equal(start(), undefined);
  const fn = (): number => 42;
  assert.equal(wrap(fn), fn);
  assert.equal(transaction('job', () => segment('step', 'db', fn)), 42);
  assert.equal(await transaction('async job', async () => current()), undefined);
});
