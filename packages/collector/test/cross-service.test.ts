/**
 * The critical path across services against the ground truth of fixtures/truth-chain.mjs: gateway
 * → orders → (inventory, PostgreSQL), each an app under the agent shipping to this collector, with
 * known CPU, known delays, and a known contention (two requests at once: the gateway serves one
 * first, so the other waits there, and reaches orders while orders still burns the first one's
 * 10 ms: it waits there too). Each service answers with what it saw of itself (when its code first
 * ran, how long its own code ran, when it made its call), the truth the agent's figures are held to,
 * on the median of five runs (a shared machine can stall one run, never most), within the
 * tolerances of the single-service ground-truth tests where the truth is exact: blocking within
 * 1.5 ms + 10 %. Where the agent rightly counts more than the handler can time (Node's and pg's
 * work for the request: parsing it and each answer it waited for, writing its response; 1-6 ms on
 * this 2-core machine under the agent, with three services and PostgreSQL on it), the truth is a
 * floor and the bound above is loose: cpu at least the handler's own time (less 0.5 ms) and at most
 * 6 ms + 5 % more; each service's own steps on the path at least their CPU by construction (less
 * 1 ms) and at most 5 ms more; what is left of a call outside its callee under 5 ms.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { get, startTestCollector, type TestCollector } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
let collector: TestCollector;
const apps: ChildProcess[] = [];
let gateway = '';
let orders = '';

async function startRole(role: string, next?: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'loopscope/register', 'truth-chain.mjs'], {
    cwd: fixtures,
    // every trace is kept: the test reads each request's parts
    env: { ...process.env, ROLE: role, LOOPSCOPE_COLLECTOR: collector.url, LOOPSCOPE_SERVICE: role, LOOPSCOPE_SAMPLE_RATE: '1', ...(next !== undefined ? { NEXT_URL: next } : {}) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  apps.push(child);
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return /listening (\S+)/.exec(chunk.toString())![1]!;
}

before(async () => {
  collector = await startTestCollector();
  const inventory = await startRole('inventory');
  orders = await startRole('orders', inventory);
  gateway = await startRole('gateway', orders);
  // warm up: connections, the JIT, PostgreSQL's pool
  for (let i = 0; i < 5; i++) await (await fetch(`${gateway}/checkout`)).text();
});
after(async () => {
  for (const child of apps) child.kill('SIGTERM');
  await Promise.all(apps.map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
  await collector.close();
});

interface Part {
  service: string;
  spanId: string;
  parentSpanId: string | null;
  response: number;
  cpu: number;
  external: number;
  blocking: number;
}
interface Step {
  service: string;
  kind: string;
  name: string;
  start: number;
  end: number;
}
interface Trace {
  traceId: string;
  parts: Part[];
  path: Step[];
}
/** What a service of the chain saw of itself (fixtures/truth-chain.mjs). */
interface Seen {
  role: string;
  start: number;
  own: number;
  called?: number;
  next?: Seen;
}

/** The trace of trace id `traceId`, once it has all three parts. */
async function traceOf(traceId: string): Promise<Trace> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { status, body } = await get(`${collector.url}/api/traces/${traceId}`);
    if (status === 200 && (body as Trace).parts.length === 3) return body as Trace;
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${JSON.stringify(body).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Run {
  trace: Trace;
  gateway: Seen;
  orders: Seen;
  inventory: Seen;
}

let n = 0;
/** Sends `concurrency` requests to the gateway at once, each with a trace id of the test's. */
async function checkout(concurrency: number): Promise<Run[]> {
  const ids = Array.from({ length: concurrency }, () => (++n).toString(16).padStart(32, 'c'));
  const seen = await Promise.all(ids.map(async (id) => (await (await fetch(`${gateway}/checkout`, { headers: { traceparent: `00-${id}-${'d'.repeat(16)}-01` } })).json()) as Seen));
  return Promise.all(ids.map(async (id, i) => ({ trace: await traceOf(id), gateway: seen[i]!, orders: seen[i]!.next!, inventory: seen[i]!.next!.next! })));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** The median of `values` is within `tolerance` of `truth` (ms; either way, or below and above it). */
function within(what: string, values: number[], truth: number, tolerance: number | { below: number; above: number }): void {
  const m = median(values);
  const { below, above } = typeof tolerance === 'number' ? { below: tolerance, above: tolerance } : tolerance;
  assert.ok(m >= truth - below && m <= truth + above, `${what}: median ${m.toFixed(2)} ms, truth ${truth.toFixed(2)} -${below.toFixed(2)}/+${above.toFixed(2)} (values ${values.map((v) => v.toFixed(1)).join(', ')})`);
}
/** Each run's value against its own truth: the median of the errors is within `tolerance` (ms). */
function errorsWithin(what: string, values: number[], truths: number[], tolerance: number): void {
  const errors = values.map((v, i) => v - truths[i]!);
  const m = median(errors);
  assert.ok(Math.abs(m) <= tolerance, `${what}: median error ${m.toFixed(2)} ms, outside ±${tolerance.toFixed(2)} (values ${values.map((v) => v.toFixed(1)).join(', ')}; truths ${truths.map((v) => v.toFixed(1)).join(', ')})`);
}

/** cpu holds the handler's own code and Node's work for the request around it (see the top). */
const cpuTolerance = (ownMs: number): { below: number; above: number } => ({ below: 0.5, above: 6 + 0.05 * ownMs });
const STEP = { below: 1, above: 5 };
const byService = (t: Trace, service: string): Part => t.parts.find((p) => p.service === service)!;
/** The path's steps of the services' own time, in order. */
const own = (t: Trace): Step[] => t.path.filter((s) => s.kind === 'transaction');

test('one request: the path descends gateway → orders → inventory, and each hop has its own cpu, external and blocking', async () => {
  const all: Run[] = [];
  for (let i = 0; i < 5; i++) all.push(...(await checkout(1)));
  // a shared machine can stall one run, never most: in a run where a loop was busy when an answer
  // came, the answer is dated from that loop's last poll and the path cuts the callee's steps there
  const shaped = (t: Trace): boolean => own(t).map((s) => s.service).join() === 'gateway,orders,inventory,orders,gateway';
  const runs = all.filter((r) => shaped(r.trace));
  assert.ok(runs.length >= 4, `the path has the chain's shape in ${runs.length} of 5 runs`);
  for (const { trace: t } of all) {
    // the test's traceparent is the gateway's caller: its part is the root, the others under it
    assert.deepEqual(t.parts.map((p) => p.service), ['gateway', 'orders', 'inventory']);
    // inventory's 42 ms decide orders' wait, not PostgreSQL's 20; between the services' own steps,
    // what is left of each call (the network on one host, and the wait before the callee's server
    // saw the request) is short, and may round to nothing
    const t0 = t.path[0]!.start;
    const described = (): string =>
      `path ${t.path.map((s) => `${s.service} ${s.kind} ${(s.start - t0).toFixed(2)}-${(s.end - t0).toFixed(2)}`).join(' | ')}; parts ${JSON.stringify(t.parts.map((p) => [p.service, (p as unknown as { start: number }).start - t0, p.response]))}`;
    // gateway, orders, inventory, then back (the last two may be cut, see above)
    assert.deepEqual(own(t).map((s) => s.service).slice(0, 3), ['gateway', 'orders', 'inventory'], described());
    for (const s of t.path.filter((s) => s.kind !== 'transaction')) {
      assert.equal(s.kind, 'http', JSON.stringify(s));
      assert.ok(s.end - s.start < 5, `${s.service} ${s.name}: ${s.end - s.start} ms outside the callee`);
    }
  }
  const steps = (i: number): number[] => runs.map((r) => own(r.trace)[i]!.end - own(r.trace)[i]!.start);
  within('gateway before its call', steps(0), 5, STEP);
  within('orders before its calls', steps(1), 10, STEP);
  // a 40 ms timer fires up to a millisecond late (libuv's clock), then 2 ms of CPU
  within('inventory', steps(2), 42, { below: 0.5, above: 3 });
  within('orders after its calls', steps(3), 2, STEP);
  within('gateway after its call', steps(4), 3, STEP);
  for (const role of ['gateway', 'orders', 'inventory'] as const) {
    const ownMs = median(runs.map((r) => r[role].own));
    within(`${role} cpu`, runs.map((r) => byService(r.trace, role).cpu), ownMs, cpuTolerance(ownMs));
    within(`${role} blocking`, runs.map((r) => byService(r.trace, role).blocking), 0, 1.5);
  }
  // orders waits on inventory (42 ms) and PostgreSQL (20 ms) at once: the union of the two, that is
  // inventory's part (its timer, up to 3 ms late, as above) and what is left of the call outside it
  // (the network on one host and inventory's queue: under 5 ms, as above; CI saw medians of 3.5 ms
  // on a loaded run)
  within('orders external', runs.map((r) => byService(r.trace, 'orders').external), 42, { below: 0.5, above: 5 });
  // (the gateway's external against orders' response is not checked: the first is dated when the
  // gateway's loop saw the answer, the second when Node reported the kernel took it, each a bound
  // that can err by an iteration, in opposite directions)
});

test('two requests at once: the second waits in the gateway and in orders, for the first one\'s code, and nowhere else', async () => {
  const firsts: Run[] = [];
  const seconds: Run[] = [];
  for (let i = 0; i < 5; i++) {
    const pair = await checkout(2);
    // the one whose code ran second in the gateway
    pair.sort((a, b) => a.gateway.start - b.gateway.start);
    firsts.push(pair[0]!);
    seconds.push(pair[1]!);
  }
  const blocking = (runs: Run[], service: string): number[] => runs.map((r) => byService(r.trace, service).blocking);
  // both reached the gateway at once: the second waited until its code ran
  const gatewayWaits = seconds.map((r, i) => r.gateway.start - firsts[i]!.gateway.start);
  const gatewayWait = median(gatewayWaits);
  errorsWithin('gateway blocking, second', blocking(seconds, 'gateway'), gatewayWaits, 1.5 + 0.1 * gatewayWait);
  // its request left the gateway when the gateway called, and reached orders while orders ran the
  // first one's 10 ms: it waited until its code ran (the gateway's agent said when it called)
  const ordersWaits = seconds.map((r) => r.orders.start - r.gateway.called!);
  const ordersWait = median(ordersWaits);
  assert.ok(ordersWait > 2, `the second request reached orders while orders was busy (${ordersWait} ms)`);
  errorsWithin('orders blocking, second', blocking(seconds, 'orders'), ordersWaits, 1.5 + 0.1 * ordersWait);
  for (const service of ['gateway', 'orders', 'inventory']) within(`${service} blocking, first`, blocking(firsts, service), 0, 1.5);
  within('inventory blocking, second', blocking(seconds, 'inventory'), 0, 1.5);
  for (const role of ['gateway', 'orders'] as const) {
    const ownMs = median(seconds.map((r) => r[role].own));
    within(`${role} cpu, second`, seconds.map((r) => byService(r.trace, role).cpu), ownMs, cpuTolerance(ownMs));
  }
  // on the path, the gateway's own time before its call is its wait and its code
  within('gateway before its call, second', seconds.map((r) => own(r.trace)[0]!.end - own(r.trace)[0]!.start), gatewayWait + 5, { below: STEP.below, above: STEP.above + 0.1 * gatewayWait });
});
