/**
 * Context follows the request: 500 concurrent, interleaved requests of mixed kinds, each calling an
 * upstream that echoes a per-request id; every transaction must see only its own segments.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { current, start, transaction, wrap } from '../src/index.js';
import type { TransactionRecord } from '@loopscope/protocol';
import { get, listen, recorder, startUpstream, until } from './helpers.js';

start({ service: 'context' });
const records = recorder();
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let app: string;

/** A callback-style "library" with its own queue, served by a timer created outside any request. */
const queue: Array<() => void> = [];
const worker = setInterval(() => queue.splice(0).forEach((job) => job()), 2);

const echoVia = {
  http: (url: string) => get(url),
  fetch: async (url: string) => (await fetch(url)).text(),
};

/** Letters only, so the id survives endpoint normalization: 0 → 'aaaa', 1 → 'aaab', ... */
const idOf = (n: number): string => Array.from({ length: 4 }, (_, i) => String.fromCharCode(97 + (Math.floor(n / 26 ** (3 - i)) % 26))).join('');

const server = http.createServer(async (req, res) => {
  const id = req.url!.split('/')[2]!;
  const kind = id.charCodeAt(3) % 5;
  const url = (n: number) => `${upstream.url}/echo/${id}?delay=${(id.charCodeAt(2) + n) % 15}`;
  const check = (body: string) => assert.equal(JSON.parse(body).id, id);
  if (kind === 0) check(await echoVia.http(url(0)));
  else if (kind === 1) {
    const [a, b] = await Promise.all([echoVia.fetch(url(0)), echoVia.http(url(1))]);
    check(a);
    check(b);
  } else if (kind === 2) {
    await sleep(id.charCodeAt(1) % 7);
    check(await echoVia.fetch(url(0)));
  } else if (kind === 3) {
    await new Promise((r) => process.nextTick(r));
    await new Promise((r) => setImmediate(r));
    const emitter = new EventEmitter();
    const done = new Promise<string>((resolve) => emitter.once('go', () => resolve(echoVia.http(url(0)))));
    setTimeout(() => emitter.emit('go'), 3);
    check(await done);
  } else {
    // callback style: the queue's timer runs the job outside the request; wrap brings it back
    await new Promise<void>((resolve) =>
      queue.push(
        wrap(() => {
          echoVia.http(url(0)).then(check).then(resolve);
        }),
      ),
    );
  }
  res.end(id);
});

before(async () => {
  upstream = await startUpstream();
  app = await listen(server);
});

after(() => {
  clearInterval(worker);
  server.close();
  upstream.close();
});

test('500 concurrent interleaved requests each see only their own segments', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 500 });
  const ids = Array.from({ length: 500 }, (_, i) => idOf(i * 7919));
  const bodies = await Promise.all(ids.map((id) => get(`${app}/mix/${id}`, agent)));
  assert.deepEqual(bodies, ids);
  const mixed = (): TransactionRecord[] => records.all.filter((r) => r.endpoint.startsWith('GET /mix/'));
  const mine = await until('the records of the 500 requests', () => (mixed().length >= 500 ? mixed() : undefined), 10_000, () => `${mixed().length} so far`, 20);
  assert.equal(mine.length, 500);
  for (const record of mine) {
    const id = record.endpoint.slice('GET /mix/'.length);
    const expected = id.charCodeAt(3) % 5 === 1 ? 2 : 1;
    assert.equal(record.segments.length, expected, `${record.endpoint}: ${record.segments.map((s) => s.name).join(', ')}`);
    for (const s of record.segments) assert.match(s.name, new RegExp(`/echo/${id}$`), `${record.endpoint} has ${s.name}`);
    assert.equal(record.truncated, false);
  }
  agent.destroy();
});

test('a timer re-armed after it fired takes the context of the code that re-arms it', async () => {
  const seen: Array<string | undefined> = [];
  let timer: NodeJS.Timeout | undefined;
  transaction('timer created here', () => {
    timer = setTimeout(() => seen.push(current()?.endpoint), 1);
  });
  const fired = (times: number): Promise<true> => until(`the timer to fire ${times} time(s)`, () => (seen.length >= times ? true : undefined), undefined, () => `it fired in ${JSON.stringify(seen)}`, 2);
  await fired(1);
  // the same Timeout object, given a new async id: outside any transaction, then inside another
  timer!.refresh();
  await fired(2);
  transaction('re-armed here', () => timer!.refresh());
  await fired(3);
  assert.deepEqual(seen, ['timer created here', undefined, 're-armed here']);
});
