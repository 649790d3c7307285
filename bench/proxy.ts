/**
 * # Proxy benchmark
 *
 * What it measures: the latency `loopscope proxy` adds to a request — p50 and p99 of the
 * client's response time through the proxy against direct calls to the same server, in the same
 * run, in interleaved rounds (direct then proxied, proxied then direct, ...), so that whatever the
 * shared machine does meanwhile hits both alike.
 *
 *   upstream  the hello-world server of the overhead benchmark (answers at once), in its own process
 *   proxy     the real command, `loopscope proxy --listen 127.0.0.1:0 --target <upstream>`, shipping
 *             to a real collector (`loopscope up`, its own process), or with --collector off
 *   client    this process: one request at a time over a keep-alive connection (a closed loop, so
 *             that each request's time is its latency and not a queue), timed with performance.now()
 *
 * Upstream and proxy are pinned to CPU 1 and the client to CPU 0 when taskset exists (sequential
 * requests never make the upstream and the proxy run at once). Everything listens on 127.0.0.1.
 *
 * Run (from the repository root, after `npm run build`):
 *   npm run bench:proxy                                  10 rounds of 2000 requests per path
 *   node bench/dist/proxy.js --rounds 5 --requests 1000 --collector off
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ServerMessage } from './servers/harness.js';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    requests: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '1000' },
    collector: { type: 'string', default: 'on' },
  },
});
const ROUNDS = Number(opts.rounds);
const REQUESTS = Number(opts.requests);
const WARMUP = Number(opts.warmup);
const SHIP = opts.collector !== 'off';

const LOOPSCOPE = fileURLToPath(import.meta.resolve('@loopscope/cli/bin/loopscope.js'));
const HELLO = fileURLToPath(new URL('./servers/hello.js', import.meta.url));

function pin(cpu: number, pid = process.pid): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `loopscope ...args`; resolves with the first http:// URL of its first line on stdout. */
async function command(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [LOOPSCOPE, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOOPSCOPE_COLLECTOR: 'off' } });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c;
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`loopscope ${args[0]} exited with ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return { child, url };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function once1(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http
      .get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t0));
      })
      .on('error', reject);
  });
}

async function series(url: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await once1(url));
  return out;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const median = (values: number[]): number => quantile(values, 0.5);
const us = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`;

async function main(): Promise<void> {
  const pinned = pin(0);
  const upstream = fork(HELLO, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(upstream, 'message')) as [ServerMessage];
  if (message.type !== 'listening') throw new Error('the upstream did not start');
  pin(1, upstream.pid);
  const direct = `http://127.0.0.1:${message.port}/`;
  const data = mkdtempSync(join(tmpdir(), 'loopscope-bench-proxy-'));
  const collector = SHIP ? await command(['up', '--port', '0', '--data', data]) : undefined;
  const proxy = await command(['proxy', '--listen', '127.0.0.1:0', '--target', direct, '--service', 'bench-proxy', '--collector', collector?.url ?? 'off']);
  pin(1, proxy.child.pid);
  const proxied = `${proxy.url}/`;

  console.log(
    `proxy benchmark: ${ROUNDS} interleaved rounds of ${REQUESTS} sequential requests per path, after ${WARMUP} to warm up; ` +
      `shipping to a collector: ${SHIP ? 'yes' : 'no'}; ${pinned ? 'client on CPU 0, upstream and proxy on CPU 1' : 'not pinned (no taskset)'}\n`,
  );
  await series(direct, WARMUP);
  await series(proxied, WARMUP);
  const all = { direct: [] as number[], proxied: [] as number[] };
  const perRound: Array<{ p50: number; p99: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order: Array<'direct' | 'proxied'> = r % 2 === 0 ? ['direct', 'proxied'] : ['proxied', 'direct'];
    const got: Record<'direct' | 'proxied', number[]> = { direct: [], proxied: [] };
    for (const path of order) got[path] = await series(path === 'direct' ? direct : proxied, REQUESTS);
    all.direct.push(...got.direct);
    all.proxied.push(...got.proxied);
    const added = { p50: median(got.proxied) - median(got.direct), p99: quantile(got.proxied, 0.99) - quantile(got.direct, 0.99) };
    perRound.push(added);
    console.log(`round ${r + 1}: direct p50 ${us(median(got.direct))} p99 ${us(quantile(got.direct, 0.99))} · proxied p50 ${us(median(got.proxied))} p99 ${us(quantile(got.proxied, 0.99))} · added p50 ${us(added.p50)} p99 ${us(added.p99)}`);
  }
  console.log('\n| | p50 | p99 |\n|---|---|---|');
  console.log(`| direct | ${us(median(all.direct))} | ${us(quantile(all.direct, 0.99))} |`);
  console.log(`| through loopscope proxy | ${us(median(all.proxied))} | ${us(quantile(all.proxied, 0.99))} |`);
  console.log(`| added (median of the rounds) | ${us(median(perRound.map((r) => r.p50)))} | ${us(median(perRound.map((r) => r.p99)))} |`);

  for (const c of [proxy.child, collector?.child, upstream]) {
    if (c === undefined) continue;
    c.kill('SIGTERM');
    await once(c, 'exit');
  }
  agent.destroy();
  rmSync(data, { recursive: true, force: true });
}

await main();
