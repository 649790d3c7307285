/**
 * nats against the NATS server on 127.0.0.1:4222: publish and request are `queue` segments, and
 * each message of a callback subscription is a transaction of its own.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { current, flush, start, transaction } from '../src/index.js';
import { concurrently, here, measured, only, requireLib, theSegment } from './datastore-helpers.js';
import { firstLine, recorder } from './helpers.js';

start({ service: 'nats-test' });
const rec = recorder();

interface Hdrs {
  get(k: string): string;
  set(k: string, v: string): void;
}
interface Msg {
  data: Uint8Array;
  headers?: Hdrs;
  respond(data: Uint8Array): boolean;
}
interface Nc {
  publish(subject: string, data?: Uint8Array, opts?: { headers?: Hdrs }): void;
  request(subject: string, data?: Uint8Array, opts?: object): Promise<Msg>;
  subscribe(subject: string, opts: { callback(err: unknown, msg: Msg): void }): { unsubscribe(): void };
  flush(): Promise<void>;
  close(): Promise<void>;
}
const { connect, headers } = requireLib('nats') as { connect(o: object): Promise<Nc>; headers(): Hdrs };
const subject = `loopscope.test.${process.pid}`;
const text = new TextEncoder();
const read = new TextDecoder();
let nc: Nc;
const handledIn: Array<string | undefined> = [];

/** A NATS service in a process of its own: it answers `loopscope.delay.<ms>` after exactly ms (fixtures/nats-responder.ts). */
let responder: ChildProcess;

before(async () => {
  responder = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/nats-responder.js', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  await firstLine(responder, 'the NATS responder');
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
  responder.kill();
});

test('publish and request are queue segments with target; the request lasts until the reply', async () => {
  const pub = await measured(rec, 'nats publish', async () => nc.publish(`${subject}.none`, text.encode('secret')), theSegment);
  const seg = only(pub.record, () => true);
  assert.equal(seg.kind, 'queue');
  assert.equal(seg.operation, 'publish');
  assert.equal(seg.target, `127.0.0.1:4222/${subject}.none`);

  await nc.request(subject, text.encode('warm'));
  assert.deepEqual(handledIn, [`NATS subscribe ${subject}`]);
  // answered from another process, exactly 5 ms after it got the request: the reply arrives while
  // this loop waits, so its arrival is dated exactly (docs/metrics.md) and the segment lasts at
  // least those 5 ms. (The echo service above answers from this process's own loop: a reply that
  // arrives while the loop is busy is dated from the poll before, which can precede the echo's
  // own timer.)
  await nc.request('loopscope.delay.5', text.encode('warm'), { timeout: 5000 });
  const req = await measured(rec, 'nats request', () => nc.request('loopscope.delay.5', text.encode('x'), { timeout: 5000 }), theSegment);
  const r = only(req.record, () => true);
  assert.equal(r.operation, 'request');
  assert.equal(r.target, '127.0.0.1:4222/loopscope.delay.5');
  assert.ok(r.end - r.start >= 5, `the request lasted ${r.end - r.start} ms, its answer came after 5`);
});

test('200 concurrent requests over one connection: each reply goes to its requester', async () => {
  const records = await concurrently(rec, 'nats req', 200, (i) => nc.request(subject, text.encode(String(i)), { timeout: 5000 }).then((m) => ({ echoed: read.decode(m.data), ranIn: here() })));
  for (const r of records) assert.deepEqual(r.segments.map((s) => s.operation), ['request'], r.endpoint);
});

test("a subscriber continues its publisher's trace under the publish or request segment; the app's headers are kept and its object left alone", async () => {
  const traced = `${subject}.traced`;
  const got: Array<{ traceId?: string; parentSpanId: string; app: string }> = [];
  const sub = nc.subscribe(traced, {
    callback(_err, msg) {
      got.push({ traceId: current()?.traceId, parentSpanId: (msg.headers?.get('traceparent') ?? '').split('-')[2] ?? '', app: msg.headers?.get('x-app') ?? '' });
      if (msg.headers?.get('reply') === 'yes') msg.respond(msg.data);
    },
  });
  const mine = headers();
  mine.set('x-app', 'kept');
  await transaction('nats traced publish', async () => nc.publish(traced, text.encode('p'), { headers: mine }));
  const asking = headers();
  asking.set('reply', 'yes');
  await transaction('nats traced request', () => nc.request(traced, text.encode('r'), { timeout: 5000, headers: asking }));
  await nc.flush();
  await flush();
  sub.unsubscribe();
  assert.equal(mine.get('traceparent'), '', 'the headers object the app passed is not changed');
  for (const name of ['nats traced publish', 'nats traced request']) {
    const sender = await rec.next(name);
    const call = sender.segments[0]!;
    const message = got.find((g) => g.traceId === sender.traceId);
    assert.ok(message, `the subscriber ran in trace ${sender.traceId}: ${JSON.stringify(got)}`);
    assert.equal(message.parentSpanId, call.spanId);
    const consumer = rec.all.find((r) => r.endpoint === `NATS subscribe ${traced}` && r.traceId === sender.traceId);
    assert.equal(consumer?.parentSpanId, call.spanId);
  }
  assert.equal(got.find((g) => g.app === 'kept') !== undefined, true);
});
