/**
 * A full disk (docs/collector.md#a-full-disk): a real collector whose data directory is on a small
 * tmpfs that its database fills. Ingest must answer 503 with Retry-After and say why, never 500;
 * the query API, /metrics and /api/health keep answering from what is stored, which is exactly what
 * was acknowledged; a prune that fails for space is counted, not thrown; a collector restarted on the
 * full disk opens; once space returns (a filler file made beforehand is deleted) the refused batches
 * are stored, once each, with no restart; the file passes `PRAGMA integrity_check`. Then an app under
 * the real agent: its batches wait in the agent while the disk is full and are all delivered after.
 *
 * Needs root (mount -t tmpfs), as CI has: without it the suite fails saying so, it does not skip.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { WireBatch } from '@loopscope/protocol';
import { DB_FILE, startCollector, type Collector, type DiskFullStats } from '../src/index.js';
import { batch, get, interval, random, randomTx, trace, until } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const KB = 1024;

/** Fails (does not skip) when this machine cannot mount a tmpfs here. */
function requireMount(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('full-disk.test.ts mounts a small tmpfs (mount -t tmpfs) and needs root for it: run it as root, as CI does');
  }
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`full-disk.test.ts needs the \`mount\` command (util-linux) to make a small filesystem: ${(err as Error).message}`);
  }
}

/** A tmpfs of `size` (mount's syntax: 4m) on a new temp directory; umount() takes it away. */
function mountTmpfs(size: string): { dir: string; umount: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'loopscope-full-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    umount() {
      if (mounted) execFileSync('umount', [dir]);
      mounted = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The data directory's files and their sizes, for the test's diagnostics. */
const files = (dir: string): string =>
  readdirSync(dir)
    .map((f) => `${f} ${Math.round(statSync(path.join(dir, f)).size / KB)} KiB`)
    .join(', ');

interface Sent {
  batch: WireBatch;
  status: number;
  retryAfter: string | null;
  body: { error?: string; duplicate?: boolean };
}

async function send(url: string, b: WireBatch): Promise<Sent> {
  const res = await fetch(`${url}/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
  return { batch: b, status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Sent['body'] };
}

/** A logger that keeps the collector's lines (Fastify's JSON) to count what it said. */
function logLines(): { lines: string[]; logger: { level: string; stream: { write: (line: string) => void } } } {
  const lines: string[] = [];
  return { lines, logger: { level: 'warn', stream: { write: (line: string) => void lines.push(line) } } };
}

const said = (lines: string[], what: RegExp): string[] => lines.filter((l) => what.test((JSON.parse(l) as { msg: string }).msg));
const FULL_SAID = /^the disk of .* is full \(SQLITE_FULL/;
const SPACE_SAID = /^there is space again for /;
const REFUSAL = /^the collector's disk is full \(.*: SQLITE_FULL, database or disk is full\): the batch is not stored; send it again later$/;

const SERVICE = 'full-disk';
const TXS = 3;
const rand = random(26);

/**
 * A batch of its own endpoint (`/b<i>`), TXS transactions and their traces: the odd ones in the
 * last seconds (a query reads them from the per-second rows), the even ones in the middle of the
 * minute before (a query of the last hour reads them from the minute rows, which the storage holds
 * in memory for a while: on a full disk it cannot write them, and must answer with them all the same).
 */
function numbered(i: number, now = Date.now()): WireBatch {
  const txs = Array.from({ length: TXS }, () => randomTx(rand));
  const start = i % 2 === 1 ? now - 2000 : Math.floor(now / 60_000) * 60_000 - 30_000;
  return batch(SERVICE, 'instance-1', [interval(`/b${i}`, start, txs)], txs.map((tx) => trace(SERVICE, `/b${i}`, start, tx)));
}

describe('a full disk under the SQLite storage', () => {
  const TMPFS = '4m';
  const FILLER = 2048 * KB;
  let fs: ReturnType<typeof mountTmpfs> | undefined;
  let collector: Collector | undefined;
  let dataDir: string;
  let filler: string;
  let topUp: string;
  const log = logLines();

  before(() => {
    requireMount();
    fs = mountTmpfs(TMPFS);
    dataDir = path.join(fs.dir, 'data');
    mkdirSync(dataDir);
    // made before the collector: deleting it is the space that returns
    filler = path.join(fs.dir, 'filler');
    topUp = path.join(fs.dir, 'top-up');
    writeFileSync(filler, Buffer.alloc(FILLER, 1));
  });

  after(async () => {
    try {
      await collector?.close();
    } finally {
      fs?.umount();
    }
  });

  const health = async (): Promise<DiskFullStats> => {
    const { status, body } = await get(`${collector!.url}/api/health`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.status, 'ok');
    return body.diskFull as DiskFullStats;
  };
  /** The samples of `GET /metrics`, by name and labels (`loopscope_storage_disk_full`). */
  const metrics = async (): Promise<Map<string, number>> => {
    const res = await fetch(`${collector!.url}/metrics`);
    assert.equal(res.status, 200);
    const samples = new Map<string, number>();
    for (const line of (await res.text()).split('\n')) {
      const [name, value] = line.split(' ');
      if (!line.startsWith('#') && value !== undefined) samples.set(name!, Number(value));
    }
    return samples;
  };
  /** What the query API has of the service over the last hour: per endpoint its count, and the traces. */
  const stored = async (): Promise<{ counts: Map<string, number>; traces: Set<string> }> => {
    const range = `from=${Date.now() - 3_600_000}&to=${Date.now() + 1000}`;
    const endpoints = await get(`${collector!.url}/api/endpoints?service=${SERVICE}&${range}`);
    assert.equal(endpoints.status, 200, JSON.stringify(endpoints.body));
    const traces = await get(`${collector!.url}/api/traces?service=${SERVICE}&sort=recent&limit=1000&${range}`);
    assert.equal(traces.status, 200, JSON.stringify(traces.body));
    return {
      counts: new Map((endpoints.body as Array<{ endpoint: string; count: number }>).map((e) => [e.endpoint, e.count])),
      traces: new Set((traces.body as Array<{ traceId: string }>).map((t) => t.traceId)),
    };
  };
  /** The query API's answer must be exactly these batches: each endpoint's count, each trace. */
  const assertStoredExactly = async (batches: WireBatch[], what: string): Promise<void> => {
    const { counts, traces } = await stored();
    assert.deepEqual(
      [...counts].sort(),
      batches.map((b) => [b.intervals[0]!.endpoint, TXS] as [string, number]).sort(),
      `${what}: the endpoints stored, each with its ${TXS} transactions`,
    );
    assert.deepEqual([...traces].sort(), batches.flatMap((b) => b.traces.map((t) => t.traceId)).sort(), `${what}: the traces stored`);
  };

  const acked: WireBatch[] = [];
  const refused: Sent[] = [];
  let firstRefusal = -1;

  test('ingest answers 503 with Retry-After once the disk is full, never 500; what was acknowledged is stored, nothing else', async (t) => {
    collector = await startCollector({ port: 0, dataDir, logger: log.logger });
    // waves of 4 at once: some share a transaction (group commit) and are refused together
    let i = 0;
    while (refused.length < 8) {
      assert.ok(i < 400, `the disk never filled: ${i} batches stored on a ${TMPFS} tmpfs (${files(dataDir)})`);
      const wave = await Promise.all(Array.from({ length: 4 }, () => send(collector!.url, numbered(i++))));
      for (const s of wave) {
        assert.ok(s.status === 200 || s.status === 503, `a batch is stored (200) or refused for space (503), never ${s.status}: ${JSON.stringify(s.body)}`);
        if (s.status === 200) {
          assert.equal(s.body.duplicate, false);
          acked.push(s.batch);
        } else {
          if (firstRefusal === -1) firstRefusal = acked.length;
          assert.equal(s.retryAfter, '5', 'a 503 says when to come again');
          assert.match(s.body.error ?? '', REFUSAL);
          refused.push(s);
        }
      }
    }
    t.diagnostic(`tmpfs ${TMPFS} with a ${FILLER / KB} KiB filler: ${firstRefusal} batches stored before the first 503, ${acked.length} in all, ${refused.length} refused; ${files(dataDir)}`);
    assert.ok(firstRefusal > 0, 'batches were stored before the disk filled');

    // the query API answers from what is stored: exactly the acknowledged batches
    await assertStoredExactly(acked, 'on the full disk');
    const stats = await health();
    assert.equal(stats.full, true);
    assert.equal(stats.episodes, 1);
    assert.equal(stats.refusedBatches, refused.length, 'every refused batch is counted');
    const samples = await metrics();
    assert.equal(samples.get('loopscope_storage_disk_full'), 1);
    assert.equal(samples.get('loopscope_storage_full_refused_batches_total'), refused.length);
    const requests = [...samples].filter(([name]) => name.startsWith(`loopscope_requests_total{service="${SERVICE}"`));
    assert.equal(requests.length, acked.length, '/metrics counts the stored batches, not the refused ones');
    assert.equal(requests.reduce((n, [, v]) => n + v, 0), acked.length * TXS);
    // said once for the episode, not once per batch
    assert.equal(said(log.lines, FULL_SAID).length, 1, log.lines.join(''));
    assert.equal(said(log.lines, /internal error/).length, 0, log.lines.join(''));
  });

  test('a prune that fails for space is counted, does not throw and deletes nothing; a collector restarted on the full disk opens and answers', async () => {
    // a prune 8 days ahead deletes every row: it writes a page of the WAL for each, and the WAL cannot grow
    await collector!.storage.prune(Date.now() + 8 * 24 * 3_600_000);
    assert.equal((await health()).failedPrunes, 1);
    assert.equal(said(log.lines, FULL_SAID).length, 1, 'the same episode');
    await assertStoredExactly(acked, 'after the failed prune');

    await collector!.close();
    // closing may have freed space (a checkpoint that shrank the write-ahead log): the disk is filled
    // again, but for the 32 KiB the next open maps for its shared memory and a page more
    const { bavail, bsize } = statfsSync(fs!.dir);
    writeFileSync(topUp, Buffer.alloc(Math.max(0, bavail * bsize - 36 * KB), 1));
    collector = await startCollector({ port: 0, dataDir, logger: log.logger });
    await assertStoredExactly(acked, 'after a restart on the full disk');
    const again = await send(collector.url, refused[0]!.batch);
    assert.equal(again.status, 503, JSON.stringify(again.body));
    assert.match(again.body.error ?? '', REFUSAL);
    assert.equal((await health()).refusedBatches, 1, 'this collector counts from its start');
  });

  test('once space returns, the refused batches are stored with no restart, once each; the file is sound', async (t) => {
    rmSync(filler);
    rmSync(topUp, { force: true });
    for (const s of refused) {
      const answer = await send(collector!.url, s.batch);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.duplicate, false, 'a refused batch was not remembered as stored');
    }
    assert.equal(said(log.lines, SPACE_SAID).length, 1, log.lines.join(''));
    const stats = await health();
    assert.equal(stats.full, false);
    assert.equal(stats.since, null);
    assert.equal((await metrics()).get('loopscope_storage_disk_full'), 0);
    // every batch again: each one a duplicate, nothing counted twice
    for (const b of [...acked, ...refused.map((s) => s.batch)]) {
      const answer = await send(collector!.url, b);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.duplicate, true);
    }
    const all = [...acked, ...refused.map((s) => s.batch)];
    await assertStoredExactly(all, 'after space returned');
    t.diagnostic(`after space returned: ${all.length} batches stored; ${files(dataDir)}`);

    await collector!.close();
    collector = undefined;
    const db = new Database(path.join(dataDir, DB_FILE), { readonly: true });
    try {
      assert.deepEqual(db.pragma('integrity_check'), [{ integrity_check: 'ok' }]);
      assert.equal(db.prepare('SELECT COUNT(*) FROM batches').pluck().get(), all.length, 'every batch id once');
      assert.equal(db.prepare('SELECT COUNT(*) FROM traces').pluck().get(), all.length * TXS);
      for (const res of ['second', 'minute', 'hour']) assert.equal(db.prepare(`SELECT SUM(count) FROM agg_${res} WHERE service = ?`).pluck().get(SERVICE), all.length * TXS, res);
    } finally {
      db.close();
    }
  });
});

describe("an app under the agent while the collector's disk is full", () => {
  const APP = 'full-disk-app';
  let fs: ReturnType<typeof mountTmpfs> | undefined;
  let collector: Collector | undefined;
  let app: ReturnType<typeof spawn> | undefined;
  const log = logLines();

  before(() => {
    requireMount();
    fs = mountTmpfs('4m');
    writeFileSync(path.join(fs.dir, 'filler'), Buffer.alloc(2048 * KB, 1));
  });

  after(async () => {
    try {
      if (app !== undefined && app.exitCode === null) {
        app.kill('SIGTERM');
        await once(app, 'exit');
      }
      await collector?.close();
    } finally {
      fs?.umount();
    }
  });

  /** What the collector has of the app: the requests counted over every endpoint, and what its agent said it dropped. */
  const counted = async (): Promise<{ requests: number; droppedBatches: number }> => {
    const range = `from=${Date.now() - 3_600_000}&to=${Date.now() + 1000}`;
    const endpoints = await get(`${collector!.url}/api/endpoints?service=${APP}&${range}`);
    const services = await get(`${collector!.url}/api/services?${range}`);
    assert.equal(endpoints.status, 200, JSON.stringify(endpoints.body));
    const service = (services.body as Array<{ service: string; dropped: { batches: number } }>).find((s) => s.service === APP);
    return { requests: (endpoints.body as Array<{ count: number }>).reduce((n, e) => n + e.count, 0), droppedBatches: service?.dropped.batches ?? 0 };
  };

  test('the agent keeps the batches refused with 503 and delivers them once space returns: the request count is exact', async (t) => {
    collector = await startCollector({ port: 0, dataDir: path.join(fs!.dir, 'data'), logger: log.logger });
    const stats = collector.storage.diskFull!;
    app = spawn(process.execPath, ['--import', 'loopscope/register', 'timed-app.mjs'], {
      cwd: fixtures,
      env: { ...process.env, LOOPSCOPE_COLLECTOR: collector.url, LOOPSCOPE_SERVICE: APP, LOOPSCOPE_FLUSH_MS: '250' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    app.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const [chunk] = (await once(app.stdout!, 'data')) as [Buffer];
    const appUrl = /listening (\S+)/.exec(chunk.toString())![1]!;
    let requests = 0;
    const round = async (): Promise<void> => {
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const res = await fetch(`${appUrl}/work?ms=0`);
          await res.arrayBuffer();
          return res.status;
        }),
      );
      assert.deepEqual(new Set(answers), new Set([200]));
      requests += answers.length;
      await new Promise((r) => setTimeout(r, 50));
    };
    // until the agent's batches fill the disk, then 2 s more: those batches wait in the agent
    while (!stats.full) {
      assert.ok(requests < 50_000, `the disk never filled (${files(path.join(fs!.dir, 'data'))})`);
      await round();
    }
    const beforeFull = requests;
    const end = Date.now() + 2000;
    while (Date.now() < end) await round();
    await until('the agent to say the collector refused its batches', async () => (/answered 503: .*the collector's disk is full/.test(stderr) ? true : undefined), () => stderr);
    assert.equal(stats.full, true, 'still full');
    const refusedWhileFull = stats.refusedBatches;
    assert.ok(refusedWhileFull >= 2, `the agent's batches were refused: ${refusedWhileFull}`);
    assert.ok((await counted()).requests < requests, 'the batches of the last requests are not stored yet');

    // space returns: the filesystem made bigger
    execFileSync('mount', ['-o', 'remount,size=64m', fs!.dir]);
    await until(
      'every request of the app counted',
      async () => ((await counted()).requests === requests ? true : undefined),
      () => `${requests} requests made; ${stats.refusedBatches} batches refused; stderr: ${stderr}`,
    );
    // and stays exact: nothing counted twice afterwards
    await new Promise((r) => setTimeout(r, 1000));
    const last = await counted();
    assert.equal(last.requests, requests);
    assert.equal(last.droppedBatches, 0, 'the agent dropped nothing');
    assert.match(stderr, /batches reach the collector at \S+ again/);
    assert.equal(said(log.lines, FULL_SAID).length, 1, log.lines.join(''));
    assert.equal(said(log.lines, SPACE_SAID).length, 1, log.lines.join(''));
    t.diagnostic(`${beforeFull} requests before the disk was full, ${requests} in all; ${stats.refusedBatches} of the agent's batches refused with 503, all delivered after the remount`);
  });
});
