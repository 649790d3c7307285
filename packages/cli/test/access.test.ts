/**
 * A collector on a network, as a user sets it up (docs/collector.md#access): `loopscope up` with
 * tokens from files and TLS from a certificate this test makes (openssl, a CA of its own), an app
 * under the agent shipping over HTTPS with the CA given through NODE_EXTRA_CA_CERTS, and the
 * mistakes a user makes with the flags.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { get, runCommand, startApp, startCommand, stopApp, tempDir, until, type App, type Command } from './helpers.js';

const dir = tempDir();
const file = (name: string, content: string): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const openssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });

/** `GET path` over HTTPS, trusting the test's CA alone, with a bearer token when given. */
function getTls(base: string, path: string, ca: Buffer, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(`${base}${path}`, { ca, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const INGEST = 'ingest-5d1f9a0b';
const READ = 'read-0e77c4d2';
let ca: Buffer;
const paths = { cert: '', key: '', ingest: '', read: '' };

before(() => {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=loopscope test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  file('san.ext', 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
  ca = execFileSync('cat', [join(dir, 'ca.pem')]);
  Object.assign(paths, { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), ingest: file('ingest-token', `${INGEST}\n`), read: file('read-token', READ) });
});

describe('a collector with tokens from files and TLS', () => {
  let collector: Command;
  let base: string;
  const apps: App[] = [];
  before(async () => {
    collector = await startCommand(['up', '--port', '0', '--data', join(dir, 'data'), '--token-file', paths.ingest, '--tls-cert', paths.cert, '--tls-key', paths.key], { LOOPSCOPE_READ_TOKEN_FILE: paths.read });
    const m = /^loopscope collector listening on (https:\/\/127\.0\.0\.1:\d+) \(dashboard \1\/, storage SQLite/.exec(collector.line);
    assert.ok(m, collector.line);
    base = m[1]!;
  });
  after(async () => {
    for (const app of apps) await stopApp(app);
    await collector.stop();
  });

  it('says nothing about tokens on stderr when they come from files', () => {
    assert.equal(collector.stderr(), '');
  });

  it('serves HTTPS only, with the read token from LOOPSCOPE_READ_TOKEN_FILE', async () => {
    assert.equal((await getTls(base, '/api/health', ca)).status, 200);
    assert.equal((await getTls(base, '/api/services', ca)).status, 401);
    assert.equal((await getTls(base, '/api/services', ca, READ)).status, 200);
    await assert.rejects(get(`${base.replace('https:', 'http:')}/api/health`), 'plain HTTP gets no answer');
    await assert.rejects(getTls(base, '/api/health', Buffer.from('')), /unable to verify the first certificate/);
  });

  it('takes an agent that trusts its CA through NODE_EXTRA_CA_CERTS and reads its token from LOOPSCOPE_TOKEN_FILE', async () => {
    const app = await startApp('app.mjs', base, { LOOPSCOPE_SERVICE: 'tls-app', LOOPSCOPE_TOKEN_FILE: paths.ingest, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'), LOOPSCOPE_FLUSH_MS: '200' });
    apps.push(app);
    for (let i = 0; i < 5; i++) assert.equal((await get(`${app.url}/wait?ms=5`)).status, 200);
    const rows = await until('the app\'s requests stored', async () => {
      const { body } = await getTls(base, '/api/endpoints?service=tls-app', ca, READ);
      const found = (JSON.parse(body) as Array<{ endpoint: string; count: number }>).find((r) => r.endpoint === 'GET /wait');
      return found?.count === 5 ? found : undefined;
    });
    assert.equal(rows.count, 5);
  });

  it('an agent without the CA says why it cannot ship, once, and its app answers as before', async () => {
    const app = await startApp('app.mjs', base, { LOOPSCOPE_SERVICE: 'untrusting-app', LOOPSCOPE_TOKEN_FILE: paths.ingest, LOOPSCOPE_FLUSH_MS: '200', NODE_EXTRA_CA_CERTS: '' }, 'pipe');
    apps.push(app);
    for (let i = 0; i < 5; i++) assert.deepEqual(await get(`${app.url}/wait?ms=5`), { status: 200, body: 'waited' });
    await until('the agent says why', async () => (app.stderr().includes('cannot reach') ? true : undefined));
    await stopApp(app);
    const told = app.stderr().split('\n').filter((l) => l.includes('loopscope: cannot reach the collector'));
    assert.equal(told.length, 1, app.stderr());
    assert.match(told[0]!, /loopscope: cannot reach the collector at https:\/\/127\.0\.0\.1:\d+: unable to verify the first certificate.* \(give the certificate of the CA that signed the collector's in NODE_EXTRA_CA_CERTS\); batches wait/);
    const { body } = await getTls(base, '/api/endpoints?service=untrusting-app', ca, READ);
    assert.deepEqual(JSON.parse(body), []);
  });
});

describe('mistakes with tokens and certificates', () => {
  const up = (...args: string[]): ReturnType<typeof runCommand> => runCommand(['up', '--port', '0', '--data', join(dir, 'mistakes'), ...args]);
  it('refuses each with what to do instead', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['--token', 'a', '--token-file', paths.ingest], 2, /--token and --token-file exclude each other/],
      [['--read-token-file', file('empty', '')], 2, /--read-token-file: .*empty is empty/],
      [['--token-file', join(dir, 'nowhere')], 2, /--token-file: cannot read .*nowhere \(ENOENT\)/],
      [['--token-file', paths.ingest, '--read-token', INGEST], 2, /the read token must differ from the ingest token/],
      [['--tls-cert', paths.cert], 2, /--tls-cert and --tls-key go together/],
      [['--tls-cert', paths.cert, '--tls-key', join(dir, 'ca.key')], 1, /the TLS certificate and key cannot serve HTTPS: .*key values mismatch/],
      [['--tls-cert', paths.ingest, '--tls-key', paths.key], 1, /the TLS certificate and key cannot serve HTTPS: .*(no start line|PEM)/],
    ];
    for (const [args, code, message] of cases) {
      const { code: got, stderr } = await up(...args);
      assert.equal(got, code, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message, args.join(' '));
    }
  });

  it('says that a token on the command line shows in ps', async () => {
    const collector = await startCommand(['up', '--port', '0', '--data', join(dir, 'ps'), '--read-token', READ]);
    await collector.stop();
    assert.match(collector.stderr(), /^loopscope: --read-token shows the token to every user of this machine \(ps\); --read-token-file FILE does not$/m);
  });
});
