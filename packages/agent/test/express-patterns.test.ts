/**
 * Express patterns of real apps (issue 19), under Express 4 and 5 (examples/frameworks/apps/
 * express-patterns.cjs, started under `--require loopscope/register`): what counts as an error when
 * handlers pass plain values to next(), error messages as text, names when an app restores req.url
 * or has a global prefix with a catch-all, outbound names with word-like ids, and the app's own
 * stack traces free of the agent's frames.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@loopscope/protocol';
import { spawnApp } from './helpers.js';

const examples = fileURLToPath(new URL('../../../../examples/frameworks/', import.meta.url));

/** A frame of the agent's own code (packages/agent, or the package as installed). */
const AGENT_FRAME = /packages\/agent\/|node_modules\/loopscope\//;

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

async function upstream(): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => res.end('{}'));
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

for (const major of [4, 5]) {
  const dir = join(examples, `express${major}`);
  const star = major >= 5 ? '*splat' : '*';

  test(`express${major}: real-app patterns`, async (t) => {
    const up = await upstream();
    const app = await spawnApp(['--require', 'loopscope/register'], 'patterns.cjs', dir, { NODE_ENV: 'test', UPSTREAM: up.url, LOOPSCOPE_SERVICE: `patterns${major}` });
    const answers = new Map<string, { status: number; body: string }>();
    const paths = ['/body/42', '/missing/42', '/broken/42', '/opaque', '/forbidden', '/legacy/data/items', '/store/data/items', '/api/things/7', '/api/no/such', '/app/some/page', '/outbound', '/deep/inner/throw', '/stack/full'];
    let records: TransactionRecord[] = [];
    try {
      for (const path of paths) answers.set(path, await get(app.url + path));
      records = await app.records(paths.length);
    } finally {
      await app.stop();
      up.close();
    }
    const only = (endpoint: string, status: number): TransactionRecord => {
      const found = records.filter((r) => r.endpoint === endpoint && r.status === status);
      assert.equal(found.length, 1, `one record named ${endpoint} with ${status}; got ${records.map((r) => `${r.endpoint} ${r.status}`).join(', ')}`);
      return found[0]!;
    };

    await t.test('point 1: a value passed to next() that is not an Error does not make an answer an error', () => {
      assert.equal(answers.get('/body/42')!.status, 200);
      const body = only('GET /body/:id', 200);
      assert.equal(body.error, false);
      assert.equal(body.errorMessage, undefined);
      const missing = only('GET /missing/:id', 404);
      assert.equal(missing.error, false, 'next({ error: "not found" }) answered 404');
      assert.equal(missing.errorMessage, undefined);
    });

    await t.test('point 2: error messages are text; an HttpException-style 4xx follows the 4xx rule', () => {
      const broken = only('GET /broken/:id', 500);
      assert.equal(broken.error, true, 'a 5xx is an error');
      assert.equal(broken.errorMessage, 'database unavailable');
      const opaque = only('GET /opaque', 500);
      assert.equal(opaque.error, true);
      // (what it holds is not shipped: it is not an Error)
      assert.equal(opaque.errorMessage, 'Object {code, detail, self} (not an Error)');
      const forbidden = only('GET /forbidden', 403);
      assert.equal(forbidden.error, false, 'getStatus() 403');
    });

    await t.test('point 5: names when req.url is restored, a global prefix with a catch-all, outbound word-like ids', () => {
      only('GET /legacy/data/items', 200);
      only('GET /store/data/items', 200);
      only('GET /api/things/:id', 200);
      only('GET (unmatched)', 404);
      only(`GET /app/${star}`, 200);
      const outbound = only('GET /outbound', 200);
      const host = up.url.slice('http://'.length);
      assert.deepEqual(outbound.segments.map((s) => s.name).sort(), [
        `GET ${host}/posts/:id`,
        `GET ${host}/profile/:id`,
        `GET ${host}/users/:id/avatar`,
        `GET ${host}/v2/oauth2/token`,
      ]);
    });

    await t.test('point 7: an error thrown in a handler has no frame of the agent in its stack', () => {
      const thrown = only('GET /deep/inner/throw', 500);
      assert.equal(thrown.errorMessage, 'Error: stack boom');
      const stack = (JSON.parse(answers.get('/deep/inner/throw')!.body) as { stack: string }).stack;
      assert.match(stack, /stack boom/);
      assert.doesNotMatch(stack, AGENT_FRAME, stack);
      // with no limit, the only frames of the agent are the node:http server's, where the request's
      // context is entered, below the whole framework (docs/instrumentation.md)
      const full = (JSON.parse(answers.get('/stack/full')!.body) as { stack: string }).stack;
      const agentFrames = full.split('\n').filter((l) => AGENT_FRAME.test(l));
      // (by function: the package's exports load the bundle, where both are in one chunk)
      assert.ok(agentFrames.every((l) => /\bat (Server\.emit|runInScope) \(/.test(l)), full);
      const firstAgent = full.split('\n').findIndex((l) => AGENT_FRAME.test(l));
      const lastExpress = full.split('\n').findLastIndex((l) => /node_modules\/(express|router)\//.test(l));
      assert.ok(firstAgent === -1 || firstAgent > lastExpress, full);
    });
  });
}
