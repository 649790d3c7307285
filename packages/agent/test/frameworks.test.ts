/**
 * Frameworks: the example apps of examples/frameworks (Express 4 and 5, Fastify 4 and 5, Koa 2 and
 * 3 with @koa/router), each started under `--require loopscope/register` (app.cjs) and
 * `--import loopscope/register` (app.mjs). The endpoint is the matched route's template with its
 * mount prefixes, a 4xx on a URL no route matched is `METHOD (unmatched)` (10 000 random URLs make
 * one endpoint), and errors raised in handlers are on the transaction even when answered 200.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@loopscope/protocol';
import { spawnApp } from './helpers.js';

const examples = fileURLToPath(new URL('../../../../examples/frameworks/', import.meta.url));

const FRAMEWORKS = [
  { dir: 'express4', packages: { express: 4 } },
  { dir: 'express5', packages: { express: 5 } },
  { dir: 'fastify4', packages: { fastify: 4 } },
  { dir: 'fastify5', packages: { fastify: 5 } },
  { dir: 'koa2', packages: { koa: 2, '@koa/router': 15 } },
  { dir: 'koa3', packages: { koa: 3, '@koa/router': 15 } },
];

interface Case {
  method?: string;
  path: string;
  status: number;
  endpoint: string;
  /** the transaction's errorMessage; undefined: not an error */
  error?: string;
  /** only for these frameworks */
  only?: RegExp;
}

const CASES: Case[] = [
  { path: '/health', status: 200, endpoint: 'GET /health' },
  { path: '/api/users/42', status: 200, endpoint: 'GET /api/users/:id' },
  { path: '/api/users/42/posts/7', status: 200, endpoint: 'GET /api/users/:id/posts/:postId' },
  { path: '/admin/stats/9', status: 200, endpoint: 'GET /admin/stats/:id', only: /express/ },
  { method: 'HEAD', path: '/api/users/42', status: 200, endpoint: 'HEAD /api/users/:id', only: /express|koa/ },
  { method: 'POST', path: '/api/users/42', status: 404, endpoint: 'POST (unmatched)', only: /express|fastify/ },
  { method: 'POST', path: '/api/users/42', status: 405, endpoint: 'POST (unmatched)', only: /koa/ },
  // an error with a 4xx status is the app's answer to the client, not a failure
  { path: '/api/users/missing/3', status: 404, endpoint: 'GET /api/users/missing/:id' },
  // a custom error handler answers 200: the error still counts
  { path: '/api/recovered', status: 200, endpoint: 'GET /api/recovered', error: 'Error: recovered boom' },
  { path: '/fail/sync', status: 500, endpoint: 'GET /fail/sync', error: 'Error: sync boom' },
  { path: '/fail/async', status: 500, endpoint: 'GET /fail/async', error: 'Error: async boom' },
  { path: '/fail/next', status: 500, endpoint: 'GET /fail/next', error: 'Error: next boom', only: /express|fastify/ },
  { path: '/no/such/page-7f3a', status: 404, endpoint: 'GET (unmatched)' },
  { path: '/api/users', status: 404, endpoint: 'GET (unmatched)' },
];

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(url: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .request(url, { method, agent: keepAlive }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject)
      .end();
  });
}

const entries = [
  { file: 'app.cjs', preload: ['--require', 'loopscope/register'] },
  { file: 'app.mjs', preload: ['--import', 'loopscope/register'] },
];

for (const fw of FRAMEWORKS) {
  const cwd = join(examples, fw.dir);

  test(`${fw.dir}: the workspace holds the major versions under test`, () => {
    const require = createRequire(join(cwd, 'package.json'));
    for (const [name, major] of Object.entries(fw.packages)) {
      // the package's own package.json, found from its entry (@koa/router does not export it)
      const entry = require.resolve(name);
      const root = entry.slice(0, entry.lastIndexOf(`node_modules/${name}/`) + `node_modules/${name}/`.length);
      const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
      assert.equal(Number.parseInt(version, 10), major, `${name}@${version} in ${fw.dir}`);
    }
  });

  for (const entry of entries) {
    test(`${fw.dir} ${entry.file}: route templates, unmatched URLs and handler errors`, async () => {
      const app = await spawnApp(entry.preload, entry.file, cwd, { NODE_ENV: 'test', LOOPSCOPE_SERVICE: fw.dir });
      try {
        const cases = CASES.filter((c) => c.only === undefined || c.only.test(fw.dir));
        for (const c of cases) assert.equal(await request(app.url + c.path, c.method), c.status, `${c.path} answered`);
        const records = await app.records(cases.length);
        assert.equal(records.length, cases.length, app.stderr());
        for (const c of cases) {
          const found = records.filter((r) => r.endpoint === c.endpoint && r.status === c.status);
          assert.ok(found.length > 0, `${c.path}: no record named ${c.endpoint} with ${c.status}; got ${records.map((r) => `${r.endpoint} ${r.status}`).join(', ')}`);
          for (const r of found) {
            assert.equal(r.error, c.error !== undefined, `${c.path}: error flag`);
            assert.equal(r.errorMessage, c.error, `${c.path}: error message`);
          }
        }
      } finally {
        await app.stop();
      }
    });
  }

  test(`${fw.dir}: 10 000 random unmatched URLs make one endpoint per method`, async () => {
    const app = await spawnApp(['--import', 'loopscope/register'], 'app.mjs', cwd, { NODE_ENV: 'test', LOOPSCOPE_SERVICE: fw.dir });
    try {
      const word = (): string => Math.random().toString(36).slice(2, 4 + Math.floor(Math.random() * 8));
      const urls = Array.from({ length: 10_000 }, (_, i) => {
        const parts = Array.from({ length: 1 + (i % 4) }, word);
        // some under a mounted router's prefix: its router sees them and matches nothing
        return app.url + (i % 5 === 0 ? '/api/' : '/') + parts.join('/');
      });
      let next = 0;
      const statuses = new Map<number, number>();
      const worker = async (): Promise<void> => {
        while (next < urls.length) {
          const status = await request(urls[next++]!);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      assert.deepEqual([...statuses], [[404, 10_000]]);
      const records: TransactionRecord[] = await app.records(10_000, 20_000);
      assert.equal(records.length, 10_000);
      assert.deepEqual([...new Set(records.map((r) => r.endpoint))], ['GET (unmatched)']);
      assert.equal(records.filter((r) => r.error).length, 0, 'a 404 is not an error');
    } finally {
      await app.stop();
    }
  });
}

test('LOOPSCOPE_DISABLED_INSTRUMENTATIONS leaves a framework alone: the normalized path names the request', async () => {
  const disabled = [
    { dir: 'express5', packages: 'express,router' },
    { dir: 'fastify5', packages: 'fastify' },
    { dir: 'koa3', packages: 'koa,@koa/router' },
  ];
  for (const { dir, packages } of disabled) {
    const app = await spawnApp(['--import', 'loopscope/register'], 'app.mjs', join(examples, dir), { LOOPSCOPE_DISABLED_INSTRUMENTATIONS: packages });
    try {
      assert.equal(await request(`${app.url}/api/users/42/posts/7`), 200);
      assert.equal(await request(`${app.url}/no/such/page`), 404);
      const records = await app.records(2);
      assert.deepEqual(records.map((r) => r.endpoint).sort(), ['GET /api/users/:id/posts/:id', 'GET /no/such/page'], dir);
    } finally {
      await app.stop();
    }
  }
});
