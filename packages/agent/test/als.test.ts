/**
 * The app's own AsyncLocalStorage and the agent's context together: neither disturbs the other, on
 * AsyncContextFrame (Node 24 and 26's default) and without it (`--no-async-context-frame`, and Node
 * 22's async hooks). fixtures/als-app.mjs serves 40 concurrent requests, each entering the app's
 * store (run() for even requests, enterWith() for odd ones) and reading it back across every way
 * context travels, while timing each step as a segment through the agent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runToEnd } from './helpers.js';
const STEPS = ['await', 'setTimeout', 'setImmediate', 'queueMicrotask', 'nextTick'];
const frameFlag = process.allowedNodeEnvironmentFlags.has('--no-async-context-frame');

for (const flags of frameFlag ? [[], ['--no-async-context-frame']] : [[]]) {
  test(`an app's own AsyncLocalStorage under the agent${flags.length > 0 ? ' (' + flags[0] + ')' : ''}: the app sees its store, the agent its transactions`, () => {
    const run = runToEnd(flags, 'als-app.mjs', 30_000);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, '');
    const { answers, outside } = JSON.parse(run.stdout) as { answers: Array<{ n: number; got: Record<string, unknown> }>; outside: unknown };
    // the app: every request read its own store back on every path
    assert.equal(answers.length, 40);
    for (const { n, got } of answers) {
      assert.deepEqual(got, { ...Object.fromEntries(STEPS.map((s) => [s, n])), emitter: n, asyncResource: n, fetch: n, current: 'GET /req/:id' }, `request ${n}`);
    }
    assert.equal(outside, null, 'no store leaked out of the requests');
    // the agent: one transaction per request, each with its own steps and its own fetch
    const records = run.records.filter((r) => r.endpoint === 'GET /req/:id');
    assert.equal(records.length, 40);
    for (const r of records) {
      const names = r.segments.map((s) => s.name);
      assert.deepEqual(names.filter((name) => STEPS.includes(name)), STEPS, r.traceId);
      assert.equal(r.segments.filter((s) => s.kind === 'http').length, 1, `one fetch in ${r.traceId}: ${names.join(', ')}`);
    }
  });
}
