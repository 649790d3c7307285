/**
 * Callback-style code (`feed_puppy(callback=...)` in Amy Boyle's talk "Monitoring Asynchronous
 * Applications"): a library that calls back from its own context loses the request; `wrap` brings it
 * back, and the transaction waits for the callback.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { segment, start, wrap } from '../src/index.js';
import { burn, get, listen, median, recorder } from './helpers.js';

start({ service: 'callbacks' });
const records = recorder();
let app: string;

/** A "library" that feeds puppies from its own timer, started outside any request. */
const bowls: Array<{ due: number; callback: (grams: number) => void }> = [];
const feeder = setInterval(() => {
  const now = performance.now();
  for (const bowl of bowls.splice(0)) {
    if (bowl.due <= now) bowl.callback(100);
    else bowls.push(bowl);
  }
}, 1);
function feedPuppy(ms: number, callback: (grams: number) => void): void {
  bowls.push({ due: performance.now() + ms, callback });
}

const server = http.createServer((req, res) => {
  const wrapped = req.url === '/wrapped';
  const cuddle = (): void => {
    burn(20);
    res.end('Pup is full!\n');
  };
  // the talk's handler: feed, then cuddle when the callback comes
  feedPuppy(30, wrapped ? wrap(cuddle) : cuddle);
});

before(async () => {
  app = await listen(server);
  // warm up, so that compiling the handler is not counted in the figures below
  for (let i = 0; i < 3; i++) await Promise.all([get(`${app}/wrapped`), get(`${app}/unwrapped`)]);
  await records.settle(6);
});
after(() => {
  clearInterval(feeder);
  server.close();
});

test('a wrapped callback is attributed to the request: its cpu counts and the wait is in the duration', async () => {
  // median of five: a shared machine can stall any single run
  const runs = [];
  for (let i = 0; i < 5; i++) {
    await get(`${app}/wrapped`);
    runs.push(await records.next('GET /wrapped'));
  }
  const cpu = median(runs.map((r) => r.cpu));
  const duration = median(runs.map((r) => r.duration));
  assert.ok(Math.abs(cpu - 20) <= 2, `cpu ${runs.map((r) => r.cpu).join(', ')}`);
  assert.ok(duration >= 50 && duration < 70, `duration ${duration}`);
});

test('the same callback unwrapped runs outside the request: its cpu is not counted (what wrap fixes)', async () => {
  await get(`${app}/unwrapped`);
  const record = await records.next('GET /unwrapped');
  assert.ok(record.cpu < 5, `cpu ${record.cpu}`);
});

test('a transaction is not done while a wrapped callback is pending', async () => {
  const { transaction } = await import('../src/index.js');
  // three jobs, the median checked: a shared machine can stall any single one
  const errors: number[] = [];
  for (let round = 0; round < 3; round++) {
    let pendingCallback: (() => void) | undefined;
    // the truth of its cpu: the job's own code and the callback's, timed by hand
    let ran = 0;
    const t0 = performance.now();
    transaction('job with callback', () => {
      const start = performance.now();
      pendingCallback = wrap(() => {
        const from = performance.now();
        burn(5);
        ran += performance.now() - from;
      });
      ran += performance.now() - start;
    });
    // a job that finishes after it: finished transactions are delivered in the order they finished,
    // so once this one is, the job would have been too had it been taken for done
    transaction('job after it', () => {});
    await records.next('job after it');
    assert.equal(records.all.filter((r) => r.endpoint === 'job with callback').length, round, 'delivered before the callback ran');
    // the callback comes 40 ms after the job started
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 40 - performance.now())));
    const called = performance.now();
    pendingCallback!();
    const record = await records.next('job with callback');
    assert.ok(record.duration >= called - t0 && record.duration <= performance.now() - t0, `duration ${record.duration}, callback called ${(called - t0).toFixed(2)} ms after the start`);
    assert.equal(record.truncated, false);
    errors.push(record.cpu - ran);
  }
  assert.ok(Math.abs(median(errors)) <= 1, `cpu minus the time its code ran: ${errors.map((e) => e.toFixed(2)).join(', ')} ms`);
});

test('manual segments: sync and async, nested, with kinds; external counts the union per kind', async () => {
  const { transaction } = await import('../src/index.js');
  const seen: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const result = await work();
    seen[name] = performance.now() - t0;
    return result;
  };
  const run = async () => {
    await transaction('manual', async () => {
      await segment('db query', 'db', () =>
        timed('db', async () => {
          await new Promise((r) => setTimeout(r, 20));
          await segment('cache get', 'cache', () => timed('cache', () => new Promise((r) => setTimeout(r, 10))));
        }),
      );
      segment('parse', 'other', () => burn(3));
    });
    return { record: await records.next('manual'), db: seen.db!, cache: seen.cache! };
  };
  // three runs, the median compared: a shared machine can stall any single one
  const runs = [await run(), await run(), await run()];
  assert.ok(Math.abs(median(runs.map((r) => r.record.externalByKind.db! - r.db))) <= 1, `db ${runs.map((r) => `${r.record.externalByKind.db} timed ${r.db}`)}`);
  assert.ok(Math.abs(median(runs.map((r) => r.record.externalByKind.cache! - r.cache))) <= 1, `cache ${runs.map((r) => `${r.record.externalByKind.cache} timed ${r.cache}`)}`);
  const { record } = runs[2]!;
  assert.deepEqual(record.segments.map((s) => [s.name, s.kind, s.parentId]), [
    ['db query', 'db', null],
    ['cache get', 'cache', 1],
    ['parse', 'other', null],
  ]);
  // 20 + 10 ms of timers, one after the other; libuv counts a timer from its loop time, whole
  // milliseconds read at the start of the loop's turn, so each may fire up to 1 ms early by this clock
  assert.ok(record.externalByKind.db! >= 28, `db ${record.externalByKind.db}`);
  // the cache call is inside the db call: the union is db plus the parse, not db + cache + parse
  assert.ok(Math.abs(record.external - record.externalByKind.db! - record.externalByKind.other!) <= 0.5, `external ${record.external}`);
  assert.deepEqual(record.criticalPath, [1, 2, 3]);
});

test('errors: a thrown error in a transaction is recorded and still thrown to the caller', async () => {
  const { transaction } = await import('../src/index.js');
  await assert.rejects(
    transaction('failing job', async () => {
      throw new TypeError('no kibble');
    }),
    /no kibble/,
  );
  const record = await records.next('failing job');
  assert.equal(record.error, true);
  assert.equal(record.errorMessage, 'TypeError: no kibble');
});
