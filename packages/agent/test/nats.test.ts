/**
 * nats against the NATS server on 127.0.0.1:4222: publish and request are `queue` segments, and
 * each message of a callback subscription is a transaction of its own.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { current, start } from '../src/index.js';
import { concurrently, here, measured, only, requireLib, theSegment } from './datastore-helpers.js';
import { recorder } from './helpers.js';

start({ service: 'nats-test' });
const rec = recorder();

interface Msg {
  data: Uint8Array;
  respond(data: Uint8Array): boolean;
}
interface Nc {
  publish(subject: string, data?: Uint8Array): void;
  request(subject: string, data?: Uint8Array, opts?: object): Promise<Msg>;
  subscribe(subject: string, opts: { callback(err: unknown, msg: Msg): void }): { unsubscribe(): void };
  flush(): Promise<void>;
  close(): Promise<void>;
}
const { connect } = requireLib('nats') as { connect(o: object): Promise<Nc> };
const subject = `loopscope.test.${process.pid}`;
const text = new TextEncoder();
const read = new TextDecoder();
let nc: Nc;
const handledIn: Array<string | undefined> = [];

before(async () => {
  nc = await connect({ servers: '127.0.0.1:4222' });
  // an echo service: a callback subscription, each message a transaction of its own
  nc.subscribe(subject, {
    callback(_err, msg) {
      handledIn.push(current()?.endpoint);
      setTimeout(() => msg.respond(msg.data), 3);
    },
  });
  await nc.flush();
});
after(async () => {
  rec.stop();
  await nc.close();
});

test('publish and request are queue segments with target; the request lasts until the reply', async () => {
  const pub = await measured(rec, 'nats publish', async () => nc.publish(`${subject}.none`, text.encode('secret')), theSegment);
  const seg = only(pub.record, () => true);
  assert.equal(seg.kind, 'queue');
  assert.equal(seg.operation, 'publish');
  assert.equal(seg.target, `127.0.0.1:4222/${subject}.none`);

  await nc.request(subject, text.encode('warm'));
  const req = await measured(rec, 'nats request', () => nc.request(subject, text.encode('x')), theSegment);
  const r = only(req.record, () => true);
  assert.equal(r.operation, 'request');
  assert.ok(r.end - r.start >= 3);
  assert.ok(handledIn.every((name) => name === `NATS subscribe ${subject}`));
});

test('200 concurrent requests over one connection: each reply goes to its requester', async () => {
  const records = await concurrently(rec, 'nats req', 200, (i) => nc.request(subject, text.encode(String(i)), { timeout: 5000 }).then((m) => ({ echoed: read.decode(m.data), ranIn: here() })));
  for (const r of records) assert.deepEqual(r.segments.map((s) => s.operation), ['request'], r.endpoint);
});
