/**
 * The collector serves the dashboard on its one port: its built files, index.html for each of the
 * dashboard's page paths (deep links), and JSON errors for everything under /api/ and /v1/ as before.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestCollector, type TestCollector } from './helpers.js';

let collector: TestCollector;
before(async () => {
  collector = await startTestCollector();
});
after(() => collector.close());

const fetchText = async (path: string, init?: RequestInit): Promise<{ status: number; type: string; cache: string; body: string }> => {
  const res = await fetch(`${collector.url}${path}`, init);
  return { status: res.status, type: res.headers.get('content-type') ?? '', cache: res.headers.get('cache-control') ?? '', body: await res.text() };
};

test('/ and every page path answer the dashboard page, never cached', async () => {
  for (const path of ['/', '/service?service=puppies&range=1h', '/endpoint?service=a&endpoint=GET%20%2Fx', '/trace?id=abc', '/loop?service=a', '/some/deep/link']) {
    const page = await fetchText(path);
    assert.equal(page.status, 200, path);
    assert.match(page.type, /^text\/html/, path);
    assert.match(page.body, /<script type="module" src="\/app-[\w-]+\.js">/, path);
    assert.equal(page.cache, 'no-cache', path);
  }
});

test('the built script and stylesheet are served, named by content hash and cached for good', async () => {
  const page = await fetchText('/');
  for (const [, file] of page.body.matchAll(/(?:src|href)="\/(app-[\w-]+\.(?:js|css))"/g)) {
    const asset = await fetchText(`/${file}`);
    assert.equal(asset.status, 200, file);
    assert.match(asset.type, file!.endsWith('.js') ? /javascript/ : /^text\/css/);
    assert.match(asset.cache, /immutable/);
    assert.ok(asset.body.length > 1000);
  }
});

test('unknown files, API paths and ingest paths stay JSON 404s; the API is untouched', async () => {
  for (const path of ['/missing.js', '/api/nope', '/v1/nope', '/v1/ingest']) {
    const res = await fetchText(path);
    assert.equal(res.status, 404, path);
    assert.deepEqual(JSON.parse(res.body), { error: `no route GET ${path}` });
  }
  const health = await fetchText('/api/health');
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).status, 'ok');
});
