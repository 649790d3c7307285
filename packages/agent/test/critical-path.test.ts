/**
 * The critical path as the agent sees it: work the code never waited for (a fire-and-forget fetch,
 * an http request nobody listens to) is never on it, and the path ends at the response.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { start } from '../src/index.js';
import { get, listen, recorder, startUpstream } from './helpers.js';

start({ service: 'critical-path' });
const records = recorder();
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let app: string;

const server = http.createServer(async (req, res) => {
  if (req.url === '/detached') {
    void fetch(`${upstream.url}/delay/30`); // analytics ping, never awaited
    await (await fetch(`${upstream.url}/delay/10`)).text();
    await sleep(40);
  } else if (req.url === '/after-response') {
    await get(`${upstream.url}/delay/10`);
    res.end('done');
    await get(`${upstream.url}/delay/30`); // cleanup after the response: in duration, not on the path
    return;
  }
  res.end('done');
});

before(async () => {
  upstream = await startUpstream();
  app = await listen(server);
  // once cold: loading undici and compiling its response handling holds the loop for tens of ms,
  // and the answers of both calls are then delivered in the same loop turn, ready at the same time
  for (const path of ['/detached', '/after-response']) {
    await get(app + path);
    await records.next(`GET ${path}`);
  }
});
after(() => {
  server.close();
  upstream.close();
});

test('a fire-and-forget fetch is not on the critical path, even when it ended last', async () => {
  await get(`${app}/detached`);
  const record = await records.next('GET /detached');
  assert.equal(record.segments.length, 2);
  const [detached, awaited] = record.segments;
  assert.ok(detached!.end > awaited!.end, 'the scenario: the detached call ends after the awaited one');
  assert.deepEqual(record.criticalPath, [awaited!.id]);
  assert.equal(detached!.onCriticalPath, false);
});

test('work after the response is in the duration but the path ends at the response', async () => {
  await get(`${app}/after-response`);
  const record = await records.next('GET /after-response');
  assert.equal(record.segments.length, 2);
  assert.deepEqual(record.criticalPath, [record.segments[0]!.id]);
  assert.ok(record.duration >= record.response + 30, `duration ${record.duration} response ${record.response}`);
});
