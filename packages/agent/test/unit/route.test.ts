import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCatchAll } from '../../src/instrument/route.js';

test('a catch-all is a template that ends in a wildcard, in every router syntax', () => {
  const catchAll = ['*', '/api*', '/api/*', '/api*path', '/*splat', '{*splat}', '/api{/*path}', '(.*)', '/:rest(.*)', '/:path*', '/:path(*)', '/.*/', '/^\\/api\\/.*$/i'];
  for (const t of catchAll) assert.equal(isCatchAll(t), true, t);
  const routes = ['/users/:id', '/api', '/', '/files/:name.:ext', '/a/:b?', '/x/(\\d+)', '/^\\/api$/', '/*/edit'];
  for (const t of routes) assert.equal(isCatchAll(t), false, t);
});
