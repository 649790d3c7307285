/**
 * The agent runs inside other people's apps: its memory stays bounded however many transactions
 * are open, its exceptions never reach the app, and work it cannot finish is closed by the linger
 * limit.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { onTransactionEnd, segment, start, transaction, wrap } from '../src/index.js';
import { get, listen, recorder } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const agent = start({ service: 'safety', maxLingerMs: 1500 })!;
const records = recorder();

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

test('10 000 open transactions: memory stays bounded, the 10 001st runs untraced, all are closed by the linger limit', async () => {
  const before = heapUsed();
  const callbacks: Array<() => void> = [];
  for (let i = 0; i < 10_001; i++) {
    transaction('open job', () => {
      // a callback that is never called keeps the transaction open; each has a few segments
      for (let s = 0; s < 3; s++) segment('step', 'other', () => undefined);
      callbacks.push(wrap(() => undefined));
    });
  }
  assert.equal(agent.tracker.openCount, 10_000);
  assert.equal(agent.tracker.notTraced, 1);
  const perTransaction = (heapUsed() - before) / 10_000;
  assert.ok(perTransaction < 4096, `${perTransaction.toFixed(0)} bytes per open transaction`);
  // the linger limit (1.5 s here) closes them all, flagged truncated, within a sweep or two
  const deadline = Date.now() + 5000;
  while (agent.tracker.openCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(agent.tracker.openCount, 0);
  const closed = records.all.filter((r) => r.endpoint === 'open job');
  assert.equal(closed.length, 10_000);
  assert.ok(closed.every((r) => r.truncated && r.segments.length === 3));
  callbacks.length = 0;
});

test('segments beyond the per-transaction limit are counted, not kept; their time still counts', async () => {
  await transaction('many segments', async () => {
    const calls = Array.from({ length: 1500 }, () => segment('tick', 'cache', () => new Promise((r) => setTimeout(r, 5))));
    await Promise.all(calls);
  });
  const record = await records.next('many segments');
  assert.equal(record.segments.length, 1000);
  assert.equal(record.droppedSegments, 500);
});

test('an exception in an onTransactionEnd listener never reaches the app', async () => {
  const before = agent.tracker.listenerErrors;
  const unsubscribe = onTransactionEnd(() => {
    throw new Error('listener bug');
  });
  const server = http.createServer((_req, res) => res.end('still fine'));
  const url = await listen(server);
  try {
    assert.equal(await get(`${url}/ping`), 'still fine');
    await records.next('GET /ping');
    assert.ok(agent.tracker.listenerErrors > before);
  } finally {
    unsubscribe();
    server.close();
  }
});

test('an instrumented request with a malformed URL and odd method is still served', async () => {
  const server = http.createServer((req, res) => res.end(`${req.method} ${req.url}`));
  const url = await listen(server);
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${url}/%E0%A4%A/${'x'.repeat(5000)}?q=%%`, { method: 'PURGE' }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(body, /^PURGE \//);
    const record = await records.next('PURGE /:invalid/:long');
    assert.equal(record.status, 200);
    assert.equal(agent.errors(), 0);
  } finally {
    server.close();
  }
});
