/**
 * `loopscope probe` as a user runs it: the compiled command against a real server on 127.0.0.1
 * whose answers are known, shipping to a real collector (`loopscope up`). Failures — a wrong
 * status, a refused connection, a timeout — must be errors whose reason the trace tells.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import type { EndpointSummary, TraceSummary } from '@loopscope/collector';
import type { TraceRecord } from '@loopscope/protocol';
import { api, runCommand, startCommand, tempDir, until, type Command } from './helpers.js';

const HEADERS_MS = 20;
const BODY_MS = 10;

let collector: string;
let server: http.Server;
let base: string;
const children: Command[] = [];
/** how long the server took for each /ok, by its own clock: a check sees at least that */
const served: number[] = [];

before(async () => {
  const up = await startCommand(['up', '--port', '0', '--data', tempDir()]);
  children.push(up);
  collector = /listening on (\S+)/.exec(up.line)![1]!;
  server = http.createServer((req, res) => {
    const t0 = performance.now();
    if (req.url === '/ok') {
      res.on('finish', () => served.push(performance.now() - t0));
      setTimeout(() => {
        res.writeHead(200).flushHeaders();
        setTimeout(() => res.end('fine'), BODY_MS);
      }, HEADERS_MS);
    } else if (req.url === '/fail') {
      res.writeHead(503).end('down for maintenance');
    } // /slow never answers
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const c of children) await c.stop();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Runs a probe until it has printed `checks` check lines, then stops it (it ships on SIGTERM). */
async function probe(url: string, args: string[], checks = 1): Promise<string[]> {
  const cmd = await startCommand(['probe', url, '--every', '500ms', '--collector', collector, ...args]);
  children.push(cmd);
  assert.match(cmd.line, /^loopscope probe checking http:\/\/127\.0\.0\.1:\d+\/\w* every 500ms, service "probe"\n$/);
  const lines = await until(`${checks} checks of ${url}`, async () => {
    const out = cmd.stdout().split('\n').slice(1).filter(Boolean);
    return out.length >= checks ? out : undefined;
  });
  await cmd.stop();
  return lines;
}

test('checks succeed and fail with their reason, as the service "probe"', async () => {
  const refused = http.createServer().listen(0, '127.0.0.1');
  await once(refused, 'listening');
  const closed = `http://127.0.0.1:${(refused.address() as AddressInfo).port}/health`;
  await new Promise((r) => refused.close(r));

  const [ok, fail, down, slow] = await Promise.all([
    probe(`${base}/ok`, [], 2),
    probe(`${base}/fail`, ['--expect-status', '200']),
    probe(closed, []),
    probe(`${base}/slow`, ['--timeout', '300ms']),
  ]);
  assert.match(ok[0]!, / GET \/ok 200 [\d.]+ ms ok$/);
  assert.match(fail[0]!, / GET \/fail 503 [\d.]+ ms error: wrong status 503, expected 200$/);
  assert.match(down[0]!, / GET \/health \(no answer\) - [\d.]+ ms error: connection refused: nothing listens on 127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/);
  assert.match(slow[0]!, / GET \/slow \(no answer\) - [\d.]+ ms error: timeout: no status line within 300 ms$/);

  const rows = await until('the four endpoints at the collector', async () => {
    const list = await api<EndpointSummary[]>(collector, '/api/endpoints?service=probe');
    return list.length === 4 ? list : undefined;
  });
  const row = (endpoint: string): EndpointSummary => rows.find((r) => r.endpoint === endpoint)!;
  assert.equal(row('GET /ok').errors, 0);
  assert.ok(row('GET /ok').count >= 2);
  // (checks that got no answer are errors under a name of their own, not fast answers among the others)
  for (const failing of ['GET /fail', 'GET /health (no answer)', 'GET /slow (no answer)']) assert.equal(row(failing).errors, row(failing).count, failing);
  assert.deepEqual([row('GET /ok').cpu, row('GET /ok').external, row('GET /ok').blocking], [null, null, null], 'unknown from outside');

  const traceOf = async (endpoint: string): Promise<TraceRecord> => {
    const [summary] = await api<TraceSummary[]>(collector, `/api/traces?service=probe&endpoint=${encodeURIComponent(endpoint)}&sort=recent`);
    return api<TraceRecord>(collector, `/api/traces/${summary!.traceId}`);
  };
  const good = await traceOf('GET /ok');
  assert.equal(good.status, 200);
  assert.equal(good.error, false);
  assert.equal(good.responseBytes, 'fine'.length);
  // a check sees at least what the server took, and the first byte at least its known wait
  assert.ok(good.firstByte! >= HEADERS_MS && good.response >= Math.min(...served) - 0.01, JSON.stringify({ good, served }));
  assert.deepEqual(good.segments.map((s) => s.name), [`connect to ${new URL(base).host}`, 'until the status line', 'the body']);
  assert.equal(good.cpu, null);

  const wrong = await traceOf('GET /fail');
  assert.equal(wrong.status, 503);
  assert.equal(wrong.error, true);
  assert.equal(wrong.errorMessage, 'wrong status 503, expected 200');
  const refusedTrace = await traceOf('GET /health (no answer)');
  assert.equal(refusedTrace.status, 0);
  assert.match(refusedTrace.errorMessage!, /^connection refused/);
  const timedOut = await traceOf('GET /slow (no answer)');
  assert.equal(timedOut.status, 0);
  assert.equal(timedOut.errorMessage, 'timeout: no status line within 300 ms');
  assert.ok(timedOut.response >= 300, 'a timed-out check lasted its timeout');
  const services = await api<Array<{ service: string; agents: string[] }>>(collector, '/api/services');
  assert.deepEqual(services.find((s) => s.service === 'probe')?.agents, ['loopscope-probe']);
});

test('a collector that is not there: the probe says so once, checks on, and at its stop says what could not be shipped', async () => {
  const cmd = await startCommand(['probe', `${base}/ok`, '--every', '200ms', '--collector', 'http://127.0.0.1:9']);
  children.push(cmd);
  await until('three checks and the word', async () => (cmd.stdout().split('\n').filter((l) => / GET \/ok 200 /.test(l)).length >= 3 && /cannot reach/.test(cmd.stderr()) ? true : undefined));
  await cmd.stop();
  const said = cmd.stderr().split('\n').filter(Boolean);
  assert.equal(said.length, 2, cmd.stderr());
  assert.match(said[0]!, /^loopscope: cannot reach the collector at http:\/\/127\.0\.0\.1:9: connect ECONNREFUSED 127\.0\.0\.1:9; batches wait and are sent when it answers \(the oldest dropped and counted past 120\)$/);
  assert.match(said[1]!, /^loopscope: \d+ batch(es)? \(\d+ transactions\) could not be shipped; last: cannot reach the collector at http:\/\/127\.0\.0\.1:9/);
});

test('--once: one check, shipped, and the exit code says how it went (0 passed, 1 failed, with the reason)', async () => {
  const passed = await runCommand(['probe', `${base}/ok`, '--once', '--collector', collector]);
  assert.equal(passed.code, 0, passed.stderr);
  assert.match(passed.stdout, /^loopscope probe checking http:\/\/127\.0\.0\.1:\d+\/ok once, service "probe"\n\S+ GET \/ok 200 [\d.]+ ms ok\n$/);
  const failed = await runCommand(['probe', `${base}/fail`, '--once', '--service', 'probe-once', '--collector', collector]);
  assert.equal(failed.code, 1);
  assert.match(failed.stdout, / GET \/fail 503 [\d.]+ ms error: wrong status 503, expected 200\n$/);
  assert.equal(failed.stderr, 'loopscope probe: the check failed: wrong status 503, expected 200\n');
  // shipped before the exit
  const [row] = await api<EndpointSummary[]>(collector, '/api/endpoints?service=probe-once');
  assert.deepEqual([row?.endpoint, row?.count, row?.errors], ['GET /fail', 1, 1]);
  const both = await runCommand(['probe', `${base}/ok`, '--once', '--every', '1s']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--once and --every exclude each other/);
});

test('a bad flag: exit 2, the problem and the usage (every bad flag: test/unit/args.test.ts)', async () => {
  const { code, stderr } = await runCommand(['probe']);
  assert.equal(code, 2, `probe: ${stderr}`);
  assert.match(stderr, /the URL to check is required/);
  assert.match(stderr, /loopscope probe URL/, 'the usage follows');
});
