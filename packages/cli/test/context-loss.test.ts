/**
 * Lost context, found and named (GET /api/context-loss), end to end: an app under the agent → a
 * real collector. The app's library, lossy-client (fixtures/node_modules), loses its callers'
 * context on purpose: it calls each callback from its one connection, opened before any request.
 * Ground truth by construction: every GET /lost works BUSY_MS in that callback, then answers; so
 * each of those requests is ended outside itself, after at least BUSY_MS of its work ran outside it
 * (and the socket's read, the agent's look at the stack: a few ms at most). GET /wrapped does the
 * same through loopscope.wrap (not lost); GET /wait is answered by GET /notify (long polling, not
 * lost); a timer of the app's own works outside any request (not lost either: it ends none).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startCollector } from '@loopscope/collector';
import type { ContextLossSite } from '@loopscope/protocol';
import { api, get, startApp, stopApp, tempDir, until } from './helpers.js';

const BUSY_MS = 5;
/** what a lost request's callback may run outside it beyond its work: reading the socket, the first look at the stack */
const SLACK_MS = 4;
const SEQUENTIAL = 20;
const CONCURRENT = 10;
const LOST = SEQUENTIAL + CONCURRENT;

test('context lost by a library: its module, call site and function, the requests and the time lost; wrapped callbacks and long polling are not lost', async (t) => {
  // the line server lossy-client talks to: each line back after 10 ms
  const upstream = net.createServer((socket) => {
    socket.setEncoding('utf8');
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        setTimeout(() => socket.write(`${line}\n`), 10);
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  const app = await startApp('lossy-app.mjs', collector.url, {
    LOOPSCOPE_SERVICE: 'lossy',
    UPSTREAM_PORT: String((upstream.address() as net.AddressInfo).port),
    BUSY_MS: String(BUSY_MS),
  });
  try {
    const from = Date.now() - 1000;
    let answered: string | undefined;
    void get(`${app.url}/wait`).then((a) => (answered = a.body));
    // (the long poll may not have reached the app yet: notify until it is answered)
    await until('the long poll answered', async () => ((await get(`${app.url}/notify`)).body === 'ok' && answered !== undefined ? answered : undefined));
    assert.equal(answered, 'notified');
    for (let i = 0; i < SEQUENTIAL; i++) {
      assert.equal((await get(`${app.url}/lost`)).body, 'lost');
      assert.equal((await get(`${app.url}/wrapped`)).body, 'wrapped');
    }
    const answers = await Promise.all(Array.from({ length: CONCURRENT }, () => get(`${app.url}/lost`)));
    assert.deepEqual(new Set(answers.map((a) => a.body)), new Set(['lost']));

    const sites = await until('the losses at the collector', async () => {
      const s = await api<ContextLossSite[]>(collector.url, `/api/context-loss?service=lossy&from=${from}&to=${Date.now() + 1000}`);
      return s.reduce((n, x) => n + x.count, 0) >= LOST ? s : undefined;
    });
    // one site, lossy-client's connection callback: every /lost, and nothing else
    assert.equal(sites.length, 1, JSON.stringify(sites));
    const [site] = sites;
    t.diagnostic(JSON.stringify(site));
    assert.equal(site!.module, 'lossy-client');
    assert.match(site!.site, /node_modules\/lossy-client\/index\.js:\d+:\d+$/);
    assert.match(site!.function, /answers/);
    assert.equal(site!.count, LOST);
    assert.ok(site!.lostMs >= LOST * BUSY_MS && site!.lostMs <= LOST * (BUSY_MS + SLACK_MS), `${site!.lostMs} ms lost in ${LOST} requests of ${BUSY_MS} ms work each`);

    // what the loss costs the requests: their work is not in their cpu; wrapped, it is
    const records = await until('every request recorded', async () => {
      const r = app.records();
      return r.filter((x) => x.endpoint === 'GET /lost').length === LOST && r.filter((x) => x.endpoint === 'GET /wrapped').length === SEQUENTIAL ? r : undefined;
    });
    for (const r of records.filter((x) => x.endpoint === 'GET /lost')) assert.ok(r.cpu < BUSY_MS, `a lost request's cpu ${r.cpu} ms holds its ${BUSY_MS} ms of work`);
    for (const r of records.filter((x) => x.endpoint === 'GET /wrapped')) assert.ok(r.cpu >= BUSY_MS - 0.1, `a wrapped request's cpu ${r.cpu} ms misses its ${BUSY_MS} ms of work`);

    // bad input: the service is required
    const missing = await get(`${collector.url}/api/context-loss`);
    assert.equal(missing.status, 400);
  } finally {
    await stopApp(app);
    await collector.close();
    upstream.close();
  }
});
