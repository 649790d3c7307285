/**
 * The file system's and name resolution's time (io.ts), against ground truth: a read of a FIFO that
 * its writer, this test, opens a known time later; 200 reads of a small file one after the other;
 * and names resolved by a DNS server of the test's own on 127.0.0.1 that answers a known time
 * later. The agent runs in this process, the server under it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { start } from '../src/index.js';
import { get, listen, recorder, spawnApp } from './helpers.js';

start({ service: 'io' });
const records = recorder();
const dir = fs.mkdtempSync(join(tmpdir(), 'loopscope-io-'));
const fifo = join(dir, 'fifo');
const small = join(dir, 'small.txt');
const FIFO_WAIT_MS = 80;
const DNS_DELAY_MS = 40;
const READS = 200;

/**
 * A DNS server that answers every A query with 127.0.0.1, DNS_DELAY_MS after it came: the header of
 * the query with QR and RA set and one answer, a pointer to the question's name.
 */
const nameServer = dgram.createSocket('udp4');
nameServer.on('message', (query, peer) => {
  const answer = Buffer.concat([query, Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1])]);
  answer[2] = 0x81;
  answer[3] = 0x80;
  answer.writeUInt16BE(1, 6); // one answer
  setTimeout(() => nameServer.send(answer, peer.port, peer.address), DNS_DELAY_MS);
});
const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 1 });

let app: string;
/** When the handler asked for the FIFO's content, by its own clock (this process's). */
let fifoRead = NaN;
const server = http.createServer(async (req, res) => {
  if (req.url === '/fifo') {
    fifoRead = performance.now();
    res.end(await fs.promises.readFile(fifo, 'utf8'));
  } else if (req.url === '/reads') {
    let bytes = 0;
    for (let i = 0; i < READS; i++) bytes += (await fs.promises.readFile(small)).length;
    res.end(String(bytes));
  } else if (req.url === '/one') res.end(await fs.promises.readFile(small));
  else if (req.url === '/resolve') res.end((await resolver.resolve4('svc.loopscope.test')).join(','));
  else res.end('?');
});

before(async () => {
  execFileSync('mkfifo', [fifo]);
  fs.writeFileSync(small, 'x'.repeat(100));
  await new Promise<void>((r) => nameServer.bind(0, '127.0.0.1', r));
  resolver.setServers([`127.0.0.1:${(nameServer.address() as AddressInfo).port}`]);
  app = await listen(server);
});

after(() => {
  server.close();
  nameServer.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a read that waits on the file system is external time of kind fs, on the critical path', async () => {
  fifoRead = NaN;
  const answered = get(`${app}/fifo`);
  // the reader's open waits in libuv's thread pool until a writer opens the FIFO: this one, later
  await new Promise((r) => setTimeout(r, FIFO_WAIT_MS));
  const opened = performance.now();
  fs.writeFileSync(fifo, 'through the pipe');
  const written = performance.now();
  assert.equal(await answered, 'through the pipe');
  // the truth: from the handler's read to this writer's open (and its write, and close)
  const [least, most] = [opened - fifoRead, written - fifoRead];
  const r = await records.next('GET /fifo');
  const segs = r.segments.filter((s) => s.kind === 'fs');
  assert.equal(segs.length, 1, JSON.stringify(r.segments));
  const fsMs = r.externalByKind.fs!;
  // the wait lasts until the writer opened, and not much past its write (the read itself is asked
  // for a fraction of a millisecond after the handler's clock was read: 2 ms allowed)
  assert.ok(fsMs >= least - 2 && fsMs <= most + 5, `fs ${fsMs} ms; the writer opened ${least.toFixed(1)} ms and had written ${most.toFixed(1)} ms after the read was asked for`);
  assert.ok(Math.abs(r.external - fsMs) < 0.01, `external ${r.external} is the file system's ${fsMs}`);
  assert.deepEqual(r.criticalPath, [segs[0]!.id], 'the read is the critical path');
  assert.ok(r.cpu < 10, `cpu ${r.cpu}`);
});

test('200 reads one after the other are a segment or a few that count them, their external time theirs', async () => {
  assert.equal(await get(`${app}/reads`), String(READS * 100));
  const r = await records.next('GET /reads');
  const segs = r.segments.filter((s) => s.kind === 'fs');
  // one burst, unless the machine paused the loop for a millisecond between two of them
  assert.ok(segs.length >= 1 && segs.length <= 10, `${segs.length} segments: ${segs.map((s) => s.name).join(', ').slice(0, 300)}`);
  // (each readFile one operation or more, as the Node line does it)
  const ops = segs.reduce((n, s) => n + Number(/^fs(?: ×(\d+))?$/.exec(s.name)?.[1] ?? 1), 0);
  assert.ok(ops >= READS, segs.map((s) => s.name).join(', '));
  // the operations' own time, less than the bursts' spans (the code between them ran in those)
  const span = segs.reduce((n, s) => n + s.end - s.start, 0);
  assert.ok(r.externalByKind.fs! > 0 && r.externalByKind.fs! < span, `fs ${r.externalByKind.fs} ms in spans of ${span}`);
  // cpu may overlap the reads (docs/metrics.md, "What can still overlap"): each read is asked for
  // by a slice that goes on for a moment after asking, 20-100 µs a read here, more on a busy
  // machine. What must not happen is the reads' time counted over the code between them: fs + cpu
  // would then pass the duration by about the whole cpu. Half of it is allowed as overlap.
  assert.ok(r.externalByKind.fs! + r.cpu / 2 <= r.duration, `fs ${r.externalByKind.fs} + half the cpu ${r.cpu} within the duration ${r.duration}`);
});

test('a single quick read never ends before it starts', async () => {
  // its end is when its answer was ready, at the earliest when the read was asked for: the
  // segment's own start must be that same moment, not a reading of the clock taken a moment later
  // (the collector refuses a trace with a segment that ends before it starts)
  const inverted: string[] = [];
  for (let i = 0; i < 300; i++) {
    await get(`${app}/one`);
    const r = await records.next('GET /one');
    for (const s of r.segments) if (s.end < s.start) inverted.push(`${s.name} ${s.start}..${s.end}`);
  }
  assert.deepEqual(inverted, []);
});

test('a name resolved by a server of known delay is external time of kind dns', async () => {
  assert.equal(await get(`${app}/resolve`), '127.0.0.1');
  const r = await records.next('GET /resolve');
  const segs = r.segments.filter((s) => s.kind === 'dns');
  assert.equal(segs.length, 1, JSON.stringify(r.segments));
  assert.equal(segs[0]!.name, 'dns query');
  const dnsMs = r.externalByKind.dns!;
  assert.ok(dnsMs >= DNS_DELAY_MS - 1 && dnsMs <= DNS_DELAY_MS + 15, `dns ${dnsMs} ms for a ${DNS_DELAY_MS} ms server`);
  assert.deepEqual(r.criticalPath, [segs[0]!.id]);
});

test('LOOPSCOPE_DISABLED_INSTRUMENTATIONS=fs leaves the file system out', async () => {
  const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
  for (const [env, expected] of [[{}, 1], [{ LOOPSCOPE_DISABLED_INSTRUMENTATIONS: 'fs' }, 0]] as const) {
    const child = await spawnApp(['--import', 'loopscope/register'], 'fs-app.mjs', fixtures, { LOOPSCOPE_COLLECTOR: 'off', ...env });
    try {
      await get(`${child.url}/read`);
      const [r] = await child.records(1);
      assert.equal(r!.segments.filter((s) => s.kind === 'fs').length, expected, JSON.stringify(env));
      assert.equal(r!.externalByKind.fs === undefined, expected === 0);
    } finally {
      await child.stop();
    }
  }
});
