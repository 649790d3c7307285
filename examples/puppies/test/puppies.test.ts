/**
 * The puppy service (from Amy Boyle's talk "Monitoring Asynchronous Applications") under the
 * agent: the critical path of the chores (the slowest of three parallel callback-style calls), of
 * ten sequential fetches (all of them, in order), and the cuddle after the response.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { onTransactionEnd, start, type TransactionRecord } from 'loopscope';
import { createApp } from '../src/app.js';
import type { Kennel } from '../src/kennel.js';
import { startUpstream } from '../src/upstream.js';

start({ service: 'puppies-test' });
// after the agent: pg and ioredis are patched when they load, as under --import loopscope/register
const { openKennel } = await import('../src/kennel.js');
const records: TransactionRecord[] = [];
onTransactionEnd((r) => records.push(r));
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let server: http.Server;
let base: string;
let kennel: Kennel;

before(async () => {
  upstream = await startUpstream();
  kennel = await openKennel();
  server = createApp({ upstream: upstream.url, kennel });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.close();
  await upstream.close();
  await kennel.close();
});

async function visit(path: string): Promise<TransactionRecord> {
  const seen = records.length;
  const res = await fetch(base + path);
  assert.equal(res.status, 200, await res.text());
  const endpoint = `GET ${path}`;
  for (;;) {
    const found = records.slice(seen).find((r) => r.endpoint === endpoint);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
}

const nameOf = (r: TransactionRecord, id: number) => r.segments.find((s) => s.id === id)!.name;

test('chores: three parallel calls (30, 120, 60 ms); the critical path is the slowest, the dishes', async () => {
  const record = await visit('/chores');
  assert.equal(record.segments.length, 3);
  assert.equal(record.criticalPath.length, 1);
  assert.match(nameOf(record, record.criticalPath[0]!), /\/delay\/:id$/);
  const onPath = record.segments.find((s) => s.onCriticalPath)!;
  assert.ok(onPath.end - onPath.start >= 120, `critical segment lasted ${onPath.end - onPath.start} ms`);
  // a wait of the request while the slowest call was still out is blocking, not external (docs/metrics.md)
  assert.ok(record.external + record.blocking >= 120 && record.external < 150, `external ${record.external}, blocking ${record.blocking}`);
});

test('sequential: ten fetches one after another, all on the critical path in order', async () => {
  const record = await visit('/sequential');
  assert.equal(record.segments.length, 10);
  assert.deepEqual(record.criticalPath, record.segments.map((s) => s.id));
  assert.ok(record.external >= 200, `external ${record.external}`);
});

test('concurrent: the same ten fetches at once; one of them is the critical path, external is about one call', async () => {
  const record = await visit('/concurrent');
  assert.equal(record.segments.length, 10);
  assert.equal(record.criticalPath.length, 1);
  assert.ok(record.external >= 20 && record.external < 100, `external ${record.external}`);
});

test('async: the cuddle after the response is in duration and cpu, not in response', async () => {
  const record = await visit('/async');
  assert.ok(record.response >= 200, `response ${record.response}`);
  assert.ok(record.duration - record.response >= 9, `after response ${record.duration - record.response}`);
  assert.ok(record.cpu >= 10, `cpu ${record.cpu}`);
});

test('sync: the feed blocks the loop; it is cpu, not external', async () => {
  const record = await visit('/sync');
  assert.ok(record.cpu >= 200, `cpu ${record.cpu}`);
  assert.equal(record.external, 0);
});

test('feed: the cache, the upstream and the database are three segments of three kinds', async () => {
  assert.equal(kennel.database, 'postgres', 'PostgreSQL on 127.0.0.1:5432 (started by .ci/run)');
  assert.equal(kennel.cached, true, 'Redis on 127.0.0.1:6379');
  await visit('/feed');
  const record = await visit('/feed');
  assert.deepEqual(record.segments.map((s) => s.kind), ['cache', 'http', 'db', 'db']);
  assert.deepEqual(record.segments.map((s) => s.operation ?? null), ['GET', null, 'checkout', 'INSERT']);
  assert.equal(record.segments[3]!.statement, 'INSERT INTO puppy_feedings (puppy, grams) VALUES ($1, $2)');
  assert.deepEqual(record.segments.slice(2).map((s) => s.target), ['127.0.0.1:5432/test', '127.0.0.1:5432/test']);
  assert.deepEqual(Object.keys(record.externalByKind).sort(), ['cache', 'db', 'http']);
  // the upstream takes 30 ms; a wait of the request meanwhile (the upstream runs in this process) is blocking
  assert.ok(record.externalByKind.http! + record.blocking >= 30, `http ${record.externalByKind.http}, blocking ${record.blocking}`);
});

test('feed without PostgreSQL and Redis: SQLite takes the feedings (a db segment by hand), the cache is skipped', async () => {
  const fallback = await openKennel({ postgres: 'postgres://postgres@127.0.0.1:1/none', redis: 'redis://127.0.0.1:1' });
  const app = createApp({ upstream: upstream.url, kennel: fallback });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  try {
    assert.equal(fallback.database, 'sqlite');
    assert.equal(fallback.cached, false);
    const seen = records.length;
    const res = await fetch(`http://127.0.0.1:${(app.address() as AddressInfo).port}/feed`);
    assert.match(await res.text(), /^Fed puppy \d+ some kibble/);
    let record: TransactionRecord | undefined;
    while (!(record = records.slice(seen).find((r) => r.endpoint === 'GET /feed'))) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(record.segments.map((s) => `${s.kind} ${s.name}`), [`http ${record.segments[0]!.name}`, 'db sqlite INSERT']);
  } finally {
    app.close();
    await fallback.close();
  }
});
