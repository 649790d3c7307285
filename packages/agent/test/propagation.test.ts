/**
 * W3C Trace Context across processes: a request goes client → A → B → upstream, A and B each an
 * unmodified app under `--import loopscope/register`, over node:http and over fetch. B's
 * transaction continues A's trace with A's calling segment as its parent; a caller's trace is
 * continued by A, its tracestate passed on to the end; a bad header starts a new trace.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@loopscope/protocol';
import { listen, spawnApp, type SpawnedApp } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = '00f067aa0ba902b7';

/** The trace headers each request reached the upstream with. */
const seen: Array<{ traceparent?: string; tracestate?: string }> = [];
const upstream = http.createServer((req, res) => {
  seen.push({ traceparent: req.headers.traceparent as string | undefined, tracestate: req.headers.tracestate as string | undefined });
  res.end('from upstream');
});
let a: SpawnedApp;
let b: SpawnedApp;

before(async () => {
  const url = await listen(upstream);
  const env = { LOOPSCOPE_COLLECTOR: 'off' };
  b = await spawnApp(['--import', 'loopscope/register'], 'hop-app.mjs', fixtures, { ...env, LOOPSCOPE_SERVICE: 'b', NEXT_URL: url });
  a = await spawnApp(['--import', 'loopscope/register'], 'hop-app.mjs', fixtures, { ...env, LOOPSCOPE_SERVICE: 'a', NEXT_URL: b.url });
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  upstream.close();
});

function call(path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`${a.url}${path}`, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c)).on('end', () => resolve(`${res.statusCode} ${body}`));
      })
      .on('error', reject);
  });
}

let count = 0;
/** One request through the chain: what A and B recorded of it, and what reached the upstream. */
async function hop(path: string, headers: Record<string, string> = {}) {
  assert.equal(await call(path, headers), '200 from upstream');
  count++;
  const [ra, rb] = await Promise.all([a.records(count), b.records(count)]);
  return { a: ra[count - 1]!, b: rb[count - 1]!, upstream: seen[count - 1]! };
}

const callSegment = (r: TransactionRecord) => {
  assert.equal(r.segments.length, 1, JSON.stringify(r.segments));
  return r.segments[0]!;
};

for (const via of ['http', 'fetch']) {
  test(`over ${via}: each hop continues the trace, its parent the segment that called it`, async () => {
    const { a: ra, b: rb, upstream: up } = await hop(`/via/${via}`);
    // A is the root: a trace of its own, no parent
    assert.match(ra.traceId, /^[0-9a-f]{32}$/);
    assert.match(ra.spanId!, /^[0-9a-f]{16}$/);
    assert.equal(ra.parentSpanId, null);
    const aCall = callSegment(ra);
    assert.match(aCall.spanId!, /^[0-9a-f]{16}$/);
    assert.notEqual(aCall.spanId, ra.spanId);
    // B continues it under A's call
    assert.equal(rb.traceId, ra.traceId);
    assert.equal(rb.parentSpanId, aCall.spanId);
    assert.notEqual(rb.spanId, aCall.spanId);
    // and B's own call carries B's segment on
    assert.equal(up.traceparent, `00-${ra.traceId}-${callSegment(rb).spanId}-01`);
    // with loopscope's own member: when B made the call, on B's clock (what the callee's agent dates its start by at the earliest)
    assert.match(up.tracestate ?? '', /^loopscope=t\d+\.\d{3}$/);
    const sentAt = Number(up.tracestate!.slice('loopscope=t'.length));
    assert.ok(Math.abs(sentAt - (rb.start + callSegment(rb).start)) < 0.01, `${sentAt} is the start of B's call`);
  });

  test(`over ${via}: a caller's trace is continued to the end, its flags and tracestate passed on`, async () => {
    const { a: ra, b: rb, upstream: up } = await hop(`/via/${via}`, { traceparent: `00-${TRACE}-${CALLER}-00`, tracestate: 'vendor=opaque,other=1' });
    assert.equal(ra.traceId, TRACE);
    assert.equal(ra.parentSpanId, CALLER);
    assert.equal(rb.traceId, TRACE);
    assert.equal(rb.parentSpanId, callSegment(ra).spanId);
    assert.equal(up.traceparent, `00-${TRACE}-${callSegment(rb).spanId}-00`);
    assert.match(up.tracestate ?? '', /^loopscope=t[\d.]+,vendor=opaque,other=1$/);
  });
}

test('a malformed or hostile traceparent starts a new trace and changes nothing else', async () => {
  for (const traceparent of [`00-${TRACE.toUpperCase()}-${CALLER}-01`, `ff-${TRACE}-${CALLER}-01`, `00-${TRACE}-${CALLER}`, 'x'.repeat(10_000)]) {
    const { a: ra, b: rb, upstream: up } = await hop('/via/http', { traceparent, tracestate: 'vendor=opaque' });
    assert.notEqual(ra.traceId, TRACE);
    assert.equal(ra.parentSpanId, null);
    assert.equal(ra.status, 200);
    assert.equal(ra.error, false);
    // the tracestate of a parent that was not taken is not passed on either
    assert.match(up.tracestate ?? '', /^loopscope=t[\d.]+$/);
    assert.equal(rb.traceId, ra.traceId);
  }
  assert.doesNotMatch(a.stderr() + b.stderr(), /warn|error/i);
});
