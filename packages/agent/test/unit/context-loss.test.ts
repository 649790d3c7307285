/**
 * The call site a lost request is counted under: the outermost frame of the app's and its
 * libraries' code on the stack (context-loss.ts), read from stacks as V8 writes them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { outermostAppFrame } from '../../src/context-loss.js';

const agentFile = fileURLToPath(new URL('../../src/context.js', import.meta.url));

const stack = (...frames: string[]): string => ['Error', ...frames.map((f) => `    at ${f}`)].join('\n');

test('the outermost frame of app code names the package that called it from outside the request', () => {
  const found = outermostAppFrame(
    stack(
      `ServerResponse.end (${agentFile}:10:3)`,
      'answer (/srv/app/server.js:12:9)',
      'Socket.answers (/srv/app/node_modules/lossy-client/index.js:20:24)',
      'Socket.emit (node:events:508:28)',
      'addChunk (node:internal/streams/readable:559:12)',
      'TCP.onStreamRead (node:internal/stream_base_commons:189:23)',
    ),
  );
  assert.deepEqual(found, { module: 'lossy-client', site: '/srv/app/node_modules/lossy-client/index.js:20:24', function: 'Socket.answers' });
});

test('a scoped package, a package inside another, an ES module by its URL, the app itself', () => {
  assert.equal(outermostAppFrame(stack('drain (/srv/node_modules/@acme/pool/lib/queue.js:4:1)', 'listOnTimeout (node:internal/timers:588:17)'))?.module, '@acme/pool');
  assert.equal(outermostAppFrame(stack('x (/srv/node_modules/a/node_modules/b/index.js:1:1)'))?.module, 'b');
  assert.deepEqual(outermostAppFrame(stack('file:///srv/node_modules/esm-lib/index.mjs:7:5', 'processTicksAndRejections (node:internal/process/task_queues:105:5)')), {
    module: 'esm-lib',
    site: 'file:///srv/node_modules/esm-lib/index.mjs:7:5',
    function: '',
  });
  assert.equal(outermostAppFrame(stack('Timeout.flush [as _onTimeout] (/srv/app/batch.js:30:7)', 'listOnTimeout (node:internal/timers:588:17)'))?.module, 'app');
});

test('no app frame at all (the runtime and the agent only): nothing to name', () => {
  assert.equal(outermostAppFrame(stack(`end (${agentFile}:1:1)`, 'Socket.emit (node:events:508:28)', 'new Promise (<anonymous>)')), undefined);
});

test("a module's URL is shipped without its query and fragment, a path as it is", () => {
  assert.equal(outermostAppFrame(stack('tick (file:///srv/app/jobs.mjs?token=s3cr3t#x:3:9)'))?.site, 'file:///srv/app/jobs.mjs:3:9');
  assert.equal(outermostAppFrame(stack('tick (/srv/C#/app?/jobs.js:3:9)'))?.site, '/srv/C#/app?/jobs.js:3:9');
  assert.equal(outermostAppFrame(stack('tick (data:text/javascript,const key = "s3cr3t"; setTimeout(f):1:40)'))?.site, 'data:text/javascript,:1:40');
});
