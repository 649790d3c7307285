import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactSecrets } from '@loopscope/protocol';
import { DEFAULT_MAX_MESSAGE, describeError, setMaxMessage } from '../../src/describe-error.js';

test("an error is text: Name: message, or an object's own message; never [object Object], and never what a value that is not an Error holds", () => {
  assert.equal(describeError(new TypeError('no kibble')), 'TypeError: no kibble');
  assert.equal(describeError(new RangeError('')), 'RangeError');
  assert.equal(describeError({ message: 'from message', error: 'from error' }), 'from message');
  assert.equal(describeError({ error: 'not found' }), 'not found');
  // not Errors: their kind, not their content (a page of text, a response body)
  assert.equal(describeError('<html>'.repeat(1000)), 'a string of 6000 characters (not an Error)');
  assert.equal(describeError({ error: { code: 1 } }), 'Object {error} (not an Error)');
  assert.equal(describeError({ code: 7, ok: false, email: 'a@b.c' }), 'Object {code, ok, email} (not an Error)');
  assert.equal(describeError(42), 'number 42 (not an Error)');
  assert.equal(describeError(Symbol('s')), 'a symbol (not an Error)');
  const cyclic: Record<string, unknown> = { code: 9n };
  cyclic.self = cyclic;
  assert.equal(describeError(cyclic), 'Object {code, self} (not an Error)');
  assert.equal(describeError(new Map([[1, 2]])), 'Map {} (not an Error)');
});

test('a message is bounded: 300 characters by default, configurable, never past what the wire format takes', () => {
  const long = describeError(new Error('y'.repeat(10_000)));
  assert.equal(long.length, DEFAULT_MAX_MESSAGE);
  assert.ok(long.endsWith('…'));
  try {
    setMaxMessage(1000);
    assert.equal(describeError({ message: 'z'.repeat(5000) }).length, 1000);
    setMaxMessage(1e9);
    assert.equal(describeError({ message: 'z'.repeat(5000) }).length, 2048);
  } finally {
    setMaxMessage(DEFAULT_MAX_MESSAGE);
  }
});

test('secrets in a message are redacted: URL user-info and queries, Bearer and Basic values, secret key=value pairs, header lines', () => {
  const cases: Array<[string, string]> = [
    // Node's own fetch, given a URL with credentials
    [
      'Request cannot be constructed from a URL that includes credentials: http://user:s3cr3t@127.0.0.1:8080/x?token=abc',
      'Request cannot be constructed from a URL that includes credentials: http://[redacted]@127.0.0.1:8080/x',
    ],
    ['connect to postgres://app:p@ss:w0rd@db.internal:5432/prod failed', 'connect to postgres://[redacted]@db.internal:5432/prod failed'],
    ['amqp://guest:guest@mq:5672 and nats://tok3n@nats:4222, redis://:pw@cache/0', 'amqp://[redacted]@mq:5672 and nats://[redacted]@nats:4222, redis://[redacted]@cache/0'],
    ['request to https://api.example.com/v1/charge?api_key=k1&amount=5 failed (see "https://x.io/a#access_token=t")', 'request to https://api.example.com/v1/charge failed (see "https://x.io/a")'],
    ['Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig failed', 'Authorization: [redacted]'],
    ['invalid Bearer abcdef', 'invalid Bearer [redacted]'],
    ['Basic dXNlcjpwYXNz was refused', 'Basic [redacted] was refused'],
    // the word, not a credential
    ['Basic authentication failed', 'Basic authentication failed'],
    ['connection to "host=db port=5432 password=s3cr3t dbname=app" failed', 'connection to "host=db port=5432 password=[redacted] dbname=app" failed'],
    ["PGPASSWORD=s3cr3t pwd='a b' pass=x;user=u", "PGPASSWORD=[redacted] pwd='[redacted]' pass=[redacted];user=u"],
    ['bad config {"db_password":"s3cr3t","client_secret": "c","access_token":"t","port":5432}', 'bad config {"db_password":"[redacted]","client_secret": "[redacted]","access_token":"[redacted]","port":5432}'],
    ['Server=db;User Id=sa;Password=s3cr3t;', 'Server=db;User Id=sa;Password=[redacted];'],
    ['X-Amz-Signature=abc123 JSESSIONID=ABC connect.sid=s%3Axyz', 'X-Amz-Signature=[redacted] JSESSIONID=[redacted] connect.sid=[redacted]'],
    ['rejected\nCookie: sid=1; theme=dark\nnext line', 'rejected\nCookie: [redacted]\nnext line'],
    // what is not a secret stays
    ['password authentication failed for user "app"', 'password authentication failed for user "app"'],
    ['connect ECONNREFUSED 127.0.0.1:5432 (code=ECONNREFUSED)', 'connect ECONNREFUSED 127.0.0.1:5432 (code=ECONNREFUSED)'],
    ['GET http://127.0.0.1:8080/users/42 answered 502', 'GET http://127.0.0.1:8080/users/42 answered 502'],
  ];
  for (const [text, redacted] of cases) assert.equal(redactSecrets(text), redacted, text);
});

test('an error is described without its secrets, and its secret is not cut in half past the redaction', () => {
  assert.equal(
    describeError(new TypeError('Request cannot be constructed from a URL that includes credentials: http://u:s3cr3t@h/x')),
    'TypeError: Request cannot be constructed from a URL that includes credentials: http://[redacted]@h/x',
  );
  assert.equal(describeError({ message: 'token=s3cr3t' }), 'token=[redacted]');
  // a message longer than what is scanned: its last word, maybe a secret cut in half, goes
  const long = describeError(new Error(`${'x '.repeat(2100)}postgres://u:s3cr3t-that-goes-on@host/db`));
  assert.ok(!long.includes('s3cr3t'), long.slice(-80));
  try {
    setMaxMessage(2048);
    const many = describeError(new Error(`${'password=s3cr3t '.repeat(300)}`));
    assert.ok(!many.includes('s3cr3t') && many.length === 2048);
  } finally {
    setMaxMessage(DEFAULT_MAX_MESSAGE);
  }
});
