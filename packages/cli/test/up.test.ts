/**
 * `loopscope up` as a user runs it: the compiled command in a process of its own, a real SQLite
 * file in a temp directory, batches over HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { METRICS, addValue, newSketch, toWire, type WireBatch } from '@loopscope/protocol';
import Database from 'better-sqlite3';
import { BIN, runCommand, startCommand } from './helpers.js';

const HOUR = 3_600_000;

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loopscope-up-'));
  dirs.push(dir);
  return dir;
}

interface Up {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

/** Starts `loopscope up` and waits for its one line on stdout. */
async function up(args: string[]): Promise<Up> {
  const { child, line, stderr } = await startCommand(['up', ...args]);
  const m = /^loopscope collector listening on (http:\/\/127\.0\.0\.1:(\d+)) \(dashboard \1\/, storage SQLite, data in (.+)\)\n$/.exec(line);
  assert.ok(m, `the ready line: ${JSON.stringify(line)}`);
  assert.notEqual(m[2], '0', 'the real port, not 0');
  return { child, url: m[1]!, stderr };
}

const run = runCommand;

let batchNo = 0;
/** A batch of `count` transactions of one endpoint, one second, one interval. */
function batchOf(endpoint: string, count: number, start: number): WireBatch {
  const sketch = newSketch();
  for (let i = 0; i < count; i++) addValue(sketch, 1 + i);
  const wire = toWire(sketch);
  return {
    v: 1,
    batchId: `kill-${process.pid}-${++batchNo}`,
    service: 'crash',
    instance: 'i-1',
    agent: { name: 'test', version: '0' },
    sentAt: start + 1000,
    intervals: [{ start, ms: 1000, endpoint, count, errors: 0, ...Object.fromEntries(METRICS.map((m) => [m, wire])) } as WireBatch['intervals'][number]],
    traces: [],
    dropped: { batches: 0, transactions: 0, traces: 0 },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** Resolves the status, or rejects when the connection dies (the collector was killed). */
function send(url: string, batch: WireBatch): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(batch);
    const req = http.request(`${url}/v1/ingest`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('kill -9 in the middle of ingest loses no acknowledged batch, at any resolution', async () => {
  const data = tempDir();
  const first = await up(['--port', '0', '--data', data]);
  const WORKERS = 8;
  const KILL_AFTER = 200; // acknowledged batches
  const acked = new Array<number>(WORKERS).fill(0); // transactions in batches answered 200
  const unknown = new Array<number>(WORKERS).fill(0); // in batches whose answer was lost with the process
  let ackedBatches = 0;
  let killed = false;
  const start = Math.floor(Date.now() / 1000) * 1000 - 10_000;

  const workers = Array.from({ length: WORKERS }, async (_, w) => {
    for (let i = 0; !killed && i < 1000; i++) {
      const count = 1 + ((w + i) % 5);
      try {
        const status = await send(first.url, batchOf(`GET /w${w}`, count, start + (i % 10) * 1000));
        assert.equal(status, 200);
        acked[w]! += count;
        if (++ackedBatches === KILL_AFTER) {
          first.child.kill('SIGKILL');
          killed = true;
        }
      } catch (err) {
        if (!killed) throw err;
        unknown[w]! += count;
      }
    }
  });
  await Promise.all(workers);
  await once(first.child, 'exit');
  agent.destroy();
  assert.ok(ackedBatches >= KILL_AFTER);
  // the minute and hour rows of the newest buckets were merged in memory, not yet all written: the
  // file says so, and the next start rebuilds them from the per-second rows
  const file = new Database(path.join(data, 'loopscope.db'), { readonly: true });
  const behind = file.prepare('SELECT COUNT(*) FROM aggregates_behind').pluck().get();
  file.close();
  assert.equal(behind, 1, 'the killed collector held merged minute and hour rows it had not written');

  const second = await up(['--port', '0', '--data', data]);
  try {
    /** each endpoint's count as stored against what was acknowledged and sent */
    const check = (what: string, counts: Map<string, number>): void => {
      for (let w = 0; w < WORKERS; w++) {
        const stored = counts.get(`GET /w${w}`) ?? 0;
        assert.ok(stored >= acked[w]!, `${what}, GET /w${w}: ${stored} stored, ${acked[w]} acknowledged`);
        // a batch whose answer was lost may or may not have been committed, but never half of it
        assert.ok(stored <= acked[w]! + unknown[w]!, `${what}, GET /w${w}: ${stored} stored, at most ${acked[w]} + ${unknown[w]} sent`);
      }
    };
    const endpoints = async (from: number, to: number): Promise<Map<string, number>> => {
      const rows = (await (await fetch(`${second.url}/api/endpoints?service=crash&from=${from}&to=${to}`)).json()) as Array<{ endpoint: string; count: number }>;
      return new Map(rows.map((r) => [r.endpoint, r.count]));
    };
    const throughput = async (step: number): Promise<Map<string, number>> => {
      const counts = new Map<string, number>();
      for (let w = 0; w < WORKERS; w++) {
        const url = `${second.url}/api/timeseries?service=crash&endpoint=${encodeURIComponent(`GET /w${w}`)}&metric=throughput&step=${step}&from=${start - 3 * HOUR}&to=${Date.now() + 1000}`;
        const { points } = (await (await fetch(url)).json()) as { points: Array<[number, number | null]> };
        counts.set(`GET /w${w}`, Math.round(points.reduce((n, [, v]) => n + (v ?? 0) * (step / 1000), 0)));
      }
      return counts;
    };
    check('per-second rows', await endpoints(start - 60_000, Date.now() + 1000));
    check('minute rows', await throughput(60_000));
    check('hour rows', await throughput(HOUR));
    // two whole hours around the data: answered from hour rows alone
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    check('hour rows, /api/endpoints', await endpoints(hour - 3 * HOUR, hour + HOUR));
    // and the restarted collector takes new batches
    assert.equal(await send(second.url, batchOf('GET /after', 3, start)), 200);
  } finally {
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');
  }
  // the rebuilt rows were written: the minute and hour rows hold what the per-second rows hold, and
  // the clean exit cleared the marker
  const after = new Database(path.join(data, 'loopscope.db'), { readonly: true });
  try {
    assert.equal(after.prepare('SELECT COUNT(*) FROM aggregates_behind').pluck().get(), 0, 'a clean exit clears the marker');
    const sums = (res: string): unknown => after.prepare(`SELECT endpoint, SUM(count) AS n FROM agg_${res} WHERE service = 'crash' GROUP BY endpoint ORDER BY endpoint`).all();
    assert.deepEqual(sums('minute'), sums('second'), 'the minute rows as written');
    assert.deepEqual(sums('hour'), sums('second'), 'the hour rows as written');
  } finally {
    after.close();
  }
});

test('SIGTERM: a clean exit (code 0) that closes the database (its write-ahead log is checkpointed away)', async () => {
  const data = tempDir();
  const collector = await up(['--port', '0', '--data', data]);
  assert.equal(await send(collector.url, batchOf('GET /t', 2, Date.now() - 1000)), 200);
  assert.ok(existsSync(path.join(data, 'loopscope.db-wal')));
  collector.child.kill('SIGTERM');
  const [code] = (await once(collector.child, 'exit')) as [number];
  assert.equal(code, 0, collector.stderr());
  assert.equal(existsSync(path.join(data, 'loopscope.db-wal')), false);
});

test('a port in use: exit 1 and a message that says what to do, from up and demo alike', async () => {
  const blocker = http.createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const port = (blocker.address() as { port: number }).port;
  try {
    for (const command of ['up', 'demo']) {
      const { code, stdout, stderr } = await run([command, '--port', String(port), '--data', tempDir()]);
      assert.equal(code, 1, command);
      assert.equal(stdout, '');
      assert.equal(stderr.trim(), `loopscope ${command}: port ${port} on 127.0.0.1 is already in use: stop what listens there, or choose another port with --port`);
    }
  } finally {
    blocker.close();
  }
});

test('--data that is a file, or under one: exit 1 and a message that says it must be a directory', async () => {
  const file = path.join(tempDir(), 'data.db');
  writeFileSync(file, '');
  for (const [command, data] of [['up', file], ['demo', file], ['up', path.join(file, 'sub')]] as const) {
    const { code, stdout, stderr } = await run([command, '--port', '0', '--data', data]);
    assert.equal(code, 1, `${command} --data ${data}`);
    assert.equal(stdout, '');
    assert.equal(stderr.trim(), `loopscope ${command}: --data must be a directory (it is created if missing), and ${data} is a file or lies under one`);
  }
});

test('--storage on a ClickHouse that is not there: exit 1 and a message that names it and says what to do', async () => {
  // a port that was free a moment ago: nothing listens there
  const server = http.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  const { code, stdout, stderr } = await run(['up', '--port', '0', '--storage', `clickhouse://127.0.0.1:${port}/loopscope`]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.equal(stderr.trim(), `loopscope up: ClickHouse at http://127.0.0.1:${port} is not reachable (ECONNREFUSED): start it, or correct --storage`);
});

test('on a Node.js it does not support (the machine\'s own 20), the command says which it needs instead of crashing', async (t) => {
  const node20 = '/usr/bin/node';
  const version = existsSync(node20) ? execFileSync(node20, ['--version'], { encoding: 'utf8' }).trim() : '';
  if (!version.startsWith('v20.')) return t.skip(`no Node.js 20 at ${node20} (${version || 'none'})`);
  for (const args of [['up', '--port', '0', '--data', tempDir()], ['demo'], ['--help']]) {
    const { code, stdout, stderr } = await run(args, node20, BIN);
    assert.equal(code, 1, args.join(' '));
    assert.equal(stdout, '');
    assert.equal(stderr.trim(), `loopscope: Node.js ${version} is not supported; use one of ^22.22.0 || ^24.13.0 || >=26 (22.22.0 or later on 22, 24.13.0 or later on 24, or 26 and later)`);
  }
});

test('bad flags and unknown commands: exit 2, the problem and the usage on stderr', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['up', '--port', 'http'], /--port must be a port number from 0 to 65535/],
    [['up', '--port', '70000'], /--port must be a port number/],
    [['up', '--retention-seconds', 'forever'], /--retention-seconds must be a duration such as 90s, 15m, 2h or 7d, not "forever"/],
    [['up', '--colour'], /Unknown option '--colour'/],
    [['up', '--storage', 'postgres://127.0.0.1/x'], /--storage postgres:\/\/127\.0\.0\.1\/x: the scheme must be clickhouse:\/\/ or clickhouses:\/\/ \(HTTPS\)/],
    [['up', '--storage', 'clickhouse://127.0.0.1:8123'], /name a database after the host \(letters, digits, _\), e\.g\. clickhouse:\/\/127\.0\.0\.1:8123\/loopscope/],
    [['up', '--storage', 'clickhouse://127.0.0.1:8123/db', '--data', 'x'], /--data and --storage exclude each other/],
    [['up', '--storage', 'clickhouse://127.0.0.1:8123/loop-scope'], /"loop-scope" is not a database name loopscope takes \(letters, digits and _, not starting with a digit\)/],
    [['up', '--storage', 'clickhouse://a:8123,b:8123/db'], /several servers are the shards of a cluster: name it, \?cluster=NAME/],
    [['up', '--storage', 'clickhouse://a:8123,a:8123/db?cluster=two'], /a server is named twice/],
    [['up', '--storage', 'clickhouse://a:8123,:1/db?cluster=two'], /":1" is not a host\[:port\]/],
    [['up', '--storage', 'clickhouse://a:8123/db?shards=2'], /unknown option shards \(the one option is \?cluster=NAME\)/],
    [['up', 'now'], /Unexpected argument 'now'/],
    [['upp'], /^loopscope: unknown command "upp"/],
    [[], /^loopscope: no command given/],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await run(args);
    assert.equal(code, 2, args.join(' '));
    assert.equal(stdout, '');
    assert.match(stderr, message);
    assert.match(stderr, /loopscope up \[--port 4400\]/, 'the usage follows');
  }
  const help = await run(['up', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^loopscope up \[--port 4400\]/);
});
