/**
 * ioredis and node-redis against the Redis on 127.0.0.1:6379: commands are `cache` segments with
 * the command and key (never the value), timed within 2 ms, attributed to the request that issued
 * them when 200 requests share one connection, including commands queued before it was ready.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { TransactionRecord } from '@loopscope/protocol';
import { start, transaction } from '../src/index.js';
import { concurrently, here, measured, only, requireLib, theSegment } from './datastore-helpers.js';
import { recorder } from './helpers.js';

start({ service: 'redis-test' });
const rec = recorder();

type Cb = (err: Error | null, value: string) => void;
interface IORedisClient {
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<string>;
  echo(value: string): Promise<string>;
  echo(value: string, cb: Cb): void;
  quit(): Promise<unknown>;
}
const IORedis = requireLib('ioredis') as new (o: object) => IORedisClient;
interface NodeRedis {
  connect(): Promise<unknown>;
  get(k: string): Promise<string | null>;
  set(k: string, v: string): Promise<unknown>;
  echo(v: string): Promise<string>;
  quit(): Promise<unknown>;
}
type CreateClient = (o: object) => NodeRedis;
type CreateClientPool = (o: object, pool: object) => NodeRedis & { close(): Promise<unknown> };
const io = new IORedis({ host: '127.0.0.1', port: 6379, db: 0, lazyConnect: true });
// node-redis 6 (current) and 5 (installed as `redis5`: the channel is the same whatever the package is called)
const nodeClients = (['redis', 'redis5'] as const).map((pkg) => ({
  pkg,
  client: (requireLib(pkg) as { createClient: CreateClient }).createClient({ socket: { host: '127.0.0.1', port: 6379 } }),
}));
after(async () => {
  rec.stop();
  await io.quit();
  for (const { client } of nodeClients) await client.quit();
});

/** `GET loopscope:test` as both clients record it: the key, never the value it returned. */
function assertGet({ record, result }: { record: TransactionRecord; result: unknown }): void {
  assert.equal(result, 'secret-value');
  const seg = only(record, () => true);
  assert.deepEqual([seg.kind, seg.name, seg.operation, seg.target, seg.statement], ['cache', 'redis GET', 'GET', '127.0.0.1:6379/0', 'GET loopscope:test']);
  assert.ok(!JSON.stringify(record).includes('secret'));
}

test('ioredis: commands queued before the connection was ready belong to the requests that issued them', async () => {
  // lazyConnect: the first commands wait in ioredis's offline queue, flushed from the connection's context
  const records = await concurrently(rec, 'ioredis early', 20, (i) => io.echo(String(i)).then((echoed) => ({ echoed, ranIn: here() })));
  // the first command opened the connection: its request also waited on the handshake
  assert.deepEqual(records[0]!.segments[0]!.statement, 'ECHO');
  assert.ok(records[0]!.segments.some((s) => s.operation === 'HELLO' || s.operation === 'INFO'));
  for (const r of records.slice(1)) assert.deepEqual(r.segments.map((s) => s.statement), ['ECHO'], r.endpoint);
});

test('ioredis: a command is a cache segment with command and key, never the value', async () => {
  await io.set('loopscope:test', 'secret-value');
  assertGet(await measured(rec, 'ioredis get', () => io.get('loopscope:test'), theSegment));
  const set = await measured(rec, 'ioredis set', () => io.set('loopscope:test', 'another-secret'));
  assert.equal(only(set.record, () => true).statement, 'SET loopscope:test');
  assert.ok(!JSON.stringify(set.record).includes('secret'));
});

test('ioredis: 200 concurrent requests on one connection, promise and callback style', async () => {
  const records = await concurrently(rec, 'ioredis req', 200, (i) =>
    i % 2 === 0
      ? io.echo(String(i)).then((echoed) => ({ echoed, ranIn: here() }))
      : new Promise((resolve, reject) => io.echo(String(i), (err, echoed) => (err ? reject(err) : resolve({ echoed, ranIn: here() })))),
  );
  for (const r of records) assert.deepEqual(r.segments.map((s) => s.operation), ['ECHO'], r.endpoint);
});

for (const { pkg, client } of nodeClients) {
  const version = (requireLib(`${pkg}/package.json`) as { version: string }).version;

  test(`node-redis ${version}: a command is a cache segment from the client's own tracing channel`, async () => {
    await transaction('node-redis connect', () => client.connect());
    await client.set('loopscope:test', 'secret-value');
    assertGet(await measured(rec, `${pkg} get`, () => client.get('loopscope:test'), theSegment));
  });

  test(`node-redis ${version}: 200 concurrent requests on one connection`, async () => {
    const records = await concurrently(rec, `${pkg} req`, 200, (i) => client.echo(String(i)).then((echoed) => ({ echoed, ranIn: here() })));
    for (const r of records) assert.deepEqual(r.segments.map((s) => s.operation), ['ECHO'], r.endpoint);
  });

  test(`node-redis ${version}: 200 concurrent requests on a client pool of 2, tasks queued behind busy clients`, async () => {
    const { createClientPool } = requireLib(pkg) as { createClientPool: CreateClientPool };
    const pool = createClientPool({ socket: { host: '127.0.0.1', port: 6379 } }, { minimum: 1, maximum: 2 });
    await pool.connect();
    try {
      const records = await concurrently(rec, `${pkg} pool`, 200, (i) => pool.echo(String(i)).then((echoed) => ({ echoed, ranIn: here() })));
      for (const r of records) assert.deepEqual(r.segments.map((s) => s.operation), ['ECHO'], r.endpoint);
    } finally {
      await pool.close();
    }
  });
}
