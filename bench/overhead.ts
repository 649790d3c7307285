/**
 * # Agent overhead benchmark
 *
 * What it measures: for each server scenario, the server process's CPU time per request
 * (process.cpuUsage() over the measured window divided by the requests it served in it, as
 * counted by the server itself), the throughput (req/s) and the p99 latency seen by the client,
 * once per variant, where a variant is how the server's node process is started:
 *
 *   none       node server.js
 *   loopscope  node --import loopscope/register server.js   (LOOPSCOPE_SERVICE=bench), shipping to a
 *              real collector that runs in the driver process (on the driver's CPU)
 *   loopscope-noloop  the same with LOOPSCOPE_LOOP=false (no event-loop health, long tasks or
 *              sampling profiler): `--variants loopscope-noloop,loopscope` shows what those cost
 *   loopscope-noprofiler  the same with LOOPSCOPE_PROFILER=false: what naming long tasks costs
 *
 * Scenarios (servers/*.ts, which never import an agent):
 *   hello  a node:http hello world: the fixed cost per request
 *   async  three parallel node:http calls to a local upstream answering after 5 ms, then
 *          ~0.2 ms of handler CPU: the cost of following async work
 *
 * Runs are interleaved (none, loopscope, none, loopscope, ...) so that drift of the machine
 * affects every variant alike; each run is a fresh server process, a 1 s warm-up and a measured
 * window under autocannon (closed loop, 50 connections: the server is saturated, so req/s is its
 * capacity and p99 includes queueing). The table shows the median of each figure over the rounds
 * and the CPU-per-request overhead against the first variant given ("none" by default): the median
 * over the rounds of each round's ratio.
 *
 * Pinning: the server runs on CPU 1 (taskset -c 1); the driver (autocannon, in-process) pins
 * itself to CPU 0 and starts the upstream there too, so load generation does not steal the
 * server's CPU. Needs Linux, taskset and at least 2 CPUs. Everything listens on 127.0.0.1.
 *
 * Run (from the repository root, after `npm run build`):
 *   node bench/dist/overhead.js                 5 rounds, 5 s windows (about 2.5 minutes)
 *   node bench/dist/overhead.js --quick         2 rounds, 2 s windows
 *   node bench/dist/overhead.js --variants none,loopscope --scenarios async --rounds 9
 * Options: --variants a,b  --scenarios hello,async  --rounds N  --duration SECONDS  --connections N.
 * Results also go to bench/results/overhead-<timestamp>.json.
 *
 * To compare with another tool, add a row to VARIANTS (and its package to bench's devDependencies).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCollector } from '@loopscope/collector';
import { interleave, measureServer, median, pick, serverFile, startProcess, stopProcess, DRIVER_CPU, SCENARIOS, SERVER_CPU, VARIANTS, WARMUP_S, saveResults, type Run, type Scenario, type Variant } from './driver.js';

interface ScenarioRun extends Run {
  scenario: Scenario;
}

type Options = ReturnType<typeof parseOptions>;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      variants: { type: 'string', default: 'none,loopscope' },
      scenarios: { type: 'string', default: SCENARIOS.join(',') },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string', default: '50' },
    },
  });
  const variants = pick(VARIANTS, values.variants, (v) => v.name, 'variant');
  const scenarios = pick(SCENARIOS, values.scenarios, (s) => s, 'scenario');
  const positive = (name: string, value: string | number) => {
    const n = Number(value);
    if (!(n > 0)) throw new Error(`--${name} must be a positive number, got ${value}`);
    return n;
  };
  return {
    variants,
    scenarios,
    rounds: positive('rounds', values.rounds ?? (values.quick ? 2 : 5)),
    durationS: positive('duration', values.duration ?? (values.quick ? 2 : 5)),
    connections: positive('connections', values.connections),
  };
}

async function measure(
  scenario: Scenario,
  variant: Variant,
  round: number,
  opts: Options,
  env: Record<string, string>,
): Promise<ScenarioRun> {
  const proc = { cpu: SERVER_CPU, execArgv: variant.execArgv, env: { ...variant.env, ...env } };
  const m = await measureServer(serverFile(scenario), proc, { path: '/', connections: opts.connections, warmupS: WARMUP_S, durationS: opts.durationS });
  return { scenario, variant: variant.name, round, ...m };
}

function summarize(runs: ScenarioRun[], opts: Options) {
  const rows = opts.scenarios.flatMap((scenario) =>
    opts.variants.map((variant) => {
      const mine = runs.filter((r) => r.scenario === scenario && r.variant === variant.name);
      return {
        scenario,
        variant: variant.name,
        cpuUsPerReq: median(mine.map((r) => r.cpuUsPerReq)),
        reqPerSec: median(mine.map((r) => r.reqPerSec)),
        p99Ms: median(mine.map((r) => r.p99Ms)),
        errors: mine.reduce((sum, r) => sum + r.errors, 0),
      };
    }),
  );
  // overhead against the first variant: the median of the rounds' ratios (each round's runs are
  // neighbours in time, so the machine's drift cancels out of the ratio)
  const baseline = opts.variants[0]!.name;
  return rows.map((row) => {
    if (row.variant === baseline) return { ...row, overheadPct: undefined };
    const ratios: number[] = [];
    for (const run of runs.filter((r) => r.scenario === row.scenario && r.variant === row.variant)) {
      const base = runs.find((r) => r.scenario === row.scenario && r.variant === baseline && r.round === run.round);
      if (base !== undefined) ratios.push(run.cpuUsPerReq / base.cpuUsPerReq);
    }
    return { ...row, overheadPct: ratios.length > 0 ? (median(ratios) - 1) * 100 : undefined };
  });
}

function printTable(rows: ReturnType<typeof summarize>, baseline: string): void {
  const header = ['scenario', 'variant', 'cpu µs/req', 'req/s', 'p99 ms', `overhead vs ${baseline}`, 'errors'];
  const lines = rows.map((r) => [
    r.scenario,
    r.variant,
    r.cpuUsPerReq.toFixed(1),
    r.reqPerSec.toFixed(0),
    r.p99Ms.toFixed(1),
    r.overheadPct === undefined ? '-' : `${r.overheadPct >= 0 ? '+' : ''}${r.overheadPct.toFixed(1)} %`,
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  }
}

async function main(): Promise<void> {
  const opts = parseOptions();
  if (os.availableParallelism() < 2) throw new Error('needs at least 2 CPUs (server on CPU 1, load on CPU 0)');
  // Pin every thread of this driver (autocannon runs here) to the load generator's CPU.
  execFileSync('taskset', ['-a', '-p', '-c', DRIVER_CPU, String(process.pid)], { stdio: 'ignore' });

  const upstream = await startProcess(serverFile('upstream'), { cpu: DRIVER_CPU });
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  // the agent ships to a real collector, as in production (here, on the driver's CPU)
  const collector = await startCollector({ port: 0, dataDir: mkdtempSync(join(os.tmpdir(), 'loopscope-bench-')), logger: false });
  let runs: ScenarioRun[] = [];
  try {
    const env = { UPSTREAM_URL: upstreamUrl, LOOPSCOPE_COLLECTOR: collector.url };
    runs = await interleave(
      opts.scenarios,
      opts.rounds,
      opts.variants,
      (scenario, variant, round) => measure(scenario, variant, round, opts, env),
      (run) => `${run.cpuUsPerReq.toFixed(1)} µs/req, ${run.reqPerSec.toFixed(0)} req/s, p99 ${run.p99Ms} ms`,
    );
  } finally {
    await stopProcess(upstream.child);
    await collector.close();
  }

  const summary = summarize(runs, opts);
  console.log();
  printTable(summary, opts.variants[0]!.name);

  saveResults('overhead', { options: opts, summary, runs });
}

await main();
