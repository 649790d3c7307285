/**
 * Bad flags of `loopscope probe` and `loopscope proxy` are usage errors that name the flag (main
 * turns a usage error into exit code 2 and the usage: one case of each command is run as a process
 * in probe.test.ts and proxy.test.ts). Nothing is started: every case fails before any socket opens.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUsageError } from '../../src/args.js';
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
