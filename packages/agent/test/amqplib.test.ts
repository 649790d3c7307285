/**
 * amqplib against the RabbitMQ on 127.0.0.1:5672: publishing is a `queue` segment (until the broker
 * confirms, on a confirm channel), and every consumed message is a transaction of its own.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { current, flush, start, transaction } from '../src/index.js';
import { measured, only, requireLib, theSegment } from './datastore-helpers.js';
import { recorder, until } from './helpers.js';

start({ service: 'amqplib-test' });
const rec = recorder();

interface Channel {
  assertQueue(q: string, o?: object): Promise<unknown>;
  deleteQueue(q: string): Promise<unknown>;
  sendToQueue(q: string, content: Buffer, options?: object, cb?: (err: unknown) => void): boolean;
  consume(q: string, cb: (msg: { content: Buffer; properties: { headers?: Record<string, unknown> } } | null) => void, o?: object): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  ack(msg: object): void;
}
interface CallbackChannel {
  assertQueue(q: string, o: object, cb: (err: unknown) => void): void;
  sendToQueue(q: string, content: Buffer): boolean;
  consume(q: string, cb: (msg: { content: Buffer } | null) => void, o: object, done: (err: unknown) => void): void;
  ack(msg: object): void;
}
const amqpCallbacks = requireLib('amqplib/callback_api') as {
  connect(url: string, cb: (err: unknown, conn: { createChannel(cb: (err: unknown, ch: CallbackChannel) => void): void; close(cb?: () => void): void }) => void): void;
};
const amqp = requireLib('amqplib') as { connect(url: string): Promise<{ createChannel(): Promise<Channel>; createConfirmChannel(): Promise<Channel>; close(): Promise<void> }> };
const queue = `loopscope-test-${process.pid}`;
let conn: Awaited<ReturnType<typeof amqp.connect>>;
let channel: Channel;
let confirm: Channel;

before(async () => {
  conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
  channel = await conn.createChannel();
  confirm = await conn.createConfirmChannel();
  await channel.assertQueue(queue, { autoDelete: true });
});
after(async () => {
  rec.stop();
  await channel.deleteQueue(queue);
  await conn.close();
});

/** Messages the first test leaves in the queue (measured() publishes once per run), for the consumer of the second. */
let leftInQueue = 0;

test('publish is a queue segment; on a confirm channel it lasts until the broker confirms', async () => {
  const publish = async (): Promise<boolean> => {
    const sent = channel.sendToQueue(queue, Buffer.from('secret'));
    leftInQueue++;
    return sent;
  };
  const plain = await measured(rec, 'amqp publish', publish, theSegment);
  const seg = only(plain.record, () => true);
  assert.equal(seg.kind, 'queue');
  assert.equal(seg.operation, 'publish');
  assert.equal(seg.target, `127.0.0.1:5672/${queue}`);
  assert.equal(seg.statement, undefined);

  const publishConfirmed = (): Promise<string | undefined> =>
    new Promise<string | undefined>((resolve, reject) => {
      confirm.sendToQueue(queue, Buffer.from('x'), {}, (err) => (err ? reject(err) : resolve(current()?.endpoint)));
      leftInQueue++;
    });
  const confirmed = await measured(rec, 'amqp confirm', publishConfirmed, theSegment);
  assert.equal(confirmed.result, 'amqp confirm', 'the confirm callback runs in the publisher context');
});

test('each consumed message is a transaction of its own; 200 publishers each get their own segment', async () => {
  const seen: Array<string | undefined> = [];
  const done = new Promise<void>((resolve) => {
    void channel.consume(queue, (msg) => {
      if (msg === null) return;
      seen.push(current()?.endpoint);
      channel.ack(msg);
      if (seen.length === leftInQueue + 200) resolve();
    });
  });
  await Promise.all(Array.from({ length: 200 }, (_, i) => transaction(`amqp req ${i}`, async () => channel.sendToQueue(queue, Buffer.from(String(i))))));
  await done;
  await flush();
  for (let i = 0; i < 200; i++) assert.deepEqual((await rec.next(`amqp req ${i}`)).segments.map((s) => s.operation), ['publish']);
  assert.ok(seen.every((name) => name === `AMQP consume ${queue}`));
  const consumed = await rec.next(`AMQP consume ${queue}`);
  assert.equal(consumed.status, 0);
});

test("a consumed message continues its publisher's trace under the publish segment; the app's headers are kept, its options left alone", async () => {
  const q = `${queue}-trace`;
  await channel.assertQueue(q, { autoDelete: true });
  const got: Array<{ endpoint?: string; headers?: Record<string, unknown>; traceId?: string }> = [];
  const all = new Promise<void>((resolve) => {
    void channel.consume(q, (msg) => {
      if (msg === null) return;
      got.push({ endpoint: current()?.endpoint, headers: msg.properties.headers, traceId: current()?.traceId });
      channel.ack(msg);
      if (got.length === 20) resolve();
    });
  });
  const options = { headers: { 'x-app': 'kept' } };
  await Promise.all(Array.from({ length: 20 }, (_, i) => transaction(`amqp traced ${i}`, async () => channel.sendToQueue(q, Buffer.from(String(i)), options))));
  await all;
  await flush();
  assert.deepEqual(options, { headers: { 'x-app': 'kept' } }, 'the options object the app passed is not changed');
  // the last consumer's transaction ends after its callback has run
  const consumers = await until('20 consumer transactions', () => {
    const found = rec.all.filter((r) => r.endpoint === `AMQP consume ${q}`);
    return found.length >= 20 ? found : undefined;
  });
  assert.equal(consumers.length, 20);
  for (let i = 0; i < 20; i++) {
    const publisher = await rec.next(`amqp traced ${i}`);
    const publish = publisher.segments[0]!;
    const consumer = consumers.find((c) => c.traceId === publisher.traceId);
    assert.ok(consumer, `a consumer transaction in trace ${publisher.traceId}`);
    assert.equal(consumer.parentSpanId, publish.spanId);
    const message = got.find((g) => g.traceId === publisher.traceId)!;
    assert.equal(message.headers?.['x-app'], 'kept');
    assert.equal(message.headers?.traceparent, `00-${publisher.traceId}-${publish.spanId}-01`);
  }
});

test('the callback API: publish is a segment, a consumed message a transaction', async () => {
  const q = `${queue}-cb`;
  const conn = await new Promise<Parameters<Parameters<typeof amqpCallbacks.connect>[1]>[1]>((resolve, reject) => amqpCallbacks.connect('amqp://guest:guest@127.0.0.1:5672', (err, c) => (err ? reject(err) : resolve(c))));
  try {
    const ch = await new Promise<CallbackChannel>((resolve, reject) => conn.createChannel((err, c) => (err ? reject(err) : resolve(c))));
    await new Promise<void>((resolve, reject) => ch.assertQueue(q, { autoDelete: true }, (err) => (err ? reject(err) : resolve())));
    const consumedIn = new Promise<string | undefined>((resolve, reject) =>
      ch.consume(q, (msg) => {
        if (msg === null) return;
        ch.ack(msg);
        resolve(current()?.endpoint);
      }, {}, (err) => err && reject(err)),
    );
    await transaction('amqp callback publish', async () => ch.sendToQueue(q, Buffer.from('x')));
    assert.equal(await consumedIn, `AMQP consume ${q}`);
    await flush();
    assert.deepEqual((await rec.next('amqp callback publish')).segments.map((s) => `${s.kind} ${s.operation} ${s.target}`), [`queue publish 127.0.0.1:5672/${q}`]);
  } finally {
    await new Promise<void>((resolve) => conn.close(() => resolve()));
  }
});
