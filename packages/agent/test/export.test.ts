/**
 * The agent's export, seen from the wire: an unmodified app under `--import loopscope/register`
 * ships batches to a stand-in collector (a real HTTP server on 127.0.0.1 that keeps what it gets).
 * The end-to-end tests with the real collector are in packages/cli/test.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { emptyWire, fromWire, mergeWire, quantile, type WireBatch } from '@loopscope/protocol';
import { BatchSchema } from '@loopscope/protocol/wire';
import { Compile } from 'typebox/compile';
import { deadline, firstLine, get, until as waitFor } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const validBatch = Compile(BatchSchema);

interface Sink {
  url: string;
  port: number;
  batches: WireBatch[];
  headers: http.IncomingHttpHeaders[];
  /** what the sink answers (200 unless told otherwise) */
  status: number;
  /** batches answered with another status than 200 */
  refused: number;
  /** what the sink's 200 says (`{ ok: true }` unless told otherwise) */
  answer: object;
  close(): Promise<void>;
}

/** A stand-in collector: keeps every batch it is sent. */
async function startSink(port = 0): Promise<Sink> {
  const sink = { batches: [] as WireBatch[], headers: [] as http.IncomingHttpHeaders[], status: 200, refused: 0, answer: { ok: true } } as Sink;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (sink.status === 200) {
        sink.headers.push(req.headers);
        sink.batches.push(JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as WireBatch);
      } else sink.refused++;
      res.statusCode = sink.status;
      res.end(JSON.stringify(sink.status === 200 ? sink.answer : { error: 'refused by the test' }));
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  sink.port = (server.address() as AddressInfo).port;
  sink.url = `http://127.0.0.1:${sink.port}`;
  sink.close = () => new Promise((resolve) => server.close(() => resolve()));
  server.closeAllConnections?.();
  return sink;
}

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const s = await startSink();
  await s.close();
  return s.port;
}

async function startApp(env: Record<string, string>): Promise<{ url: string; child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, ['--import', 'loopscope/register', 'export-app.mjs'], {
    cwd: fixtures,
    env: { ...process.env, LOOPSCOPE_SERVICE: 'export-test', LOOPSCOPE_FLUSH_MS: '200', LOOPSCOPE_SAMPLE_RATE: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const line = await firstLine(child, 'export-app.mjs');
  return { url: `http://127.0.0.1:${/listening (\d+)/.exec(line)![1]}`, child, stderr: () => stderr };
}

/** The lines of an app's stderr that match. */
const lines = (stderr: string, pattern: RegExp): string[] => stderr.split('\n').filter((l) => pattern.test(l));

/** Transactions per endpoint over all batches. */
function counts(batches: WireBatch[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of batches) for (const i of b.intervals) out[i.endpoint] = (out[i.endpoint] ?? 0) + i.count;
  return out;
}

/** Polls `check` until it holds; fails saying what was awaited after `ms`. */
async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  await waitFor(what, () => (check() ? true : undefined), ms, undefined, 50);
}

test('batches carry every transaction once, valid sketches, the slowest and the failed traces, and the token', async () => {
  const sink = await startSink();
  const app = await startApp({ LOOPSCOPE_COLLECTOR: sink.url, LOOPSCOPE_TOKEN: 's3cret' });
  const slowMs = [10, 30, 60, 90, 20];
  for (let i = 0; i < 30; i++) assert.equal(await get(`${app.url}/fast`), 'fast');
  // what the client saw of each: the server's response cannot have lasted longer. One at a time:
  // a request that arrives while the loop is busy is dated from the loop's previous poll, up to an
  // iteration before it was sent (docs/metrics.md), and this test is about what is shipped
  const seen: number[] = [];
  for (const ms of slowMs) {
    const sent = performance.now();
    await get(`${app.url}/slow?ms=${ms}`);
    seen.push(performance.now() - sent);
  }
  for (let i = 0; i < 4; i++) await get(`${app.url}/error`);
  await get(`${app.url}/exit`);
  // the app ends by itself: its last interval is shipped before it exits
  const [code] = (await deadline('the app to exit after GET /exit', once(app.child, 'exit'))) as [number];
  assert.equal(code, 0, app.stderr());
  await sink.close();

  for (const b of sink.batches) assert.ok(validBatch.Check(b), JSON.stringify([...validBatch.Errors(b)].slice(0, 2)));
  assert.deepEqual(counts(sink.batches), { 'GET /fast': 30, 'GET /slow': 5, 'GET /error': 4, 'GET /exit': 1 });
  const errors = sink.batches.flatMap((b) => b.intervals).filter((i) => i.endpoint === 'GET /error').reduce((n, i) => n + i.errors, 0);
  assert.equal(errors, 4);
  for (const h of sink.headers) {
    assert.equal(h.authorization, 'Bearer s3cret');
    assert.equal(h['content-encoding'], 'gzip');
  }
  assert.ok(sink.batches.every((b) => b.service === 'export-test' && b.instance.endsWith(`:${app.child.pid}`)));
  assert.equal(new Set(sink.batches.map((b) => b.batchId)).size, sink.batches.length, 'batch ids are unique');

  // the merged sketch of /slow knows its slowest response within the sketch's 1 %
  const merged = emptyWire();
  for (const b of sink.batches) for (const i of b.intervals) if (i.endpoint === 'GET /slow') mergeWire(merged, i.response);
  const slow = fromWire(merged);
  assert.equal(slow.count, 5);
  // Each response lies between its timer's delay less a millisecond (a timer can fire that early:
  // libuv schedules it on its cached, truncated clock) and the round trip the client saw (a busy
  // machine makes timers late); so the k-th smallest response lies between the k-th smallest of
  // those bounds, and the sketch's quantile within 1 % of it.
  const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
  const [lows, highs] = [sorted(slowMs.map((ms) => ms - 1)), sorted(seen)];
  for (const [q, k] of [[0.5, 2], [1, 4]] as const) {
    const value = quantile(slow, q);
    assert.ok(value >= lows[k]! * 0.99 && value <= highs[k]! * 1.01, `response quantile ${q}: ${value}, expected ${lows[k]} to ${highs[k]!.toFixed(2)}`);
  }

  // traces: the slowest /slow, every error; the sample rate is 0, so no random ones
  const traces = sink.batches.flatMap((b) => b.traces);
  const slowest = traces.filter((t) => t.endpoint === 'GET /slow').sort((a, b) => b.duration - a.duration)[0];
  assert.ok(slowest !== undefined && slowest.duration >= 89, `slowest /slow trace ${slowest?.duration}`);
  assert.equal(traces.filter((t) => t.endpoint === 'GET /error' && t.error && t.status === 500).length, 4);
  const perInterval = sink.batches.map((b) => b.traces.filter((t) => t.endpoint === 'GET /fast').length);
  assert.ok(perInterval.every((n) => n <= 1), `at most the slowest /fast per interval: ${perInterval}`);
});

test('a collector that is down, then up: the app never fails, and the queued batches arrive', async () => {
  const port = await freePort();
  const app = await startApp({ LOOPSCOPE_COLLECTOR: `http://127.0.0.1:${port}` });
  for (let i = 0; i < 20; i++) {
    assert.equal(await get(`${app.url}/fast`), 'fast');
    await new Promise((r) => setTimeout(r, 40));
  }
  const sink = await startSink(port);
  try {
    await until('the 20 transactions at the collector', () => counts(sink.batches)['GET /fast'] === 20);
    assert.ok(sink.batches.every((b) => b.dropped.batches === 0), 'nothing dropped with room in the queue');
    // SIGTERM, which the app does not handle: the agent ships the rest and the signal still ends it
    await get(`${app.url}/fast`);
    app.child.kill('SIGTERM');
    const [code, signal] = (await deadline('the app to exit on SIGTERM', once(app.child, 'exit'))) as [number | null, string | null];
    assert.equal(signal, 'SIGTERM', `exit code ${code}`);
    assert.equal(counts(sink.batches)['GET /fast'], 21);
  } finally {
    app.child.kill();
    await sink.close();
  }
});

test('several collectors (LOOPSCOPE_COLLECTOR=a,b): what one cannot take goes to the next; nothing is lost or sent twice', async () => {
  const port = await freePort();
  const second = await startSink();
  // the first is down: every batch goes to the second
  const app = await startApp({ LOOPSCOPE_COLLECTOR: `http://127.0.0.1:${port}, ${second.url}` });
  let first: Sink | undefined;
  try {
    for (let i = 0; i < 10; i++) assert.equal(await get(`${app.url}/fast`), 'fast');
    await until('the first 10 transactions at the second collector', () => counts(second.batches)['GET /fast'] === 10);
    // the second fails (503, as a collector whose ClickHouse is down), the first is up: the agent moves over
    first = await startSink(port);
    second.status = 503;
    for (let i = 0; i < 10; i++) assert.equal(await get(`${app.url}/fast`), 'fast');
    await until('the next 10 at the first collector', () => counts(first!.batches)['GET /fast'] === 10);
    assert.equal(counts(second.batches)['GET /fast'], 10);
    const ids = new Set(second.batches.map((b) => b.batchId));
    assert.ok(first.batches.every((b) => !ids.has(b.batchId)), 'no batch at both');
    assert.ok([...first.batches, ...second.batches].every((b) => b.dropped.batches === 0), 'nothing dropped');
  } finally {
    app.child.kill();
    await second.close();
    await first?.close();
  }
});

test('a collector URL that is not http or https is left out with a warning, and the app never fails for it', async () => {
  const sink = await startSink();
  // a typo first: the agent ships to the one good URL
  const app = await startApp({ LOOPSCOPE_COLLECTOR: `htp://127.0.0.1:${sink.port},${sink.url}` });
  try {
    for (let i = 0; i < 5; i++) assert.equal(await get(`${app.url}/fast`), 'fast');
    await until('the 5 transactions at the good collector', () => counts(sink.batches)['GET /fast'] === 5);
    assert.match(app.stderr(), new RegExp(`loopscope: LOOPSCOPE_COLLECTOR: "htp://127.0.0.1:${sink.port}" is not an http:// or https:// URL \\(such as http://127.0.0.1:4400\\); it is left out`));
    assert.equal(app.child.exitCode, null, 'the app runs on');
  } finally {
    app.child.kill();
    await sink.close();
  }
  // nothing but a typo: the agent stays off, says why, and the app serves
  const alone = await startApp({ LOOPSCOPE_COLLECTOR: 'ftp://127.0.0.1:21' });
  try {
    assert.equal(await get(`${alone.url}/fast`), 'fast');
    await new Promise((r) => setTimeout(r, 500)); // past a flush
    assert.equal(alone.child.exitCode, null, 'the app runs on');
    assert.match(alone.stderr(), /LOOPSCOPE_COLLECTOR "ftp:\/\/127\.0\.0\.1:21" names no collector to ship to/);
  } finally {
    alone.child.kill();
  }
});

test('a full queue drops the oldest batches and says how many transactions were lost', async () => {
  const port = await freePort();
  const app = await startApp({ LOOPSCOPE_COLLECTOR: `http://127.0.0.1:${port}`, LOOPSCOPE_FLUSH_MS: '100', LOOPSCOPE_MAX_QUEUE: '2' });
  let sent = 0;
  for (let i = 0; i < 12; i++) {
    await get(`${app.url}/fast`);
    sent++;
    await new Promise((r) => setTimeout(r, 110));
  }
  const sink = await startSink(port);
  try {
    const arrived = () => counts(sink.batches)['GET /fast'] ?? 0;
    const lost = () => Math.max(0, ...sink.batches.map((b) => b.dropped.transactions));
    await until('what arrived and what was dropped to add up', () => arrived() + lost() === sent);
    assert.ok(lost() > 0, 'some transactions were dropped');
    assert.ok(Math.max(...sink.batches.map((b) => b.dropped.batches)) > 0);
    assert.match(app.stderr(), /loopscope: more than 2 batches wait for the collector \(cannot reach the collector/);
  } finally {
    app.child.kill();
    await sink.close();
  }
});

test('batches a collector refuses (4xx) are dropped and counted, not retried; the app is warned once and keeps running', async () => {
  const sink = await startSink();
  sink.status = 400;
  const app = await startApp({ LOOPSCOPE_COLLECTOR: sink.url, LOOPSCOPE_FLUSH_MS: '100' });
  try {
    // each transaction in a batch of its own, refused: a batch is shipped every interval, and the
    // second one refused after a request was cut after its transaction had been delivered
    for (let i = 0; i < 5; i++) {
      assert.equal(await get(`${app.url}/fast`), 'fast');
      const refused = sink.refused;
      await until(`two refused batches after request ${i + 1}`, () => sink.refused >= refused + 2);
    }
    const refusal = /collector at http:\/\/127\.0\.0\.1:\d+ answered 400: {"error":"refused by the test"} \(batches refused like this are dropped and counted\)/;
    await until('the warning', () => refusal.test(app.stderr()));
    assert.equal(lines(app.stderr(), refusal).length, 1, app.stderr());
    sink.status = 200;
    await get(`${app.url}/fast`);
    await until('a batch after the refusals', () => sink.batches.length > 0);
    const last = sink.batches.at(-1)!;
    assert.ok(last.dropped.batches > 0 && last.dropped.transactions >= 5, JSON.stringify(last.dropped));
  } finally {
    app.child.kill();
    await sink.close();
  }
});

test('a collector that cannot be reached: one line when it goes, one when batches reach it again, and at exit how many batches were lost', async () => {
  const port = await freePort();
  const app = await startApp({ LOOPSCOPE_COLLECTOR: `http://127.0.0.1:${port}`, LOOPSCOPE_FLUSH_MS: '100' });
  let sink: Sink | undefined;
  try {
    for (let i = 0; i < 5; i++) {
      assert.equal(await get(`${app.url}/fast`), 'fast');
      await new Promise((r) => setTimeout(r, 150));
    }
    // (refused while nothing listens; when the collector goes away under a kept-alive connection, its first word may be a reset)
    const unreachable = new RegExp(`loopscope: cannot reach the collector at http://127\\.0\\.0\\.1:${port}: (connect ECONNREFUSED|read ECONNRESET|socket hang up).*; batches wait and are sent when it answers`);
    await until('the warning', () => unreachable.test(app.stderr()));
    sink = await startSink(port);
    await until('the batches that waited', () => (counts(sink!.batches)['GET /fast'] ?? 0) === 5);
    await until('the word that they go again', () => /loopscope: batches reach the collector at/.test(app.stderr()));
    // gone again: said again, once
    await sink.close();
    sink = undefined;
    for (let i = 0; i < 3; i++) {
      assert.equal(await get(`${app.url}/fast`), 'fast');
      await new Promise((r) => setTimeout(r, 150));
    }
    await get(`${app.url}/exit`);
    const [code] = (await deadline('the app to exit after GET /exit', once(app.child, 'exit'))) as [number];
    assert.equal(code, 0, app.stderr());
    const said = app.stderr();
    assert.equal(lines(said, unreachable).length, 2, said);
    assert.equal(lines(said, /batches reach the collector at/).length, 1, said);
    // at exit: the batches of the 3 requests (and of the flushes around them) never shipped
    const [lost] = lines(said, /loopscope: \d+ batch(es)? \((\d+) transactions?\) could not be shipped; last: cannot reach the collector/);
    assert.ok(lost, said);
    assert.equal(Number(/\((\d+) transactions?\)/.exec(lost)![1]), 4, `the 3 requests and GET /exit: ${lost}`);
  } finally {
    app.child.kill();
    await sink?.close();
  }
});

test('LOOPSCOPE_LOG=silent: nothing is said, however lost the data', async () => {
  const app = await startApp({ LOOPSCOPE_COLLECTOR: `http://127.0.0.1:${await freePort()}`, LOOPSCOPE_FLUSH_MS: '100', LOOPSCOPE_LOG: 'silent', LOOPSCOPE_SAMPLE_RATE: 'lots' });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal(await get(`${app.url}/fast`), 'fast');
      await new Promise((r) => setTimeout(r, 150));
    }
    await get(`${app.url}/exit`);
    const [code] = (await deadline('the app to exit after GET /exit', once(app.child, 'exit'))) as [number];
    assert.equal(code, 0);
    assert.doesNotMatch(app.stderr(), /loopscope/);
  } finally {
    app.child.kill();
  }
});

test('records a collector left out of a batch (its partial-success answer) are said once', async () => {
  const sink = await startSink();
  sink.answer = { ok: true, rejected: { traces: 1, longTasks: 2, contextLoss: 0, message: '/traces/0/errorMessage must not have more than 2048 characters' } };
  const app = await startApp({ LOOPSCOPE_COLLECTOR: sink.url, LOOPSCOPE_FLUSH_MS: '100' });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal(await get(`${app.url}/fast`), 'fast');
      await until(`batch ${i + 1}`, () => (counts(sink.batches)['GET /fast'] ?? 0) === i + 1);
    }
    await until('the warning', () => /left out/.test(app.stderr()));
    assert.deepEqual(lines(app.stderr(), /left out/).map((l) => l.replace(/^\(node:\d+\) Warning: /, '')), [
      'loopscope: the collector left out 1 trace, 2 long tasks of a batch: /traces/0/errorMessage must not have more than 2048 characters (records like this are dropped; the rest of each batch is stored)',
    ]);
  } finally {
    app.child.kill();
    await sink.close();
  }
});
