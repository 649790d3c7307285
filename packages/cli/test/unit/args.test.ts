/**
 * Bad flags of `loopscope probe`, `proxy` and `demo` are usage errors that name the flag (main
 * turns a usage error into exit code 2 and the usage: one case of each command is run as a process
 * in probe.test.ts and proxy.test.ts). Nothing is started: every case fails before any socket opens.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUsageError } from '../../src/args.js';
import { progressLine, runDemo } from '../../src/demo.js';
import { runProbe } from '../../src/probe.js';
import { runProxy } from '../../src/proxy.js';

test('probe: bad flags are usage errors that name the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /the URL to check is required/],
    [['localhost:3000'], /the URL to check must be an http:\/\/ or https:\/\/ URL/],
    [['http://127.0.0.1:1/', '--every', 'often'], /--every must be a duration/],
    [['http://127.0.0.1:1/', '--timeout', '5'], /--timeout must be a duration/],
    [['http://127.0.0.1:1/', '--expect-status', 'ok'], /--expect-status must be an HTTP status/],
  ];
  for (const [args, message] of cases) await assert.rejects(runProbe(args), (err: Error) => isUsageError(err) && message.test(err.message));
});

test('proxy: bad flags are usage errors that name the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--target', 'http://127.0.0.1:1'], /--listen is required/],
    [['--listen', 'eighty', '--target', 'http://127.0.0.1:1'], /--listen must be a port number/],
    [['--listen', '0'], /--target is required/],
    [['--listen', '0', '--target', 'ftp://example'], /--target must be an http:\/\/ or https:\/\/ URL/],
    [['--listen', '0', '--target', 'http://127.0.0.1:1', '--collector', 'nowhere'], /--collector must be the collector's http:\/\/ URL/],
    [['--listen', '0', '--target', 'http://127.0.0.1:1', '--port', '1'], /Unknown option '--port'/],
  ];
  for (const [args, message] of cases) await assert.rejects(runProxy(args), (err: Error) => isUsageError(err) && message.test(err.message));
});

test('demo: a negative number after a flag is read as its value, and refused in one line', async () => {
  for (const args of [['--rps', '-5'], ['--rps=-5']]) {
    await assert.rejects(runDemo(args), (err: Error) => isUsageError(err) && err.message === '--rps must be a number of requests per second from 1 to 10000, not "-5"');
  }
  await assert.rejects(runProbe(['http://127.0.0.1:1/', '--every', '-1s']), (err: Error) => isUsageError(err) && /^--every must be a duration such as 90s, 15m, 2h or 7d, not "-1s"$/.test(err.message));
});

test("demo: the progress line says the errors' reasons and fits the terminal", () => {
  const stats = { elapsedMs: 12_300, sent: 250, ok: 247, errors: 3, reasons: { timeout: 1, 'HTTP 502': 2 }, skipped: 0, inFlight: 0 };
  const endpoints = ['/async', '/feed', '/chores'].map((p, i) => ({ endpoint: `GET ${p}`, count: 100 - i, response: { p95: 210 + i }, cpu: { p95: 1.25 }, blocking: { p95: 0.5 } }));
  const line = progressLine(stats, endpoints);
  assert.ok(line.startsWith('  12 s  sent 250  ok 247  errors 3 (HTTP 502 ×2, timeout ×1)  │ p95 GET /async 210 ms (cpu 1.3, blocked 0.5)'), line);
  assert.ok(line.length > 80);
  const cut = progressLine(stats, endpoints, 80);
  assert.equal(cut.length, 80);
  assert.ok(cut.endsWith('…') && line.startsWith(cut.slice(0, 79)));
  assert.equal(progressLine({ ...stats, errors: 0, reasons: {} }, undefined), '  12 s  sent 250  ok 247  errors 0  (waiting for the first batch)');
});
