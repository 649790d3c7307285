/**
 * Zero-code start: `node --import loopscope/register app.mjs` and `node --require loopscope/register
 * app.cjs` instrument apps that know nothing of loopscope; LOOPSCOPE_ENABLED=false turns it all off.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { WireBatch } from '@loopscope/protocol';
import { fingerprint, get, listen, spawnApp, startUpstream, type Fingerprint, type SpawnedApp } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
let upstream: Awaited<ReturnType<typeof startUpstream>>;

before(async () => {
  upstream = await startUpstream();
});
after(() => upstream.close());

function runApp(preload: string[], app: string, env: Record<string, string> = {}): Promise<SpawnedApp> {
  return spawnApp(preload, app, fixtures, { UPSTREAM: upstream.url, LOOPSCOPE_SERVICE: 'zero-code', ...env });
}

test('node --import loopscope/register app.mjs: an ESM app is traced without a code change', async () => {
  const app = await runApp(['--import', 'loopscope/register'], 'app.mjs');
  try {
    assert.equal(await get(`${app.url}/users/7`), '{"delay":20}');
    const [record] = await app.records(1);
    assert.equal(record!.endpoint, 'GET /users/:id');
    assert.equal(record!.service, 'zero-code');
    assert.equal(record!.status, 200);
    assert.equal(record!.segments.length, 1);
    assert.equal(record!.segments[0]!.kind, 'http');
    assert.ok(record!.external >= 20, `external ${record!.external}`);
    assert.ok(record!.duration >= 25, `duration ${record!.duration}`);
  } finally {
    await app.stop();
  }
});

test('node --require loopscope/register app.cjs: a CommonJS app is traced without a code change', async () => {
  const app = await runApp(['--require', 'loopscope/register'], 'app.cjs');
  try {
    assert.equal(await get(`${app.url}/puppies/3`), '{"delay":20}');
    const [record] = await app.records(1);
    assert.equal(record!.endpoint, 'GET /puppies/:id');
    assert.equal(record!.segments.length, 1);
    assert.ok(record!.external >= 20);
  } finally {
    await app.stop();
  }
});

test('a handler that throws: the error is recorded on the transaction and still reaches the app', async () => {
  const app = await runApp(['--import', 'loopscope/register'], 'app.mjs');
  try {
    // the app swallows the error and never answers: the client gives up
    await assert.rejects(fetch(`${app.url}/fail`, { signal: AbortSignal.timeout(300) }));
    assert.match(app.stderr(), /app caught: handler blew up/);
    const [record] = await app.records(1);
    assert.equal(record!.endpoint, 'GET /fail');
    assert.equal(record!.error, true);
    assert.equal(record!.errorMessage, 'Error: handler blew up');
  } finally {
    await app.stop();
  }
});

test('LOOPSCOPE_ENABLED=false: the app sees Node as it is without the agent, and nothing is delivered; enabled (the control), all of it changes', async () => {
  const preload = ['--import', 'loopscope/register'];
  // the app loads loopscope and starts it by itself: disabled, that is a process without an agent
  // (disabled.test.ts shows it changes nothing)
  const [without, disabled, enabled] = await Promise.all([
    fingerprint([], { LOOPSCOPE_ENABLED: 'false' }),
    fingerprint(preload, { LOOPSCOPE_ENABLED: 'false' }),
    fingerprint(preload, { LOOPSCOPE_ENABLED: 'true' }),
  ]);
  assert.deepEqual(without.changed, []);
  const differs = (f: Fingerprint): string[] => Object.keys(without.seen).filter((key) => f.seen[key] !== without.seen[key]);
  assert.deepEqual(differs(enabled), Object.keys(without.seen), 'the control: what a running agent changes');
  assert.ok(enabled.delivered.includes('GET /request'), `the control delivered ${enabled.delivered.join(', ')}`);
  assert.deepEqual(differs(disabled), []);
  assert.deepEqual(disabled.delivered, []);
});

/** A stand-in collector on 127.0.0.1: the transactions of every batch it is sent, by service and endpoint. */
async function startSink(): Promise<{ url: string; shipped: Record<string, Record<string, number>>; close(): void }> {
  const shipped: Record<string, Record<string, number>> = {};
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const batch = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8')) as WireBatch;
      const counts = (shipped[batch.service] ??= {});
      for (const i of batch.intervals) counts[i.endpoint] = (counts[i.endpoint] ?? 0) + i.count;
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
  });
  const url = await listen(server);
  return {
    url,
    shipped,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

test('LOOPSCOPE_ENABLED=false: the app ships nothing; enabled (the control), the same app ships its transaction', async () => {
  const sink = await startSink();
  try {
    for (const enabled of [false, true]) {
      const service = enabled ? 'zero-code-enabled' : 'zero-code-disabled';
      const app = await runApp(['--import', 'loopscope/register'], 'app.mjs', { LOOPSCOPE_ENABLED: String(enabled), LOOPSCOPE_COLLECTOR: sink.url, LOOPSCOPE_SERVICE: service });
      try {
        assert.equal(await get(`${app.url}/users/7`), '{"delay":20}');
      } finally {
        // SIGTERM: a running agent ships what it has before the process ends; once the process has
        // exited, nothing more of it can come
        await app.stop();
      }
    }
    assert.deepEqual(sink.shipped, { 'zero-code-enabled': { 'GET /users/:id': 1 } });
  } finally {
    sink.close();
  }
});
