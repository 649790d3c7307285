/**
 * A name the app sets with `current().setName()` stands: a route matched later does not rename the
 * transaction, and a 404 the app named is not `(unmatched)`. Express 5 loaded in this process after
 * the agent started (so its module hooks patch it).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { current, shutdown, start } from '../src/index.js';
import { get, listen, recorder } from './helpers.js';

start({ service: 'set-name', collector: 'off' });
after(shutdown);

type Handler = (req: http.IncomingMessage, res: http.ServerResponse & { status(code: number): { end(): void }; send(body: string): void }, next: () => void) => void;
interface ExpressApp extends http.RequestListener {
  use(path: string | Handler, handler?: Handler): void;
  get(path: string, handler: Handler): void;
}

const requireFromExample = createRequire(fileURLToPath(new URL('../../../../examples/frameworks/express5/package.json', import.meta.url)));
const express = requireFromExample('express') as () => ExpressApp;

test('the app names the transaction; a route or a 404 does not rename it', async () => {
  const app = express();
  app.use('/custom', (req, res, next) => {
    current()?.setName('GET custom');
    next();
  });
  app.get('/custom/:id', (req, res) => res.send('ok'));
  app.get('/plain/:id', (req, res) => res.send('ok'));
  app.use((req, res) => {
    current()?.setName('GET not-found page');
    res.status(404).end();
  });
  const server = http.createServer(app);
  const url = await listen(server);
  const records = recorder();
  try {
    await get(`${url}/custom/1`);
    await get(`${url}/plain/2`);
    await get(`${url}/no/such/page`);
    assert.equal((await records.next('GET custom')).status, 200);
    assert.equal((await records.next('GET /plain/:id')).status, 200);
    assert.equal((await records.next('GET not-found page')).status, 404);
  } finally {
    records.stop();
    server.close();
  }
});
