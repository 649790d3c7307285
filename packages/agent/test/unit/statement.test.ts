/** Statements: literals become `?`, placeholders and identifiers stay, values never leak, length is bounded. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SEGMENT_TEXT_LIMITS } from '@loopscope/protocol';
import { redisStatement, sanitizeSql, sqlOperation } from '../../src/instrument/statement.js';

const pgCases: Array<[string, string]> = [
  ["SELECT * FROM users WHERE name = 'O''Brien' AND id = 42", 'SELECT * FROM users WHERE name = ? AND id = ?'],
  ["SELECT * FROM t WHERE a = E'it\\'s' AND \"Col1\" = 1", 'SELECT * FROM t WHERE a = ? AND "Col1" = ?'],
  // a standard string ends at the quote: the backslash is no escape in PostgreSQL
  ["SELECT 'C:\\' AS dir, 7", 'SELECT ? AS dir, ?'],
  ['SELECT -1, a - 1, a-1, x = -2.5e-3, 3.14, .5, 1e10 FROM t1 LIMIT 10 OFFSET -0', 'SELECT ?, a - ?, a-?, x = ?, ?, ?, ? FROM t1 LIMIT ? OFFSET ?'],
  ['UPDATE t SET a = a + 1, b = b-2 WHERE c > -3 AND (-4) < d', 'UPDATE t SET a = a + ?, b = b-? WHERE c > ? AND (?) < d'],
  ['SELECT * FROM t WHERE id IN (1,2,3) AND t2.c3 = $1 AND d = $22', 'SELECT * FROM t WHERE id IN (?,?,?) AND t2.c3 = $1 AND d = $22'],
  ["SELECT $$it's 5$$, $body$ x $$ y $body$, $1, a$b FROM t", 'SELECT ?, ?, $1, a$b FROM t'],
  ["SELECT X'1F', B'0101', 0x1F", 'SELECT ?, ?, ?'],
  ['SELECT 1 -- the secret is 42\n FROM t /* 99 */ WHERE a = 5', 'SELECT ? FROM t WHERE a = ?'],
  ["INSERT INTO t (a, b) VALUES (1, 'x'), (-2, NULL) RETURNING id", 'INSERT INTO t (a, b) VALUES (?, ?), (?, NULL) RETURNING id'],
  ['  with x as (select 1)\n\tselect * from x', 'with x as (select ?) select * from x'],
  ["SELECT 'never closed, secret", 'SELECT ?'],
  ['SELECT $tag$ never closed secret', 'SELECT ?'],
  ['SELECT 1 /* never closed secret', 'SELECT ?'],
];

const mysqlCases: Array<[string, string]> = [
  ["SELECT * FROM t WHERE a = 'it\\'s' AND b = \"x\\\"y\" AND `c1` = 0xFF", 'SELECT * FROM t WHERE a = ? AND b = ? AND `c1` = ?'],
  ['SELECT 1 # secret 42\nFROM t WHERE x = ? AND y IN (1, -2, 3)', 'SELECT ? FROM t WHERE x = ? AND y IN (?, ?, ?)'],
  ["SELECT N'text', X'ab'", 'SELECT ?, ?'],
];

test('PostgreSQL: every kind of literal becomes ?, identifiers and $n placeholders stay', () => {
  for (const [sql, expected] of pgCases) assert.equal(sanitizeSql(sql, 'postgres'), expected, sql);
});

test('MySQL: backslash escapes, double-quoted strings, # comments', () => {
  for (const [sql, expected] of mysqlCases) assert.equal(sanitizeSql(sql, 'mysql'), expected, sql);
});

test('no value survives: none of the literals appear in the output', () => {
  const outputs = [...pgCases.map(([sql]) => [sql, sanitizeSql(sql, 'postgres')]), ...mysqlCases.map(([sql]) => [sql, sanitizeSql(sql, 'mysql')])];
  for (const [sql, out] of outputs as Array<[string, string]>) {
    for (const secret of ['secret', 'Brien', "it's", '42', '99', 'DEADBEEF']) assert.ok(!out.includes(secret), `${secret} leaked from ${sql}: ${out}`);
  }
});

test('the length is bounded, and a huge statement is cut, its literal still hidden', () => {
  const long = `SELECT ${Array.from({ length: 5000 }, (_, i) => `col_${i}`).join(', ')} FROM t`;
  const out = sanitizeSql(long, 'postgres');
  assert.equal(out.length, SEGMENT_TEXT_LIMITS.statement);
  assert.ok(out.endsWith('…'));
  // a literal longer than the scan limit: its end (and what follows) is never reached, nothing leaks
  assert.equal(sanitizeSql(`SELECT '${'x'.repeat(100_000)}', 'secret'`, 'postgres'), 'SELECT ?…');
});

test('the operation is the first keyword', () => {
  assert.equal(sqlOperation('select ?'), 'SELECT');
  assert.equal(sqlOperation('with x as (select ?) select * from x'), 'WITH');
  assert.equal(sqlOperation('(SELECT ?)'), 'query');
});

test('Redis: the command and its key, never a value nor a password', () => {
  assert.equal(redisStatement('get', 'user:42'), 'GET user:42');
  assert.equal(redisStatement('set', 'session:abc'), 'SET session:abc');
  assert.equal(redisStatement('auth', 'hunter2'), 'AUTH');
  assert.equal(redisStatement('eval', 'return 1'), 'EVAL');
  assert.equal(redisStatement('ping', undefined), 'PING');
  assert.equal(redisStatement('get', 'k'.repeat(500)).length, 4 + 128);
});
