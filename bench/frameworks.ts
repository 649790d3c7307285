/**
 * # Framework instrumentation benchmark
 *
 * What it measures: for each example app of examples/frameworks (Express 4 and 5, Fastify 4 and 5,
 * Koa 2 and 3 with @koa/router), the server's CPU time per request and its throughput on
 * `GET /api/users/42` (two mounted routers or prefixes, one middleware, a param route), once per
 * variant of how the server's node process is started:
 *
 *   none       node server.js
 *   http-only  node --import loopscope/register server.js with the framework instrumentations off
 *              (LOOPSCOPE_DISABLED_INSTRUMENTATIONS): every request is still a transaction of the
 *              node:http server, named by the normalized path
 *   loopscope  the same with them on: the route template names it, handler errors are watched
 *
 * The framework instrumentation's cost is `loopscope` against `http-only`: the median over the
 * rounds of each round's ratio of CPU per request (runs of one round are neighbours in time, so the
 * machine's drift cancels out), and the ratio of each variant's best round (other load on a shared
 * machine only ever adds CPU time: the best round is the least disturbed); `loopscope` against
 * `none` is the whole agent. `spread` is half the range of the loopscope rounds around their median. The agent ships to a
 * real collector running in this process, as in bench/overhead.ts. The servers run on CPU 1,
 * autocannon and the collector on CPU 0. Unlike bench/overhead.ts, the variants of a round run at
 * the same time, side by side on CPU 1, each under its own closed-loop load (50 connections): on a
 * machine shared with other work, what slows one slows all of them in the same window, so the ratio
 * of their CPU per request holds where back-to-back runs drifted apart by 2x.
 *
 * Run (from the repository root): npm run bench:frameworks [-- --quick | --rounds N --duration S
 * --frameworks express4,fastify5 --connections N]. Results also go to bench/results/frameworks-*.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCollector } from '@loopscope/collector';
import { measureServers, median, serverFile, DRIVER_CPU, SERVER_CPU, WARMUP_S, saveResults, type Run, type Variant } from './driver.js';

const FRAMEWORKS = ['express4', 'express5', 'fastify4', 'fastify5', 'koa2', 'koa3'];
const FRAMEWORK_PACKAGES = 'express,router,fastify,koa,@koa/router';
const agent = ['--import', 'loopscope/register'];
const VARIANTS: Variant[] = [
  { name: 'none', execArgv: [], env: {} },
  { name: 'http-only', execArgv: agent, env: { LOOPSCOPE_SERVICE: 'bench', LOOPSCOPE_DISABLED_INSTRUMENTATIONS: FRAMEWORK_PACKAGES } },
  { name: 'loopscope', execArgv: agent, env: { LOOPSCOPE_SERVICE: 'bench' } },
];
const PATH = '/api/users/42';

interface FrameworkRun extends Run {
  framework: string;
}

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      frameworks: { type: 'string', default: FRAMEWORKS.join(',') },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string', default: '50' },
    },
  });
  const frameworks = values.frameworks.split(',');
  for (const f of frameworks) if (!FRAMEWORKS.includes(f)) throw new Error(`unknown framework ${f}; known: ${FRAMEWORKS.join(', ')}`);
  const positive = (name: string, value: string | number): number => {
    const n = Number(value);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number, got ${value}`);
    return n;
  };
  return {
    frameworks,
    rounds: positive('rounds', values.rounds ?? (values.quick ? 2 : 3)),
    durationS: positive('duration', values.duration ?? (values.quick ? 2 : 3)),
    connections: positive('connections', values.connections),
  };
}
type Options = ReturnType<typeof options>;

/** One round of a framework: every variant's server under load in the same window, side by side. */
async function measureRound(framework: string, round: number, opts: Options, collector: string): Promise<FrameworkRun[]> {
  const procs = VARIANTS.map((variant) => ({ cpu: SERVER_CPU, execArgv: variant.execArgv, env: { ...variant.env, FRAMEWORK: framework, LOOPSCOPE_COLLECTOR: collector } }));
  const measured = await measureServers(serverFile('framework'), procs, { path: PATH, connections: opts.connections, warmupS: WARMUP_S, durationS: opts.durationS });
  return measured.map((m, i) => ({ framework, variant: VARIANTS[i]!.name, round, ...m }));
}

/** Median over the rounds of `variant`'s CPU per request divided by `base`'s in the same round, as a percentage above 1. */
function overhead(runs: FrameworkRun[], framework: string, variant: string, base: string): number {
  const ratios: number[] = [];
  for (const run of runs.filter((r) => r.framework === framework && r.variant === variant)) {
    const b = runs.find((r) => r.framework === framework && r.variant === base && r.round === run.round);
    if (b !== undefined) ratios.push(run.cpuUsPerReq / b.cpuUsPerReq);
  }
  return (median(ratios) - 1) * 100;
}

function summarize(runs: FrameworkRun[], opts: Options) {
  return opts.frameworks.map((framework) => {
    const of = (variant: string) => runs.filter((r) => r.framework === framework && r.variant === variant);
    const cpu = (variant: string) => median(of(variant).map((r) => r.cpuUsPerReq));
    const rps = (variant: string) => median(of(variant).map((r) => r.reqPerSec));
    const loopscope = of('loopscope').map((r) => r.cpuUsPerReq);
    return {
      framework,
      cpuNone: cpu('none'),
      cpuHttpOnly: cpu('http-only'),
      cpuLoopscope: cpu('loopscope'),
      reqPerSecNone: rps('none'),
      reqPerSecLoopscope: rps('loopscope'),
      /** the framework instrumentation's own cost */
      frameworkPct: overhead(runs, framework, 'loopscope', 'http-only'),
      /** the same from each variant's best round: other load on the machine only ever adds CPU time */
      frameworkBestPct: (Math.min(...loopscope) / Math.min(...of('http-only').map((r) => r.cpuUsPerReq)) - 1) * 100,
      /** the whole agent's */
      agentPct: overhead(runs, framework, 'loopscope', 'none'),
      /** how noisy: the spread of the loopscope runs' CPU per request around their median */
      spreadPct: ((Math.max(...loopscope) - Math.min(...loopscope)) / median(loopscope)) * 100,
      errors: runs.filter((r) => r.framework === framework).reduce((sum, r) => sum + r.errors, 0),
    };
  });
}

function printTable(rows: ReturnType<typeof summarize>): void {
  const pct = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(1)} %`;
  const header = ['framework', 'cpu µs/req none', 'http-only', 'loopscope', 'framework instr.', 'best rounds', 'whole agent', 'spread', 'req/s none', 'req/s loopscope', 'errors'];
  const lines = rows.map((r) => [
    r.framework,
    r.cpuNone.toFixed(1),
    r.cpuHttpOnly.toFixed(1),
    r.cpuLoopscope.toFixed(1),
    pct(r.frameworkPct),
    pct(r.frameworkBestPct),
    pct(r.agentPct),
    `±${(r.spreadPct / 2).toFixed(0)} %`,
    r.reqPerSecNone.toFixed(0),
    r.reqPerSecLoopscope.toFixed(0),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const line of [header, ...lines]) console.log(line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}

async function main(): Promise<void> {
  const opts = options();
  if (os.availableParallelism() < 2) throw new Error('needs at least 2 CPUs (server on CPU 1, load on CPU 0)');
  execFileSync('taskset', ['-a', '-p', '-c', DRIVER_CPU, String(process.pid)], { stdio: 'ignore' });
  const collector = await startCollector({ port: 0, dataDir: mkdtempSync(join(os.tmpdir(), 'loopscope-bench-')), logger: false });
  const runs: FrameworkRun[] = [];
  try {
    for (const framework of opts.frameworks) {
      for (let round = 1; round <= opts.rounds; round++) {
        for (const run of await measureRound(framework, round, opts, collector.url)) {
          console.log(`${framework} ${run.variant} round ${round}/${opts.rounds}: ${run.cpuUsPerReq.toFixed(1)} µs/req, ${run.reqPerSec.toFixed(0)} req/s`);
          runs.push(run);
        }
      }
    }
  } finally {
    await collector.close();
  }
  const summary = summarize(runs, opts);
  console.log();
  printTable(summary);
  saveResults('frameworks', { options: opts, summary, runs });
}

await main();
