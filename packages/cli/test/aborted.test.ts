/**
 * Requests that end without an answer, end to end: an Express app under `--import loopscope/register`
 * (fixtures/aborted-app.mjs) → a real collector → the query API, with real clients that go away:
 * one that disconnects while its request is queued behind other requests' CPU before routing, one
 * that gives up while the handler awaits an upstream (`curl -m 0.03`), and a keep-alive client
 * that closes its sockets with requests in flight, and one that leaves while the body streams (the
 * app's listener of `close` works 15 ms more on it: its last work). Each is recorded as aborted, named by its route
 * (or `GET (unmatched)` when it never reached one), with its response ending when the app stopped
 * working on it (the app notes that moment), blocking within its duration; the API counts them.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startCollector, type Collector, type EndpointSummary } from '@loopscope/collector';
import type { TimeseriesResult, TraceSummary, TransactionRecord } from '@loopscope/protocol';
import { api, get, startApp, stopApp, tempDir, until, type App } from './helpers.js';

const SERVICE = 'aborting';
/** Clock rounding and the end of the slice the app's last line ran in (ms). */
const SLACK = 5;

let upstream: http.Server;
let collector: Collector;
let app: App;

before(async () => {
  upstream = http.createServer((req, res) => {
    const ms = Number(new URL(req.url!, 'http://x').searchParams.get('ms') ?? 0);
    setTimeout(() => res.end('up'), ms);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  collector = await startCollector({ port: 0, dataDir: tempDir() });
  app = await startApp('aborted-app.mjs', collector.url, { LOOPSCOPE_SERVICE: SERVICE, UPSTREAM: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
});
after(async () => {
  await stopApp(app);
  await collector.close();
  upstream.close();
});

/** GET that the client abandons (destroys its socket) after `abortMs`, or never; resolves with the status or the error's code. */
function request(path: string, abortMs?: number, agent?: http.Agent): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get(`${app.url}${path}`, agent === undefined ? { agent: false } : { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    if (abortMs !== undefined) setTimeout(() => req.destroy(), abortMs);
  });
}

/** The app's records after the first `skip`, of the endpoints `names`, once there are `count` of them. */
async function recordsOf(skip: number, names: string[], count: number): Promise<TransactionRecord[]> {
  const found = (): TransactionRecord[] => app.records().slice(skip).filter((r) => names.includes(r.endpoint));
  return until(`${count} records of ${names.join(', ')} from the app`, async () => (found().length >= count ? found() : undefined));
}

const stops = (): Promise<Record<string, number>> => api<Record<string, number>>(app.url, '/stops');

/** What a user checks of an aborted request's record: the flag, its response ending when the app stopped, blocking within duration. */
function assertAborted(r: TransactionRecord, stoppedAt: number, what: string): void {
  assert.equal(r.aborted, true, `${what}: aborted`);
  assert.equal(r.error, false, `${what}: a client going away is not an error of the app`);
  const responseEnd = r.start + r.response;
  assert.ok(responseEnd <= stoppedAt + SLACK, `${what}: the response ends ${(responseEnd - stoppedAt).toFixed(1)} ms after the app stopped working on it`);
  assert.ok(responseEnd >= stoppedAt - SLACK, `${what}: the response ends ${(stoppedAt - responseEnd).toFixed(1)} ms before the app stopped working on it`);
  assert.ok(r.blocking <= r.duration, `${what}: blocking ${r.blocking} ms within its duration ${r.duration} ms`);
  assert.ok(r.response <= r.duration, `${what}: response ${r.response} ms within its duration ${r.duration} ms`);
  for (const s of r.segments) assert.ok(s.end <= r.response + 0.001, `${what}: its call ended at ${s.end} ms, within the response (${r.response} ms)`);
}

test('a client that disconnects while its request is queued before routing: aborted, named by its route, or (unmatched) if it never got one', async () => {
  // five at once: each burns 80 ms in the auth middleware, so the last ones wait 250 ms and more;
  // two clients give up after 30 ms, one of them on a URL whose middleware drops a request whose client is gone
  const results = await Promise.all([
    request('/queued/q1'),
    request('/queued/q2'),
    request('/queued/q3'),
    request('/queued/q4?drop=1', 30),
    request('/queued/q5', 30),
  ]);
  assert.deepEqual(results.slice(0, 3), [200, 200, 200]);
  const records = await recordsOf(0, ['GET /queued/:id', 'GET (unmatched)'], 5);
  assert.equal(records.length, 5, JSON.stringify(records.map((r) => [r.endpoint, r.status, r.aborted])));
  const stopped = await stops();
  const answered = records.filter((r) => r.aborted !== true);
  assert.deepEqual(answered.map((r) => [r.endpoint, r.status]), [['GET /queued/:id', 200], ['GET /queued/:id', 200], ['GET /queued/:id', 200]]);

  // dropped by the middleware: no route, no answer
  const dropped = records.find((r) => r.endpoint === 'GET (unmatched)');
  assert.ok(dropped !== undefined, `the dropped request is GET (unmatched): ${JSON.stringify(records.map((r) => [r.endpoint, r.status, r.aborted]))}`);
  assert.equal(dropped.status, 0, 'the app never answered: no status');
  assertAborted(dropped, stopped['/queued/q4?drop=1']!, 'dropped');
  assert.equal(dropped.response, dropped.duration, 'never answered: its response ends with its last work');
  assert.ok(dropped.blocking >= 100, `it waited behind the others' CPU (blocking ${dropped.blocking} ms)`);

  // routed after its client left: the app answered 200 into a closed connection
  const late = records.find((r) => r.aborted === true && r.endpoint === 'GET /queued/:id');
  assert.ok(late !== undefined, 'the request routed after its client left is GET /queued/:id');
  assert.equal(late.status, 200, 'what the app answered, though it never reached the client');
  assertAborted(late, stopped['/queued/q5']!, 'routed late');
});

test('a client that aborts while the handler awaits an upstream: aborted, its response ending at the app\'s answer', async () => {
  const before = app.records().length;
  assert.equal(await request('/slow/m1', 30), 'ECONNRESET');
  const [r] = await recordsOf(before, ['GET /slow/:id'], 1);
  assert.equal(r!.endpoint, 'GET /slow/:id');
  assert.equal(r!.status, 200);
  assertAborted(r!, (await stops())['/slow/m1']!, 'mid-request');
  assert.ok(r!.response >= 150, `the app worked on it for the upstream's 150 ms (response ${r!.response} ms)`);
});

test('a keep-alive client that closes its sockets with requests in flight: each aborted, none stretched to the close', async () => {
  const before = app.records().length;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 3 });
  // a first answered request on each socket, so that the aborted ones travel on kept-alive connections
  assert.deepEqual(await Promise.all(['k0a', 'k0b', 'k0c'].map((id) => request(`/queued/${id}`, undefined, agent))), [200, 200, 200]);
  const inFlight = ['k1', 'k2', 'k3'].map((id) => request(`/slow/${id}`, undefined, agent));
  setTimeout(() => agent.destroy(), 50);
  assert.deepEqual(await Promise.all(inFlight), ['ECONNRESET', 'ECONNRESET', 'ECONNRESET']);
  const records = await recordsOf(before, ['GET /slow/:id'], 3);
  assert.equal(records.length, 3);
  const stopped = await stops();
  // which record is which: by the stop each one's response end is nearest to
  for (const r of records) {
    const nearest = ['/slow/k1', '/slow/k2', '/slow/k3'].map((p) => stopped[p]!).sort((a, b) => Math.abs(a - (r.start + r.response)) - Math.abs(b - (r.start + r.response)))[0]!;
    assert.equal(r.status, 200);
    assertAborted(r, nearest, 'keep-alive');
  }
});

test('the collector\'s API counts them per endpoint and per second, and flags their traces', async () => {
  const endpoint = (rows: EndpointSummary[], name: string): EndpointSummary | undefined => rows.find((r) => r.endpoint === name);
  const rows = await until('the aborted requests at the collector', async () => {
    const list = await api<EndpointSummary[]>(collector.url, `/api/endpoints?service=${SERVICE}`);
    return endpoint(list, 'GET /slow/:id')?.count === 4 && endpoint(list, 'GET /queued/:id')?.count === 7 ? list : undefined;
  });
  assert.deepEqual(
    ['GET /queued/:id', 'GET (unmatched)', 'GET /slow/:id'].map((name) => {
      const row = endpoint(rows, name);
      return [name, row?.count, row?.errors, row?.aborted];
    }),
    [
      ['GET /queued/:id', 7, 0, 1],
      ['GET (unmatched)', 1, 0, 1],
      ['GET /slow/:id', 4, 0, 4],
    ],
  );
  const series = await api<TimeseriesResult>(collector.url, `/api/timeseries?service=${SERVICE}&metric=aborted&step=1000`);
  assert.equal(series.points.reduce((sum, [, v]) => sum + (v ?? 0), 0), 6, 'six aborted requests per second summed over the seconds');
  // every aborted request's trace is shipped, flagged
  const traces = await api<TraceSummary[]>(collector.url, `/api/traces?service=${SERVICE}&limit=100`);
  const flagged = traces.filter((t) => t.aborted);
  assert.deepEqual(flagged.map((t) => t.endpoint).sort(), ['GET (unmatched)', 'GET /queued/:id', 'GET /slow/:id', 'GET /slow/:id', 'GET /slow/:id', 'GET /slow/:id']);
  const full = await api<TransactionRecord>(collector.url, `/api/traces/${flagged[0]!.traceId}`);
  assert.equal(full.aborted, true);
  const { status } = await get(`${app.url}/stops`);
  assert.equal(status, 200, 'the app is still up');
});

test('a client that goes away while the body streams: aborted, with the status its headers carried, ending when the app stopped', async () => {
  const before = app.records().length;
  const got = await new Promise<{ status: number; chunks: number }>((resolve, reject) => {
    const req = http.get(`${app.url}/stream/s1`, { agent: false }, (res) => {
      let chunks = 0;
      res.on('data', () => {
        // gone after the third chunk: the app has answered 200, its body is on its way
        if (++chunks === 3) {
          req.destroy();
          resolve({ status: res.statusCode!, chunks });
        }
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
  });
  assert.deepEqual(got, { status: 200, chunks: 3 });
  const [r] = await recordsOf(before, ['GET /stream/:id'], 1);
  assert.equal(r!.status, 200, 'its headers said 200: the app answered');
  assertAborted(r!, (await stops())['/stream/s1']!, 'streaming');
});
