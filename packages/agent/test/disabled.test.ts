/** LOOPSCOPE_ENABLED=false: the API runs the code it is given and installs nothing. */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

process.env.LOOPSCOPE_ENABLED = 'false';
const emitBefore = http.Server.prototype.emit;
const { current, onTransactionEnd, segment, start, transaction, wrap } = await import('../src/index.js');

test('every API call is a pass-through and nothing is patched', async () => {
  assert.equal(start(), undefined);
  const fn = (): number => 42;
  assert.equal(wrap(fn), fn);
  assert.equal(transaction('job', () => segment('step', 'db', fn)), 42);
  assert.equal(await transaction('async job', async () => current()), undefined);
  let delivered = 0;
  onTransactionEnd(() => delivered++)();
  assert.equal(http.Server.prototype.emit, emitBefore);
  assert.equal(delivered, 0);
});
