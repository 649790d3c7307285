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

/**
 * The values of each input, none of which may survive: every literal (strings, numbers, binary and
 * hex) and the text of every comment. Each is in its input (checked below), so each assertion fails
 * for a sanitizer that lets that value through.
 */
const values: Array<['postgres' | 'mysql', string, string[]]> = [
  ['postgres', pgCases[0]![0], ["O''Brien", '42']],
  ['postgres', pgCases[1]![0], ["it\\'s"]],
  ['postgres', pgCases[2]![0], ['C:\\', '7']],
  ['postgres', pgCases[3]![0], ['2.5e-3', '3.14', '.5', '1e10', '10']],
  ['postgres', pgCases[4]![0], ['b-2', '-3', '(-4)']],
  ['postgres', pgCases[5]![0], ['1,2,3']],
  ['postgres', pgCases[6]![0], ["it's 5", 'x $$ y']],
  ['postgres', pgCases[7]![0], ['1F', '0101']],
  ['postgres', pgCases[8]![0], ['the secret is 42', '99', '= 5']],
  ['postgres', pgCases[9]![0], ["'x'", '(1,', '-2']],
  ['postgres', pgCases[10]![0], ['select 1']],
  ['postgres', pgCases[11]![0], ['never closed, secret']],
  ['postgres', pgCases[12]![0], ['never closed secret']],
  ['postgres', pgCases[13]![0], ['SELECT 1', 'never closed secret']],
  ['mysql', mysqlCases[0]![0], ["it\\'s", 'x\\"y', '0xFF']],
  ['mysql', mysqlCases[1]![0], ['secret 42', '(1,', '-2']],
  ['mysql', mysqlCases[2]![0], ['text', 'ab']],
];

/** Every value that `sanitize` lets through, with where. */
function leaks(sanitize: (sql: string, dialect: 'postgres' | 'mysql') => string): string[] {
  const found: string[] = [];
  for (const [dialect, sql, secrets] of values) {
    const out = sanitize(sql, dialect);
    for (const secret of secrets) if (out.includes(secret)) found.push(`${JSON.stringify(secret)} leaked from ${JSON.stringify(sql)}: ${out}`);
  }
  return found;
}

test('no value survives: every literal and comment of each input is gone from its output', () => {
  assert.equal(values.length, pgCases.length + mysqlCases.length, 'every case has its values');
  for (const [, sql, secrets] of values) for (const secret of secrets) assert.ok(sql.includes(secret), `${JSON.stringify(secret)} is not in ${JSON.stringify(sql)}`);
  assert.deepEqual(leaks(sanitizeSql), []);
});

test('the leak check fails a broken sanitizer: one that keeps everything, one that keeps strings, one that keeps comments', () => {
  assert.equal(leaks((sql) => sql).length, values.reduce((n, [, , secrets]) => n + secrets.length, 0));
  const numbersOnly = (sql: string): string => sql.replace(/\b\d+(\.\d+)?\b/g, '?');
  assert.ok(leaks(numbersOnly).some((leak) => leak.startsWith('"O\'\'Brien"')), 'a string kept');
  const stringsAndNumbers = (sql: string): string => sql.replace(/'[^']*'|\b\d+\b/g, '?');
  assert.ok(leaks(stringsAndNumbers).some((leak) => leak.startsWith('"never closed secret"')), 'a comment kept');
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

test('a Redis key keeps its words and short ids; a part that is a token (a session id from a cookie, a hash) is ?', () => {
  assert.equal(redisStatement('get', 'sess:s3cr3t-5f0c1d2e3a4b5c6d'), 'GET sess:?');
  assert.equal(redisStatement('get', 'sess:Xk3_9aZ-Qw2Lm8Np7Rt4Vb6Yc1'), 'GET sess:?');
  assert.equal(redisStatement('hget', 'cache/5d41402abc4b2a76b9719d911017c592/body'), 'HGET cache/?/body');
  assert.equal(redisStatement('get', 'user:42:notification_settings'), 'GET user:42:notification_settings');
  assert.equal(redisStatement('get', 'rate-limit:127.0.0.1'), 'GET rate-limit:127.0.0.1');
  // AUTH's and HELLO's arguments are never looked at, whatever the client passes first
  assert.equal(redisStatement('hello', '3'), 'HELLO');
  assert.equal(redisStatement('AUTH', 'default'), 'AUTH');
});
