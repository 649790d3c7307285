/**
 * Zero-code start: `node --import loopscope/register app.mjs` and `node --require loopscope/register
 * app.cjs` instrument apps that know nothing of loopscope; LOOPSCOPE_ENABLED=false turns it all off.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { get, spawnApp, startUpstream, type SpawnedApp } from './helpers.js';

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
    app.stop();
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
    app.stop();
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
    app.stop();
  }
});

test('LOOPSCOPE_ENABLED=false: nothing is traced and the app works as before', async () => {
  const app = await runApp(['--import', 'loopscope/register'], 'app.mjs', { LOOPSCOPE_ENABLED: 'false' });
  try {
    assert.equal(await get(`${app.url}/users/7`), '{"delay":20}');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await app.records(0), []);
  } finally {
    app.stop();
  }
});
