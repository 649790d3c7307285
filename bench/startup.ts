/**
 * # Start-up benchmark: the agent's cost in an app's first moments
 *
 * What it measures, for a fresh server process per run (the Express 4 example app of
 * examples/frameworks, `FRAMEWORK` to change it), once per variant (as in bench/overhead.ts:
 * `none` is `node server.js`, `loopscope` is `node --import loopscope/register server.js`,
 * `agent:FILE` another build's register.js, to compare a change with the build before it):
 *
 *   listening   ms from the process's start to its server listening (the server's own
 *               performance.now(): Node's start, the agent's, loading the app)
 *   start CPU   the process's CPU time until then (every thread: the module hooks' loader thread,
 *               V8's compiler threads)
 *   first resp  ms from spawning the process to the first response received (what a health check
 *               right after a deploy waits)
 *   first req   that first request's own latency
 *   first N     CPU time per request of the first --requests requests (the first included), closed
 *               loop with --connections: where the agent's hooks are compiled, and V8 has not yet
 *               optimized anything
 *   next N      the same for the N requests after them: the same server warmer
 *
 * The change of each figure is the median over the rounds of each round's ratio to the first
 * variant given (`none` by default), with the interquartile range of those ratios. Runs are
 * interleaved (none, loopscope, loopscope, none, ...), each a fresh process pinned to CPU 1, the
 * load generator (autocannon) on CPU 0, and the agent ships to a server in this process that throws
 * the batches away (LOOPSCOPE_COLLECTOR off would also switch the loop watch and the profiler off).
 *
 * Run (from the repository root): npm run bench:startup [-- --rounds N --requests N --connections N
 * --variants none,loopscope,agent:/tmp/before/bundle/register.js]. Results also go to
 * bench/results/startup-*.json.
 */
import autocannon from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { benchDir, interleave, pickVariants, quantile, saveResults, serverFile, stopProcess, DRIVER_CPU, IPC_TIMEOUT_MS, SERVER_CPU, type Variant } from './driver.js';
import type { StartupMessage } from './servers/startup.js';

interface StartupRun {
  variant: string;
  round: number;
  listeningMs: number;
  startCpuMs: number;
  firstResponseMs: number;
  firstRequestMs: number;
  firstUsPerReq: number;
  nextUsPerReq: number;
}

const FIGURES = [
  ['listening', 'listeningMs', 'ms'],
  ['start CPU', 'startCpuMs', 'ms'],
  ['first resp', 'firstResponseMs', 'ms'],
  ['first req', 'firstRequestMs', 'ms'],
  ['first N', 'firstUsPerReq', 'µs/req'],
  ['next N', 'nextUsPerReq', 'µs/req'],
] as const;
type Figure = (typeof FIGURES)[number][1];

const PATH = '/api/users/42';

function options() {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'none,loopscope' },
      rounds: { type: 'string', default: '10' },
      requests: { type: 'string', default: '1000' },
      connections: { type: 'string', default: '10' },
    },
  });
  return { variants: pickVariants(values.variants), rounds: Number(values.rounds), requests: Number(values.requests), connections: Number(values.connections) };
}

function message<T extends StartupMessage['type']>(child: ChildProcess, type: T): Promise<Extract<StartupMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: StartupMessage): void => {
      if (m.type !== type) return;
      cleanup();
      resolve(m as Extract<StartupMessage, { type: T }>);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`server exited (code ${code}) while waiting for '${type}'`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' from the server within ${IPC_TIMEOUT_MS} ms`));
    }, IPC_TIMEOUT_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage).off('exit', onExit);
    };
    child.on('message', onMessage).on('exit', onExit);
  });
}

function get(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

async function measure(variant: Variant, round: number, opts: ReturnType<typeof options>, ingest: string): Promise<StartupRun> {
  const spawned = performance.now();
  const child = spawn('taskset', ['-c', SERVER_CPU, process.execPath, ...variant.execArgv, serverFile('startup')], {
    cwd: benchDir,
    env: { ...process.env, ...variant.env, LOOPSCOPE_COLLECTOR: ingest },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const up = await message(child, 'listening');
    const url = `http://127.0.0.1:${up.port}${PATH}`;
    const asked = performance.now();
    await get(url);
    const answered = performance.now();
    const batch = async (amount: number): Promise<number> => {
      const result = await autocannon({ url, connections: opts.connections, amount });
      if (result.errors + result.non2xx > 0) throw new Error(`${variant.name}: ${result.errors} errors, ${result.non2xx} non-2xx`);
      child.send('usage');
      const usage = await message(child, 'usage');
      return usage.cpuUs / usage.requests;
    };
    const firstUsPerReq = await batch(opts.requests - 1);
    const nextUsPerReq = await batch(opts.requests);
    return {
      variant: variant.name,
      round,
      listeningMs: up.upMs,
      startCpuMs: up.startCpuUs / 1000,
      firstResponseMs: answered - spawned,
      firstRequestMs: answered - asked,
      firstUsPerReq,
      nextUsPerReq,
    };
  } finally {
    await stopProcess(child);
  }
}

/** A server that reads each batch the agent ships and throws it away. */
async function startDiscard(): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{"ok":true}'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const describe = (run: StartupRun): string => FIGURES.map(([label, key, unit]) => `${label} ${run[key].toFixed(1)} ${unit}`).join(', ');
const percent = (n: number): string => `${n >= 0 ? '+' : ''}${(n * 100).toFixed(1)} %`;

function summarize(runs: StartupRun[], variants: Variant[]) {
  const baseline = variants[0]!.name;
  return variants.map((v) => {
    const mine = runs.filter((r) => r.variant === v.name);
    const figures = Object.fromEntries(
      FIGURES.map(([, key]) => {
        const ratios = mine.flatMap((r) => {
          const base = runs.find((b) => b.variant === baseline && b.round === r.round);
          return base === undefined ? [] : [r[key] / base[key] - 1];
        });
        return [key, { median: quantile(mine.map((r) => r[key]), 0.5), change: quantile(ratios, 0.5), q1: quantile(ratios, 0.25), q3: quantile(ratios, 0.75) }];
      }),
    ) as Record<Figure, { median: number; change: number; q1: number; q3: number }>;
    return { variant: v.name, rounds: mine.length, figures };
  });
}

function printTable(rows: ReturnType<typeof summarize>, baseline: string): void {
  const header = ['variant', ...FIGURES.map(([label, , unit]) => `${label} (${unit})`)];
  const lines = rows.map((r) => [
    r.variant,
    ...FIGURES.map(([, key]) => {
      const f = r.figures[key];
      return r.variant === baseline ? f.median.toFixed(1) : `${f.median.toFixed(1)} ${percent(f.change)} [${percent(f.q1)}, ${percent(f.q3)}]`;
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const line of [header, ...lines]) console.log(line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}

async function main(): Promise<void> {
  const opts = options();
  // the load generator and the ingest server on the driver's CPU
  execFileSync('taskset', ['-cp', DRIVER_CPU, String(process.pid)], { stdio: 'ignore' });
  const ingest = await startDiscard();
  try {
    console.log(`start-up: ${opts.rounds} rounds of ${opts.variants.map((v) => v.name).join(', ')}; ${PATH} of ${process.env.FRAMEWORK ?? 'express4'}, first and next ${opts.requests} requests over ${opts.connections} connections; node ${process.version}\n`);
    const runs = await interleave(['startup'], opts.rounds, opts.variants, (_s, variant, round) => measure(variant, round, opts, ingest.url), describe);
    const rows = summarize(runs, opts.variants);
    console.log(`\nmedians over ${opts.rounds} rounds; change against ${opts.variants[0]!.name}: median of the rounds' ratios [interquartile range]\n`);
    printTable(rows, opts.variants[0]!.name);
    saveResults('startup', { options: { ...opts, variants: opts.variants.map((v) => v.name) }, summary: rows, runs });
  } finally {
    ingest.close();
  }
}

await main();
