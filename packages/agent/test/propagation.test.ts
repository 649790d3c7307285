/**
 * W3C Trace Context across processes: a request goes client → A → B → upstream, A and B each an
 * unmodified app under `--import loopscope/register`, over node:http and fetch, and over https
 * (https servers, https.get, https.request and fetch to https, with a certificate made for the
 * test and trusted through NODE_EXTRA_CA_CERTS and `ca`). B's transaction continues A's trace with
 * A's calling segment as its parent; a caller's trace is continued by A, its tracestate passed on
 * to the end; a bad header starts a new trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@loopscope/protocol';
import { spawnApp, type SpawnedApp } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = '00f067aa0ba902b7';

const certDir = mkdtempSync(join(tmpdir(), 'loopscope-tls-'));

/** A self-signed certificate for 127.0.0.1, made for this run: its key and certificate files. */
function makeCertificate(): { key: string; cert: string } {
  const dir = certDir;
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl could not make a test certificate: ${made.error?.message ?? made.stderr}`);
  return { key, cert };
}

/**
 * client → A → B → upstream, all over http or all over https. The upstream (in this process)
 * notes the trace headers each request reached it with.
 */
interface Chain {
  a: SpawnedApp;
  b: SpawnedApp;
  /** the trace headers each request reached the upstream with */
  seen: Array<{ traceparent?: string; tracestate?: string }>;
  upstream: http.Server;
  /** A's base URL */
  url: string;
  /** options of the test's own requests (the `ca` that trusts the test certificate) */
  client: https.RequestOptions;
  count: number;
}

async function startChain(tls: { key: string; cert: string } | undefined): Promise<Chain> {
  const seen: Chain['seen'] = [];
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push({ traceparent: req.headers.traceparent as string | undefined, tracestate: req.headers.tracestate as string | undefined });
    res.end('from upstream');
  };
  const upstream = tls === undefined ? http.createServer(onRequest) : https.createServer({ key: readFileSync(tls.key), cert: readFileSync(tls.cert) }, onRequest);
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const scheme = tls === undefined ? 'http' : 'https';
  const url = (port: number | string) => `${scheme}://127.0.0.1:${port}`;
  // the apps serve https with the test certificate and trust it as a CA of their own: nothing else changes
  const env = { LOOPSCOPE_COLLECTOR: 'off', ...(tls === undefined ? {} : { TLS_KEY: tls.key, TLS_CERT: tls.cert, NODE_EXTRA_CA_CERTS: tls.cert }) };
  const port = (app: SpawnedApp) => new URL(app.url).port;
  const b = await spawnApp(['--import', 'loopscope/register'], 'hop-app.mjs', fixtures, { ...env, LOOPSCOPE_SERVICE: 'b', NEXT_URL: url((upstream.address() as AddressInfo).port) });
  const a = await spawnApp(['--import', 'loopscope/register'], 'hop-app.mjs', fixtures, { ...env, LOOPSCOPE_SERVICE: 'a', NEXT_URL: url(port(b)) });
  return { a, b, seen, upstream, url: url(port(a)), client: tls === undefined ? {} : { ca: readFileSync(tls.cert) }, count: 0 };
}

let plain: Chain;
let secure: Chain;

before(async () => {
  [plain, secure] = await Promise.all([startChain(undefined), startChain(makeCertificate())]);
});
after(async () => {
  for (const chain of [plain, secure]) {
    await Promise.all([chain?.a.stop(), chain?.b.stop()]);
    chain?.upstream.close();
  }
  rmSync(certDir, { recursive: true, force: true });
});

function call(chain: Chain, path: string, headers: Record<string, string>): Promise<string> {
  const client = chain.url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    client
      .get(`${chain.url}${path}`, { ...chain.client, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c)).on('end', () => resolve(`${res.statusCode} ${body}`));
      })
      .on('error', reject);
  });
}

/** One request through the chain: what A and B recorded of it, and what reached the upstream. */
async function hop(path: string, headers: Record<string, string> = {}, chain = plain) {
  assert.equal(await call(chain, path, headers), '200 from upstream');
  const count = ++chain.count;
  const [ra, rb] = await Promise.all([chain.a.records(count), chain.b.records(count)]);
  return { a: ra[count - 1]!, b: rb[count - 1]!, upstream: chain.seen[count - 1]! };
}

const callSegment = (r: TransactionRecord) => {
  assert.equal(r.segments.length, 1, JSON.stringify(r.segments));
  return r.segments[0]!;
};

for (const [via, path, secured] of [['http', '/via/http', false], ['fetch', '/via/fetch', false], ['https.get', '/via/https-get', true], ['https.request', '/via/https-request', true], ['fetch to https', '/via/fetch', true]] as const) {
  const chain = () => (secured ? secure : plain);
  test(`over ${via}: each hop continues the trace, its parent the segment that called it`, async () => {
    const { a: ra, b: rb, upstream: up } = await hop(path, {}, chain());
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
    const { a: ra, b: rb, upstream: up } = await hop(path, { traceparent: `00-${TRACE}-${CALLER}-00`, tracestate: 'vendor=opaque,other=1' }, chain());
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
  for (const chain of [plain, secure]) assert.doesNotMatch(chain.a.stderr() + chain.b.stderr(), /warn|error/i);
});
