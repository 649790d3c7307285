/**
 * mysql2 against the MariaDB on 127.0.0.1:3306: queries, prepared statements and pool checkouts are
 * `db` segments, timed within 2 ms, attributed to their request when 200 requests share 4 connections.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { start } from '../src/index.js';
import { checkoutAndSelect, concurrently, here, measured, only, requireLib } from './datastore-helpers.js';
import { recorder } from './helpers.js';

start({ service: 'mysql2-test' });
const rec = recorder();

type Rows = Array<Record<string, unknown>>;
interface PromisePool {
  query(sql: string, values?: unknown[]): Promise<[Rows, unknown]>;
  execute(sql: string, values?: unknown[]): Promise<[Rows, unknown]>;
  end(): Promise<void>;
}
interface CallbackPool {
  query(sql: string, values: unknown[], cb: (err: Error | null, rows: Rows) => void): void;
  query(sql: string): { on(event: 'end', listener: () => void): unknown };
  end(cb?: () => void): void;
}
const mysql = requireLib('mysql2') as { createPool(o: object): CallbackPool };
const mysqlPromise = requireLib('mysql2/promise') as { createPool(o: object): PromisePool };
const config = { host: '127.0.0.1', port: 3306, user: 'root', password: '', database: 'test', connectionLimit: 4 };
const pool = mysqlPromise.createPool(config);
const cbPool = mysql.createPool(config);
after(async () => {
  rec.stop();
  await pool.end();
  await new Promise<void>((r) => cbPool.end(() => r()));
});

test('mysql2/promise: checkout and query are db segments with target and sanitized statement', async () => {
  await pool.query('SELECT 1');
  const { record } = await measured(rec, 'mysql one', () => pool.query("SELECT ? AS a, 'secret' AS b, -7 AS c, SLEEP(0.01)", ['x']), checkoutAndSelect);
  const checkout = only(record, (s) => s.operation === 'checkout');
  const query = only(record, (s) => s.operation === 'SELECT');
  assert.equal(query.kind, 'db');
  assert.equal(query.name, 'mysql SELECT');
  assert.equal(query.target, '127.0.0.1:3306/test');
  assert.equal(query.statement, 'SELECT ? AS a, ? AS b, ? AS c, SLEEP(?)');
  assert.equal(checkout.kind, 'db');
  assert.ok(query.end - query.start >= 10);
});

test('prepared statements (execute) and errors', async () => {
  // the server takes 5 ms: the answer comes while the loop waits for it, and is dated exactly. An
  // answer quicker than the client's own work after sending it is dated from the loop's previous
  // poll (docs/metrics.md), and the segment can end as early as it started
  await pool.execute('SELECT ? AS a, SLEEP(0.005)', [1]);
  const { record } = await measured(rec, 'mysql execute', () => pool.execute('SELECT ? AS a, SLEEP(0.005)', [1]), checkoutAndSelect);
  const query = only(record, (s) => s.operation === 'SELECT');
  assert.equal(query.statement, 'SELECT ? AS a, SLEEP(?)');
  assert.ok(query.end - query.start >= 5, `the execute lasted ${query.end - query.start} ms, the server 5`);
  const failed = await measured(rec, 'mysql error', () => pool.query('SELECT * FROM no_such_table').catch((e: Error) => e.message));
  assert.match(only(failed.record, (s) => s.operation === 'SELECT').error ?? '', /no_such_table/);
});

test('the event-emitter style (no callback, no promise) is timed to its end event', async () => {
  const { record } = await measured(rec, 'mysql emitter', () => new Promise<void>((resolve) => cbPool.query('SELECT SLEEP(0.005)').on('end', () => resolve())), checkoutAndSelect);
  assert.equal(only(record, (s) => s.operation === 'SELECT').statement, 'SELECT SLEEP(?)');
});

test('200 concurrent requests on a pool of 4, promise and callback pools', async () => {
  const records = await concurrently(rec, 'mysql req', 200, (i) =>
    i % 2 === 0
      ? pool.query('SELECT ? AS id', [String(i)]).then(([rows]) => ({ echoed: String(rows[0]!.id), ranIn: here() }))
      : new Promise((resolve, reject) =>
        cbPool.query('SELECT ? AS id', [String(i)], (err, rows) => (err ? reject(err) : resolve({ echoed: String(rows[0]!.id), ranIn: here() }))),
      ),
  );
  for (const r of records) assert.deepEqual(r.segments.map((s) => s.operation), ['checkout', 'SELECT'], r.endpoint);
  assert.ok(records.some((r) => r.segments[0]!.end - r.segments[0]!.start > 1), 'some requests waited for a connection');
});
