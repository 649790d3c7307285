import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endpointName, normalizePath } from '../../src/index.js';

test('ids, uuids, hashes, dates and tokens become placeholders', () => {
  assert.equal(normalizePath('/users/42'), '/users/:id');
  assert.equal(normalizePath('/users/42/orders/7?x=1#top'), '/users/:id/orders/:id');
  assert.equal(normalizePath('/o/3fa85f64-5717-4562-b3fc-2c963f66afa6'), '/o/:uuid');
  assert.equal(normalizePath('/blob/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b'), '/blob/:hash');
  assert.equal(normalizePath('/report/2026-11-27'), '/report/:date');
  assert.equal(normalizePath('/s/aZ3kLm9QxT2pR8vW'), '/s/:token');
});

test('words stay words', () => {
  assert.equal(normalizePath('/'), '/');
  assert.equal(normalizePath('/api/puppies/feed'), '/api/puppies/feed');
  assert.equal(normalizePath('/chores'), '/chores');
});

test('deep and absolute-form paths stay bounded', () => {
  assert.equal(normalizePath('/a/b/c/d/e/f/g/h/i/j/k'), '/a/b/c/d/e/f/g/h/…');
  assert.equal(normalizePath('http://example.test/users/9'), '/users/:id');
  assert.equal(normalizePath('/x/' + 'y'.repeat(100)), '/x/:long');
});

test('endpoint names: METHOD /path; 10 000 random ids collapse into one endpoint', () => {
  const names = new Set<string>();
  for (let i = 0; i < 10_000; i++) names.add(endpointName('GET', `/users/${Math.floor(Math.random() * 1e9)}/posts/${crypto.randomUUID()}`));
  assert.deepEqual([...names], ['GET /users/:id/posts/:uuid']);
});

test('malformed percent-encoding does not throw', () => {
  assert.equal(normalizePath('/a/%E0%A4%A'), '/a/:invalid');
});

test('a segment that mixes letters and digits is an id; words, versions and the words that hold a digit stay', () => {
  const table: [string, string][] = [
    // collapsed: ids that are not purely numeric
    ['/posts/u2329ad', '/posts/:id'],
    ['/profile/abort1', '/profile/:id'],
    ['/items/item42', '/items/:id'],
    ['/x/a1b2c3', '/x/:id'],
    ['/orders/ORD-2024-77', '/orders/:id'],
    ['/u/user_42/files', '/u/:id/files'],
    ['/assets/bundle.3f9a2c.js', '/assets/:id'],
    ['/sizes/2x', '/sizes/:id'],
    // kept: words, versions and words with a digit
    ['/api/v1/users', '/api/v1/users'],
    ['/api/V2/users', '/api/V2/users'],
    ['/api/v1.1/users', '/api/v1.1/users'],
    ['/v2/oauth2/token', '/v2/oauth2/token'],
    ['/h2/ping', '/h2/ping'],
    ['/s3/upload', '/s3/upload'],
    ['/hash/sha256', '/hash/sha256'],
    ['/encode/base64', '/encode/base64'],
    ['/i18n/en-US', '/i18n/en-US'],
    ['/auth/2fa', '/auth/2fa'],
    ['/static/app.js', '/static/app.js'],
    ['/users/me/avatar', '/users/me/avatar'],
  ];
  for (const [path, name] of table) assert.equal(normalizePath(path), name, path);
});
