/**
 * pg against the PostgreSQL on 127.0.0.1:5432: queries and pool checkouts are `db` segments with
 * operation, target and sanitized statement, timed within 2 ms of the caller's own clock, and
 * attributed to the request that made them when 200 requests share a pool of 4 connections.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { start } from '../src/index.js';
import { checkoutAndSelect, concurrently, here, measured, only, requireLib, theSegment } from './datastore-helpers.js';
import { recorder } from './helpers.js';

start({ service: 'pg-test' });
const rec = recorder();

interface Result {
  rows: Array<Record<string, string>>;
}
type Cb = (err: Error | null, res: Result) => void;
interface Queryable {
  query(text: string, values?: unknown[]): Promise<Result>;
  query(text: string, values: unknown[], cb: Cb): void;
}
const pg = requireLib('pg') as {
  Client: new (o: object) => Queryable & { connect(): Promise<void>; end(): Promise<void> };
  Pool: new (o: object) => Queryable & { end(): Promise<void>; connect(): Promise<Queryable & { release(): void }> };
};
const config = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' };
const pool = new pg.Pool({ ...config, max: 4 });
const client = new pg.Client(config);
after(async () => {
  rec.stop();
  await pool.end();
  await client.end();
});

test('a query is a db segment with operation, target and the statement without its values', async () => {
  await client.connect();
  await client.query('SELECT 1'); // warm up
  const { record } = await measured(rec, 'pg one', () => client.query("SELECT $1::text AS a, 'secret' AS b, 42 AS c, pg_sleep(0.01)", ['x']), theSegment);
  const seg = only(record, () => true);
  assert.equal(seg.kind, 'db');
  assert.equal(seg.name, 'postgres SELECT');
  assert.equal(seg.operation, 'SELECT');
  assert.equal(seg.target, '127.0.0.1:5432/test');
  assert.equal(seg.statement, 'SELECT $1::text AS a, ? AS b, ? AS c, pg_sleep(?)');
  assert.ok(record.externalByKind.db! >= 10);
});

test('pool.query: the checkout and the query are two db segments, back to back, and a failure is recorded', async () => {
  await pool.query('SELECT 1');
  const { record } = await measured(rec, 'pg pool', () => pool.query('SELECT pg_sleep(0.005)'), checkoutAndSelect);
  const checkout = only(record, (s) => s.operation === 'checkout');
  const query = only(record, (s) => s.operation === 'SELECT');
  assert.equal(checkout.kind, 'db');
  assert.equal(checkout.target, '127.0.0.1:5432/test');
  assert.ok(query.start >= checkout.end - 0.001);

  const failed = await measured(rec, 'pg error', () => pool.query('SELECT * FROM no_such_table').catch((e: Error) => e.message));
  assert.match(only(failed.record, (s) => s.operation === 'SELECT').error ?? '', /no_such_table/);
});

test('callback style: the callback runs in the caller context, timed like the promise', async () => {
  const { record, result } = await measured(
    rec,
    'pg callback',
    () => new Promise<string | undefined>((resolve, reject) => pool.query('SELECT pg_sleep(0.005)', [], (err) => (err ? reject(err) : resolve(here())))),
    checkoutAndSelect,
  );
  assert.equal(result, 'pg callback');
  const checkout = only(record, (s) => s.operation === 'checkout');
  const query = only(record, (s) => s.operation === 'SELECT');
  assert.ok(query.start >= checkout.end - 0.001, 'the query starts after its checkout');
});

test('200 concurrent requests on a pool of 4: each query is attributed to the request that made it', async () => {
  const records = await concurrently(rec, 'pg req', 200, (i) =>
    i % 2 === 0
      ? pool.query('SELECT $1::text AS id', [String(i)]).then((r) => ({ echoed: r.rows[0]!.id!, ranIn: here() }))
      : new Promise((resolve, reject) =>
        pool.query('SELECT $1::text AS id', [String(i)], (err, r) => (err ? reject(err) : resolve({ echoed: r.rows[0]!.id!, ranIn: here() }))),
      ),
  );
  for (const record of records) {
    assert.deepEqual(record.segments.map((s) => s.operation), ['checkout', 'SELECT'], record.endpoint);
    assert.ok(record.segments.every((s) => s.end <= record.duration + 0.001));
  }
  // the pool was really contended: some requests waited for a connection
  assert.ok(records.some((r) => r.segments[0]!.end - r.segments[0]!.start > 1));
});
