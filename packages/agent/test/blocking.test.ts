/**
 * Blocking under bursts, for every client the agent instruments. Each endpoint awaits a 20 ms
 * timer, makes one call whose far side takes a known time, then burns 15 ms of CPU; bursts of
 * concurrent requests from a client in its own process queue every answer behind the other
 * requests' CPU (the talk's yellow boxes). The far sides, each in a process or server of its own:
 * an HTTP upstream that answers after 30 ms (node:http, fetch, and a raw socket timed by hand with
 * `segment()`), PostgreSQL's `pg_sleep(0.03)`, MariaDB's `SLEEP(0.03)`, Redis behind a proxy that
 * holds its answers for 30 ms (ioredis, node-redis), a NATS service that answers after 30 ms.
 *
 * The truth of each request is taken from clocks the agent does not read: the client's (when it
 * sent the request) and the handler's (when it ended the response). Its response is the time
 * between; what it did not spend on the timer, the call's known latency or its cpu was blocking.
 */
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { unionLength, type TransactionRecord } from '@loopscope/protocol';
import { current, segment, start } from '../src/index.js';
import { requireLib } from './datastore-helpers.js';
import { burn, deadline, firstLine, get, listen, median, recorder, startUpstream, until } from './helpers.js';

start({ service: 'blocking' });
const records = recorder();

const TIMER_MS = 20;
const LATENCY_MS = 30;
const CPU_MS = 15;
const BURST = 16;
const BURSTS = 3;

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** A child process that prints one line when it is ready (its port, or `ready`). */
async function child(file: string, args: string[] = []): Promise<{ line: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [fixture(file), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { line: await firstLine(proc, file), proc };
}

interface Sent {
  url: string;
  sentAt: number;
  ms: number;
  status: number;
}

/** The burst client: GETs the urls at once or one by one, over kept-alive connections of `via`. */
async function startBurstClient(): Promise<{ send(urls: string[], via: 'fetch' | 'http', sequential?: boolean): Promise<Sent[]>; close(): void }> {
  const proc = fork(fixture('burst-client.js'), { stdio: 'inherit' });
  await deadline('the burst client to start', once(proc, 'message'));
  return {
    async send(urls, via, sequential = false) {
      proc.send({ urls, via, sequential });
      const [out] = (await deadline(`the burst client's answers to ${urls.length} requests`, once(proc, 'message'))) as [Sent[]];
      return out;
    },
    close: () => proc.disconnect(),
  };
}

// ---- the far sides and the clients of the app ------------------------------------------------------

type Pg = { query(text: string): Promise<unknown>; end(): Promise<void> };
type Mysql = { query(text: string): Promise<unknown>; end(): Promise<void> };
type IoRedis = { blpop?: unknown; call(...args: string[]): Promise<unknown>; ping(): Promise<unknown>; disconnect(): void };
type NodeRedis = { connect(): Promise<unknown>; ping(): Promise<unknown>; destroy?(): void; quit(): Promise<unknown> };
type Nats = { request(subject: string, data?: Uint8Array, o?: object): Promise<unknown>; close(): Promise<void> };

let upstream: Awaited<ReturnType<typeof startUpstream>>;
let redisProxy: { line: string; proc: ChildProcess };
let responder: { line: string; proc: ChildProcess };
let pgPool: Pg;
let mysqlPool: Mysql;
const ioredis: IoRedis[] = [];
const nodeRedis: NodeRedis[] = [];
let nats: Nats;
let client: Awaited<ReturnType<typeof startBurstClient>>;
let app: string;

/**
 * A client the agent does not know, timed by hand: HTTP/1.1 written on raw kept-alive sockets (one
 * per request of a burst, opened before), the answer complete when its body has arrived.
 */
const rawSockets: net.Socket[] = [];
function rawGet(i: number, path: string): Promise<void> {
  const socket = rawSockets[i % rawSockets.length]!;
  return new Promise((resolve) => {
    let received = '';
    const onData = (chunk: Buffer): void => {
      received += chunk.toString();
      const head = received.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(received)?.[1] ?? NaN);
      if (head >= 0 && received.length >= head + 4 + length) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
}

/** One call of LATENCY_MS through each client; request `i` of a burst uses connection `i` where the client holds one per request. */
const calls: Record<string, (i: number) => Promise<unknown>> = {
  http: () => get(`${upstream.url}/delay/${LATENCY_MS}`, keepAlive),
  fetch: async () => (await fetch(`${upstream.url}/delay/${LATENCY_MS}`)).text(),
  segment: (i) => segment('upstream by hand', 'http', () => rawGet(i, `/delay/${LATENCY_MS}`)),
  pg: () => pgPool.query(`SELECT pg_sleep(${LATENCY_MS / 1000})`),
  mysql2: () => mysqlPool.query(`SELECT SLEEP(${LATENCY_MS / 1000})`),
  // Redis answers at once; the proxy in front of it holds every answer for LATENCY_MS. One
  // connection per request of a burst, so that no answer waits behind another on the wire
  ioredis: (i) => ioredis[i % ioredis.length]!.ping(),
  redis: (i) => nodeRedis[i % nodeRedis.length]!.ping(),
  nats: () => nats.request(`loopscope.delay.${LATENCY_MS}`, undefined, { timeout: 5000 }),
};
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1000 });

/** What each handler saw, by its request's query: its trace and when it ended the response (performance.now()). */
const ended = new Map<string, { traceId: string; at: number }>();

/** /hold waits for /fresh to start its call, then burns HOLD_MS of CPU (the last test). */
const HOLD_MS = 60;
let release: (() => void) | undefined;
const noKeepAlive = new http.Agent({ keepAlive: false });

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const name = url.pathname.slice(1);
  if (name === 'hold') {
    await new Promise<void>((resolve) => (release = resolve));
    burn(HOLD_MS);
    res.end('ok');
    return;
  }
  if (name === 'fresh') {
    // a new connection: its connect callback, which writes the request, comes while the call is in flight
    const answer = get(`${upstream.url}/delay/${LATENCY_MS}`, noKeepAlive);
    release?.();
    await answer;
    res.end('ok');
    ended.set(url.search, { traceId: current()!.traceId, at: performance.now() });
    return;
  }
  const call = calls[name];
  if (call === undefined) {
    res.statusCode = 404;
    res.end();
    return;
  }
  await new Promise((resolve) => setTimeout(resolve, TIMER_MS));
  await call(Number(url.searchParams.get('i') ?? 0));
  burn(CPU_MS);
  res.end('ok');
  ended.set(url.search, { traceId: current()!.traceId, at: performance.now() });
});

before(async () => {
  [upstream, redisProxy, responder, client] = await Promise.all([startUpstream(), child('delay-proxy.js', ['127.0.0.1', '6379', String(LATENCY_MS)]), child('nats-responder.js'), startBurstClient()]);
  const pg = requireLib('pg') as { Pool: new (o: object) => Pg };
  pgPool = new pg.Pool({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', max: BURST });
  mysqlPool = (requireLib('mysql2/promise') as { createPool(o: object): Mysql }).createPool({ host: '127.0.0.1', user: 'root', database: 'test', connectionLimit: BURST });
  const Redis = requireLib('ioredis') as new (o: object) => IoRedis;
  const { createClient } = requireLib('redis') as { createClient(o: object): NodeRedis };
  const proxyPort = Number(redisProxy.line);
  for (let i = 0; i < BURST; i++) {
    ioredis.push(new Redis({ host: '127.0.0.1', port: proxyPort }));
    const c = createClient({ socket: { host: '127.0.0.1', port: proxyPort } });
    await c.connect();
    nodeRedis.push(c);
  }
  const upstreamPort = Number(new URL(upstream.url).port);
  for (let i = 0; i < BURST; i++) {
    const socket = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true });
    await once(socket, 'connect');
    rawSockets.push(socket);
  }
  nats = await (requireLib('nats') as { connect(o: object): Promise<Nats> }).connect({ servers: '127.0.0.1:4222' });
  app = await listen(server);
});

after(async () => {
  // the clients first, while their far sides are up (a client whose server is gone reconnects forever)
  records.stop();
  for (const r of ioredis) r.disconnect();
  // each client's close, bounded: one that never settles (CI saw the file hang here once, on Node
  // 26, with every socket already closed) is named, and the rest still stop
  const closing: Array<[string, Promise<unknown>]> = [...nodeRedis.map((r, i): [string, Promise<unknown>] => [`redis ${i} quit`, r.quit()]), ['pg pool end', pgPool.end()], ['mysql2 pool end', mysqlPool.end()], ['nats close', nats.close()]];
  const pending = new Set(closing.map(([name]) => name));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(closing.map(([name, p]) => p.finally(() => pending.delete(name)))),
    new Promise((resolve) => (timer = setTimeout(resolve, 10_000))),
  ]);
  clearTimeout(timer);
  if (pending.size > 0) console.error(`blocking.test: still closing after 10 s: ${[...pending].join(', ')}`);
  keepAlive.destroy();
  for (const socket of rawSockets) socket.destroy();
  client.close();
  server.closeAllConnections();
  server.close();
  upstream.close();
  redisProxy.proc.kill();
  responder.proc.kill();
});

interface Seen {
  record: TransactionRecord;
  /** response as the client's and the handler's clocks give it: from sending to ending the response */
  response: number;
}

/** Sends `urls` (a burst, or one by one), and pairs each with its record and the truth. */
async function run(urls: string[], via: 'fetch' | 'http', sequential = false): Promise<Seen[]> {
  const sent = await client.send(urls, via, sequential);
  assert.ok(sent.every((s) => s.status === 200), `statuses ${sent.map((s) => s.status).join(',')}`);
  // each request's record, found by the trace its handler ran in, once every one has been delivered
  const missing = (): string[] => {
    const delivered = new Set(records.all.map((r) => r.traceId));
    return sent.filter((s) => !delivered.has(ended.get(new URL(s.url).search)?.traceId ?? '')).map((s) => s.url);
  };
  await until(`the records of ${sent.length} requests`, () => (missing().length === 0 ? true : undefined), undefined, () => `none for ${missing().join(', ')}`);
  const byTrace = new Map(records.all.map((r) => [r.traceId, r]));
  const out: Seen[] = [];
  for (const s of sent) {
    const handler = ended.get(new URL(s.url).search)!;
    out.push({ record: byTrace.get(handler.traceId)!, response: handler.at - (s.sentAt - performance.timeOrigin) });
  }
  ended.clear();
  return out;
}

/** Numbers the requests: each has a query of its own. */
let requests = 0;
const fmt = (values: number[]): string => values.map((v) => v.toFixed(1)).join(' ');

/*
 * Tolerances. When an answer arrives while the loop is busy, it is dated from the loop's previous
 * poll (docs/metrics.md): external can be short, and blocking long, by up to one loop iteration,
 * here one request's 15 ms of CPU; a request itself is dated the same way, so its truth (from the
 * client's clock) and its blocking can differ by as much either way. So each request is within
 * CPU_MS + 2 ms, and the median within
 * 5 ms (answers of a burst arrive a few ms apart; the far side's own work, the loopback and the
 * timer's rounding add under 2 ms). External may exceed the latency by up to LATE_MS for a whole
 * burst: in CI on Node 22 and 24, on 2 shared cores, every answer of one burst came 4.6-6.3 ms after
 * the upstream's 30 ms with blocking short by as much (the far side answering 16 requests at once
 * late, not the agent moving time: external + blocking matched the clocks), and on a slower evening
 * 7.5-10 ms (redis, nats, fetch). LATE_MS still fails an answer dated a whole iteration (CPU_MS) late. And for every request, cpu + external + blocking never add up
 * to more than the response (0.5 ms of rounding).
 */
const ITERATION = CPU_MS + 2;
const LATE_MS = 12;
/*
 * This machine is shared (two cores, other jobs): now and then it stalls a far side, or the app's
 * own process, for longer than an iteration, and some answers of a burst come late for reasons no
 * agent can see (seen in CI: redis's proxy answering a whole burst 35-38 ms late; nats, 3 answers
 * of a burst 21 ms late; the app's process running a whole pg burst 24-27 ms late, its requests
 * waiting in its socket while it was not scheduled). A burst with a request outside the bounds is
 * therefore run again, at most MAX_RERUNS times a test, each rerun said in the test's diagnostics
 * with its figures; the bounds then hold for every request of the bursts kept. An agent that erred
 * would err in the reruns too.
 */
const MAX_RERUNS = 2;
/** Why a burst is outside the bounds (the first request that is), or undefined. */
function outside(burst: Seen[]): string | undefined {
  for (const s of burst) {
    const late = s.record.external - LATENCY_MS;
    const short = s.record.blocking - (s.response - TIMER_MS - LATENCY_MS - s.record.cpu);
    if (late < -ITERATION || late > LATE_MS) return `external ${late.toFixed(1)} ms off the latency`;
    if (Math.abs(short) > ITERATION) return `blocking ${short.toFixed(1)} ms off the truth`;
  }
  return undefined;
}
for (const name of Object.keys(calls)) {
  test(`${name}: under bursts of ${BURST}, an answer that waits behind other requests' CPU is blocking, not external`, async (t) => {
    const urls = (): string[] => Array.from({ length: BURST }, (_, i) => `${app}/${name}?i=${i}&r=${++requests}`);
    await run(urls(), 'fetch'); // warm-up: connections, JIT
    const seen: Seen[] = [];
    let reruns = 0;
    for (let b = 0; b < BURSTS; b++) {
      const burst = await run(urls(), b % 2 === 0 ? 'fetch' : 'http');
      const why = outside(burst);
      if (why !== undefined && reruns < MAX_RERUNS) {
        reruns++;
        t.diagnostic(`burst ${b} rerun: ${why} (external - ${LATENCY_MS}: ${fmt(burst.map((s) => s.record.external - LATENCY_MS))}; blocking: ${fmt(burst.map((s) => s.record.blocking))})`);
        b--;
        continue;
      }
      seen.push(...burst);
    }
    const external = seen.map((s) => s.record.external - LATENCY_MS);
    const blocking = seen.map((s) => s.record.blocking - (s.response - TIMER_MS - LATENCY_MS - s.record.cpu));
    const report = `external - ${LATENCY_MS}: ${fmt(external)}\nblocking - truth: ${fmt(blocking)}\nblocking: ${fmt(seen.map((s) => s.record.blocking))}`;
    const truth = seen.map((s) => s.response - TIMER_MS - LATENCY_MS - s.record.cpu);
    t.diagnostic(`median external ${median(seen.map((s) => s.record.external)).toFixed(1)} (truth ${LATENCY_MS}, error ${median(external).toFixed(1)}), blocking ${median(seen.map((s) => s.record.blocking)).toFixed(1)} (truth ${median(truth).toFixed(1)}, error ${median(blocking).toFixed(1)}, range ${Math.min(...blocking).toFixed(1)}..${Math.max(...blocking).toFixed(1)})`);
    assert.ok(median(seen.map((s) => s.record.blocking)) > 5 * CPU_MS, `the scenario must queue the answers: ${report}`);
    assert.ok(Math.abs(median(external)) <= 5 && external.every((e) => e >= -ITERATION && e <= LATE_MS), `external: ${report}`);
    assert.ok(Math.abs(median(blocking)) <= 5 && blocking.every((e) => Math.abs(e) <= ITERATION), `blocking: ${report}`);
    for (const { record: r } of seen) assert.ok(r.cpu + r.external + r.blocking <= r.response + 0.5, `cpu ${r.cpu} + external ${r.external} + blocking ${r.blocking} > response ${r.response}`);
  });
}

/*
 * One request at a time: the client sends the next as soon as it has the answer to the one before,
 * so the loop is idle when it comes, or finishing what it does after a response. That is little,
 * but a garbage collection can fall there, or the previous request's last callbacks (its response's
 * 'finish', on a slow machine a few ms of them), and a request that arrives then really waits: the
 * truth of each request's blocking is the GC pauses and the other requests' own slices that
 * overlapped its waits: within 1.5 ms in the median and 5 ms for 9 requests in 10 (the loopback,
 * the client's own wake-up and the loop's few callbacks of no request: the agent's own work as a
 * transaction ends, this test's recorder, now and then the test runner's timers; on this machine
 * at a slow hour, 3-4 ms for 2 or 3 requests in 20).
 * node:http's Agent and autocannon send it on the connection that was just answered; undici's pool
 * often picks another of its connections, and then the wait can be dated from the loop's previous
 * poll (docs/metrics.md, "When was a callback ready?"): not tested here.
 */
test('a quiet loop blocks nobody: one request at a time over kept-alive connections of node:http and autocannon', async () => {
  const pauses: Array<[number, number]> = [];
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push([e.startTime, e.startTime + e.duration]);
  });
  gc.observe({ entryTypes: ['gc'] });
  const urls = Array.from({ length: 20 }, () => `${app}/fetch?r=${++requests}`);
  const seen: Record<string, TransactionRecord[]> = { http: (await run(urls, 'http', true)).map((s) => s.record) };
  // autocannon, one connection: each request is sent as the answer to the one before arrives
  const from = records.all.length;
  const cannon = spawn(process.execPath, [requireLib.resolve('autocannon/autocannon.js'), '-c', '1', '-a', '20', '--no-progress', `${app}/fetch`], { stdio: 'ignore' });
  await deadline('autocannon to send its 20 requests and exit', once(cannon, 'exit'));
  const fetches = (): TransactionRecord[] => records.all.slice(from).filter((r) => r.endpoint === 'GET /fetch');
  seen.autocannon = await until("the records of autocannon's 20 requests", () => (fetches().length >= 20 ? fetches() : undefined), undefined, () => `${fetches().length} so far`);
  assert.equal(seen.autocannon.length, 20);
  gc.disconnect();
  // every request's own slices, on this process's clock: what the loop ran for whom
  const at = (r: TransactionRecord, [a, b]: [number, number]): [number, number] => [r.start - performance.timeOrigin + a, r.start - performance.timeOrigin + b];
  const everyone = Object.values(seen).flat();
  for (const [via, list] of Object.entries(seen)) {
    const errors = list.map((r) => {
      const held = [...pauses, ...everyone.filter((o) => o !== r).flatMap((o) => (o.slices ?? []).map((sl) => at(o, sl)))];
      const waited = (r.waits ?? []).map((w) => at(r, w));
      // the union of what held the loop, within each wait
      const inHolders = waited.reduce((sum, [ws, we]) => sum + unionLength(held.map(([a, b]): [number, number] => [Math.max(a, ws), Math.min(b, we)]).filter(([a, b]) => b > a)), 0);
      return r.blocking - inHolders;
    });
    const sorted = [...errors].sort((a, b) => a - b);
    assert.ok(median(errors) <= 1.5 && sorted[Math.floor(0.9 * sorted.length) - 1]! <= 5, `${via}: blocking beyond the GC pauses and other requests' slices it met: ${fmt(errors)} ms`);
  }
});

/*
 * A callback of the request that waits behind another request while its own call is in flight: /fresh
 * starts a call on a new connection, and /hold, released by it, burns HOLD_MS before the connect
 * callback that writes the request can run. The request was blocked HOLD_MS (its call could not go
 * out), then waited LATENCY_MS on the upstream: that wait inside the call is blocking, not external
 * too. Tolerances: blocking within 5 ms of HOLD_MS (the loopback and the agent's own callbacks),
 * external within 5 ms of LATENCY_MS (the connection's set-up and the loopback), and external and
 * blocking never add up to more than the response (0.5 ms of rounding). cpu may add to them: the
 * connect callback's own slice runs while the call is in flight, and is cpu and external both.
 */
test('a wait while the call is in flight is blocking, and not external as well', async () => {
  const seen: TransactionRecord[] = [];
  for (let round = 0; round < 3; round++) {
    release = undefined;
    const hold = get(`${app}/hold`, keepAlive);
    await until('/hold to arrive', () => (release !== undefined ? true : undefined));
    const query = `?r=${++requests}`;
    await Promise.all([hold, get(`${app}/fresh${query}`, keepAlive)]);
    const { traceId } = ended.get(query)!;
    seen.push(await until(`the record of /fresh${query}`, () => records.all.find((r) => r.traceId === traceId)));
  }
  const report = seen.map((r) => `response ${r.response} cpu ${r.cpu} external ${r.external} blocking ${r.blocking}`).join('\n');
  for (const r of seen) assert.ok(r.external + r.blocking <= r.response + 0.5, report);
  assert.ok(Math.abs(median(seen.map((r) => r.blocking)) - HOLD_MS) <= 5, report);
  assert.ok(Math.abs(median(seen.map((r) => r.external)) - LATENCY_MS) <= 5, report);
});
