/**
 * Secrets are never shipped (docs/instrumentation.md, "What is shipped, field by field"). An
 * unmodified app under `--import loopscope/register` (fixtures/secrets-app.mjs), every trace of it
 * shipped (sample rate 1), is sent requests whose query strings, `Authorization` and `Cookie`
 * headers carry secrets; it calls a real server of this test's over node:http and fetch with
 * secrets in user-info and query strings, makes fetch fail on a URL with credentials, queries the
 * PostgreSQL on 127.0.0.1 through a connection string with a password and with a password literal,
 * authenticates to the Redis on 127.0.0.1 (AUTH, HELLO … AUTH, a password in the URL) and looks up
 * a session by the cookie's value, records errors whose messages name a connection string, a bearer
 * token and a password, runs a long task and loses a request's context in a module imported with a
 * secret in its URL. A stand-in collector (a real HTTP server) keeps every batch: no secret may be
 * anywhere in their bytes, and the traces must be there, under the names the agent gives them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { WireBatch, WireTrace } from '@loopscope/protocol';
import { deadline, firstLine } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

/** A distinctive secret per place one can hide in. */
const SECRET_NAMES = [
  'inboundQuery', 'inboundPassword', 'inboundBearer', 'cookieSid', 'pathToken',
  'httpUserInfo', 'httpQuery', 'fetchQuery', 'fetchBearer', 'fetchUserInfo',
  'pgPassword', 'sqlPassword', 'ioredisPassword', 'nodeRedisPassword', 'helloPassword', 'authPassword', 'nodeAuthPassword',
  'segmentErrorQuery', 'segmentErrorPassword', 'errorConnection', 'errorBearer', 'moduleQuery',
] as const;
type Secrets = Record<(typeof SECRET_NAMES)[number], string>;

/** A real HTTP server on 127.0.0.1 that keeps what it receives and answers it. */
async function listen(handler: (req: http.IncomingMessage, body: Buffer) => string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(handler(req, Buffer.concat(chunks))));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A request to the app, with headers; resolves with the status. */
function request(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject);
  });
}

test('no secret of the app reaches the collector, and its traces do, under safe names', async () => {
  const secrets = Object.fromEntries(SECRET_NAMES.map((name) => [name, `s3cr3t-${randomBytes(12).toString('hex')}`])) as Secrets;

  // what the collector stand-in received: each batch's bytes, decompressed
  const raw: string[] = [];
  const sink = await listen((_req, body) => {
    raw.push(gunzipSync(body).toString('utf8'));
    return '{"ok":true}';
  });
  // what the app's outbound calls brought to the upstream: the secrets were on the wire there
  const upstreamSaw: string[] = [];
  const upstream = await listen((req) => {
    upstreamSaw.push(`${req.url} ${req.headers.authorization ?? ''}`);
    return 'upstream';
  });

  const app = spawn(process.execPath, ['--import', 'loopscope/register', 'secrets-app.mjs'], {
    cwd: fixtures,
    env: {
      ...process.env,
      LOOPSCOPE_SERVICE: 'secrets-test',
      LOOPSCOPE_COLLECTOR: sink.url,
      LOOPSCOPE_FLUSH_MS: '200',
      LOOPSCOPE_SAMPLE_RATE: '1',
      SECRETS: JSON.stringify(secrets),
      UPSTREAM: upstream.url,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  app.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = once(app, 'exit');
  try {
    const base = `http://127.0.0.1:${/listening (\d+)/.exec(await firstLine(app, 'secrets-app.mjs'))?.[1]}`;

    const login = `${base}/login?token=${secrets.inboundQuery}&password=${secrets.inboundPassword}`;
    const headers = { authorization: `Bearer ${secrets.inboundBearer}`, cookie: `theme=dark; sid=${secrets.cookieSid}` };
    assert.equal(await request(login, headers), 200, stderr);
    assert.equal(await request(`${base}/reset?token=${secrets.inboundQuery}`, headers), 200);
    assert.equal(await request(`${base}/reset/${secrets.pathToken}`, headers), 200);
    assert.equal(await request(`${base}/fail?password=${secrets.inboundPassword}`, headers), 500);
    assert.equal(await request(`${base}/heavy?token=${secrets.inboundQuery}`, headers), 200);
    assert.equal(await request(`${base}/queued?token=${secrets.inboundQuery}`, headers), 200);
    // the long task is shipped once it has settled (a quarter of a second) and its profile is read
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.equal(await request(`${base}/exit`), 200);
    // the app ends by itself: what is left is shipped before it exits
    const [code] = (await deadline('the app to exit after GET /exit', exited)) as [number];
    assert.equal(code, 0, stderr);
  } finally {
    if (app.exitCode === null && app.signalCode === null) app.kill();
    await sink.close();
    await upstream.close();
  }

  // the secrets were really in flight: the upstream got them
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  assert.ok(upstreamSaw.includes(`/profile?api_key=${secrets.httpQuery} ${basic('user', secrets.httpUserInfo)}`), upstreamSaw.join('\n'));
  assert.ok(upstreamSaw.includes(`/data?access_token=${secrets.fetchQuery} Bearer ${secrets.fetchBearer}`), upstreamSaw.join('\n'));

  // none of them is anywhere in what the collector received (nor the user-info as the Basic header carries it)
  assert.ok(raw.length > 0, `no batch received; the app's stderr: ${stderr}`);
  const all = raw.join('\n');
  const leaks = Object.entries(secrets).flatMap(([name, secret]) =>
    [secret, Buffer.from(`user:${secret}`).toString('base64')]
      .filter((s) => all.includes(s))
      .map((s) => `${name} leaked: …${all.slice(Math.max(0, all.indexOf(s) - 200), all.indexOf(s) + s.length + 20)}…`),
  );
  assert.deepEqual(leaks, []);

  // and what was shipped is there, named from safe parts
  const batches = raw.map((text) => JSON.parse(text) as WireBatch);
  const endpoints = new Set(batches.flatMap((b) => b.intervals.map((i) => i.endpoint)));
  for (const e of ['GET /login', 'GET /reset', 'GET /reset/:token', 'GET /fail', 'GET /heavy', 'GET /queued']) assert.ok(endpoints.has(e), `${e} in ${[...endpoints].join(', ')}`);
  const traces = batches.flatMap((b) => b.traces);
  const trace = (endpoint: string): WireTrace => {
    const found = traces.find((t) => t.endpoint === endpoint);
    assert.ok(found !== undefined, `a trace of ${endpoint} in ${traces.map((t) => t.endpoint).join(', ')}`);
    return found;
  };
  const segments = (t: WireTrace) => t.segments.map((s) => [s.name, s.kind, s.operation ?? '', s.target ?? '', s.statement ?? '', s.error ?? ''].join(' | '));

  const loginSegments = segments(trace('GET /login'));
  const upstreamHost = new URL(upstream.url).host;
  for (const expected of [
    `GET ${upstreamHost}/profile | http |  |  |  | `,
    `GET ${upstreamHost}/data | http |  |  |  | `,
    `GET ${upstreamHost}/private | http |  |  |  | TypeError: Request cannot be constructed from a URL that includes credentials: http://[redacted]@${upstreamHost}/private`,
    'postgres SELECT | db | SELECT | 127.0.0.1:5432/test | SELECT $1::text AS sid | ',
    'postgres CREATE | db | CREATE | 127.0.0.1:5432/test | CREATE ROLE loopscope_secrets_test LOGIN PASSWORD ? | ',
    'redis AUTH | cache | AUTH | 127.0.0.1:6379/0 | AUTH | ',
    'redis GET | cache | GET | 127.0.0.1:6379/0 | GET sess:? | ',
    'redis HELLO | cache | HELLO | 127.0.0.1:6379/0 | HELLO | ',
  ]) assert.ok(loginSegments.includes(expected), `${expected}\nin\n${loginSegments.join('\n')}`);
  // ioredis's and node-redis's: a session looked up by the cookie's value each; ioredis connecting
  // (HELLO 3 AUTH with the URL's password) and HELLO 2 AUTH by hand; AUTH by hand on both
  const count = (prefix: string): number => loginSegments.filter((s) => s.startsWith(prefix)).length;
  assert.equal(count('redis GET | cache | GET | 127.0.0.1:6379/0 | GET sess:? |'), 2, loginSegments.join('\n'));
  assert.equal(count('redis HELLO | cache | HELLO | 127.0.0.1:6379/0 | HELLO |'), 2, loginSegments.join('\n'));
  assert.equal(count('redis AUTH | cache | AUTH | 127.0.0.1:6379/0 | AUTH |'), 2, loginSegments.join('\n'));

  const failed = trace('GET /fail');
  assert.equal(failed.errorMessage, 'Error: cannot reach postgres://[redacted]@db.internal:5432/prod with Authorization: [redacted]');
  assert.deepEqual(segments(failed), ['charge | http |  |  |  | Error: request to https://pay.example/v1/charge failed; password=[redacted]']);

  const loop = batches.flatMap((b) => (b.loop === undefined ? [] : [b.loop]));
  const task = loop.flatMap((l) => l.longTasks).find((t) => t.endpoint === 'GET /heavy');
  assert.ok(task !== undefined, `a long task of GET /heavy in ${JSON.stringify(loop.flatMap((l) => l.longTasks))}`);
  assert.equal(task.function, 'crunchWithSecretUrl');
  assert.match(task.location ?? '', /\/secrets-task\.mjs:\d+:\d+$/);
  const lost = batches.flatMap((b) => b.contextLoss ?? []).find((l) => l.function.includes('answerLater'));
  assert.match(lost?.site ?? '', /\/secrets-task\.mjs:\d+:\d+$/, JSON.stringify(batches.flatMap((b) => b.contextLoss ?? [])));
});
