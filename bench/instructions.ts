/**
 * # Agent cost in instructions (deterministic)
 *
 * `npm run bench` measures CPU time, which on a shared 2-vCPU machine moves by ±15 % from run to
 * run. This benchmark counts instructions instead: the server runs under valgrind's callgrind,
 * which counts every instruction the process executes whatever else the machine is doing: two
 * rounds of the same build in one run agree within 0.2 % (hello, with or without the agent), and
 * separate runs within about 1.5 %: compare builds in one run (`agent:FILE` variants).
 *
 * For each scenario (servers/hello.ts, servers/async.ts, as in overhead.ts) and variant:
 *   1. the server starts under callgrind (V8 optimizing on the main thread, so that when it compiles
 *      does not depend on thread scheduling); rounds of warm-up requests let the JIT settle
 *   2. an idle window of T0 s → I0: the periodic work (timers, the loop probe, the
 *      sampling profiler) that runs whatever the load: P = I0 / T0 per second
 *   3. N requests one after the other (one connection, closed loop: each request is its own loop
 *      iteration, as on a server that is not saturated, so the loop's per-iteration work is
 *      charged to it too) over T s → I
 *   per request = (I − P × T) / N, without V8's compiling: when a function gets hot enough to be
 *   compiled is not a per-request cost; it is shown apart, per second.
 * Periodic work is kept apart because under callgrind the clock runs ~50× slow relative to the
 * work: a timer every 10 ms would otherwise be charged to 50× fewer requests than in reality.
 * For the same reason the long-task threshold is stretched 50× (the servers run no long task),
 * and the async scenario's 0.2 ms of handler CPU is a fixed amount of work calibrated in the
 * driver. The agent does not flush during the run (LOOPSCOPE_FLUSH_MS of 11 days): what a flush
 * costs depends on the endpoints, not on the requests, and a flush inside a measured window (with
 * the flush stretched to 50 s, one round in three) ran code that had not run yet, in V8's
 * interpreter: about 70 k instructions more per hello request, twice the agent's own cost. The
 * sampling profiler cannot be stretched: its
 * 100 samples a second land on 50× fewer requests and cost more under load than idle. The
 * loop-health variants' per-request figures do not repeat from run to run here (the 10 ms probe
 * under the slow clock, it seems): the default variants are `none` and `loopscope-noloop`.
 *
 * Instructions are not seconds (cache misses and stalls are not counted), but the agent's extra
 * work is instructions of the same kind as the app's; CPU-time figures are overhead.ts's job.
 *
 * Run (after `npm run build`; needs valgrind, Linux, 2 CPUs):
 *   npm run bench:instructions
 *   npm run bench:instructions -- --variants none,loopscope-noloop --scenarios hello --rounds 1
 * Options: --variants a,b  --scenarios hello,async  --rounds N  --requests N  --idle SECONDS.
 * Results also go to bench/results/instructions-<timestamp>.json.
 */
import autocannon from 'autocannon';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';
import { startCollector } from '@loopscope/collector';
import { calibrateSpin, DEFAULT_SCENARIOS, DRIVER_CPU, interleave, median, pick, SCENARIOS, SERVER_CPU, serverFile, startProcess, stopProcess, saveResults, pickVariants, type Scenario, type Variant } from './driver.js';

/** A flush interval longer than any run (flushes are aligned on multiples of it since the epoch). */
const NO_FLUSH_MS = 1e9;
/** How much slower the clock runs for the app under callgrind (roughly): long tasks scale with it. */
const SLOWDOWN = 50;
/**
 * Warm-up: rounds of requests on fresh connections, concurrent and then one at a time as measured,
 * so that V8 has optimized every path the measured requests take, including what runs when
 * connections close (the first close de-optimizes a dozen functions of node:http and streams).
 */
const WARMUP: ReadonlyArray<{ connections: number; amount: number }> = [
  { connections: 16, amount: 1500 },
  { connections: 16, amount: 1500 },
  { connections: 1, amount: 1000 },
  { connections: 1, amount: 1000 },
  { connections: 1, amount: 1000 },
];
/** Idle before the idle window, so that what the warm-up left (GC, compiling) is over. */
const SETTLE_S = 3;

interface Run {
  scenario: Scenario;
  variant: string;
  round: number;
  instrPerReq: number;
  periodicPerS: number;
  compilePerS: number;
  errors: number;
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      variants: { type: 'string', default: 'none,loopscope-noloop' },
      scenarios: { type: 'string', default: DEFAULT_SCENARIOS },
      rounds: { type: 'string', default: '2' },
      requests: { type: 'string', default: '1500' },
      idle: { type: 'string', default: '5' },
    },
  });
  const positive = (name: string, value: string) => {
    const n = Number(value);
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${name} must be a positive integer, got ${value}`);
    return n;
  };
  return {
    variants: pickVariants(values.variants),
    scenarios: pick(SCENARIOS, values.scenarios, (s) => s, 'scenario'),
    rounds: positive('rounds', values.rounds),
    requests: positive('requests', values.requests),
    idleS: positive('idle', values.idle),
  };
}
type Options = ReturnType<typeof parseOptions>;

const run = promisify(execFile);

/**
 * V8 compiling code (TurboFan on the main thread, lazy compiles, baseline batches): how much of it
 * falls in a window depends on when functions cross V8's heat thresholds, not on the requests in
 * it, so it is counted apart and left out of the per-request figure.
 */
const COMPILE_FUNCTIONS = ['v8::internal::Runtime_CompileOptimized(', 'v8::internal::Runtime_CompileLazy(', 'v8::internal::baseline::BaselineBatchCompiler::EnqueueFunction('];

/** Callgrind's counters of one process: each dump holds what ran since the previous one. */
class Counter {
  private dumps = 0;
  constructor(
    private readonly pid: number,
    private readonly dir: string,
  ) {}

  /** Instructions since the previous dump, and how many of them compiled code. */
  async dump(): Promise<{ instructions: number; compile: number }> {
    await run('callgrind_control', ['--dump', String(this.pid)]);
    const file = join(this.dir, `cg.${this.pid}.${++this.dumps}`);
    for (let tries = 0; ; tries++) {
      try {
        const totals = /^totals: (\d+)/m.exec(readFileSync(file, 'utf8'));
        if (totals !== null) return { instructions: Number(totals[1]), compile: await compileInstructions(file) };
      } catch (error) {
        if (tries > 100) throw error;
      }
      await sleep(100);
    }
  }
}

async function compileInstructions(file: string): Promise<number> {
  const { stdout } = await run('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { maxBuffer: 256 << 20 });
  let sum = 0;
  for (const line of stdout.split('\n')) {
    if (!COMPILE_FUNCTIONS.some((f) => line.includes(f))) continue;
    const count = /^\s*([\d,]+)/.exec(line);
    if (count !== null) sum += Number(count[1]!.replaceAll(',', ''));
  }
  return sum;
}

async function measure(scenario: Scenario, variant: Variant, round: number, opts: Options, env: Record<string, string>): Promise<Run> {
  const dir = mkdtempSync(join(os.tmpdir(), 'loopscope-cg-'));
  const wrapper = ['valgrind', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${dir}/cg.%p`, '--quiet'];
  const { child, port } = await startProcess(serverFile(scenario), {
    cpu: SERVER_CPU,
    wrapper,
    // optimize on the main thread: when compilation happens no longer depends on thread scheduling
    execArgv: ['--no-concurrent-recompilation', ...variant.execArgv],
    env: { ...variant.env, ...env },
    timeoutMs: 120_000,
  });
  try {
    const counter = new Counter(child.pid!, dir);
    const url = `http://127.0.0.1:${port}/`;
    for (const { connections, amount } of WARMUP) await autocannon({ url, connections, amount, timeout: 60 });
    await counter.dump();
    await sleep(SETTLE_S * 1000);
    await counter.dump();
    let t = performance.now();
    await sleep(opts.idleS * 1000);
    const idle = await counter.dump();
    const periodicPerS = (idle.instructions - idle.compile) / ((performance.now() - t) / 1000);
    t = performance.now();
    const result = await autocannon({ url, connections: 1, amount: opts.requests, timeout: 60 });
    const load = await counter.dump();
    const loadS = (performance.now() - t) / 1000;
    return {
      scenario,
      variant: variant.name,
      round,
      instrPerReq: (load.instructions - load.compile - periodicPerS * loadS) / opts.requests,
      periodicPerS,
      compilePerS: (idle.compile + load.compile) / (opts.idleS + loadS),
      errors: result.errors + result.non2xx,
    };
  } finally {
    await stopProcess(child);
  }
}

function summarize(runs: Run[], opts: Options) {
  const baseline = opts.variants[0]!.name;
  return opts.scenarios.flatMap((scenario) =>
    opts.variants.map((variant) => {
      const mine = runs.filter((r) => r.scenario === scenario && r.variant === variant.name);
      const base = runs.filter((r) => r.scenario === scenario && r.variant === baseline);
      const ratios = mine.map((r) => r.instrPerReq / base.find((b) => b.round === r.round)!.instrPerReq);
      return {
        scenario,
        variant: variant.name,
        instrPerReq: median(mine.map((r) => r.instrPerReq)),
        spread: Math.max(...mine.map((r) => r.instrPerReq)) / Math.min(...mine.map((r) => r.instrPerReq)) - 1,
        periodicPerS: median(mine.map((r) => r.periodicPerS)),
        compilePerS: median(mine.map((r) => r.compilePerS)),
        overheadPct: variant.name === baseline ? undefined : (median(ratios) - 1) * 100,
        errors: mine.reduce((sum, r) => sum + r.errors, 0),
      };
    }),
  );
}

function printTable(rows: ReturnType<typeof summarize>, baseline: string): void {
  const header = ['scenario', 'variant', 'instr/req', 'spread', `per req vs ${baseline}`, 'periodic instr/s', 'compiling instr/s', 'errors'];
  const lines = rows.map((r) => [
    r.scenario,
    r.variant,
    Math.round(r.instrPerReq).toLocaleString('en-US'),
    `${(r.spread * 100).toFixed(1)} %`,
    r.overheadPct === undefined ? '-' : `${r.overheadPct >= 0 ? '+' : ''}${r.overheadPct.toFixed(1)} %`,
    Math.round(r.periodicPerS).toLocaleString('en-US'),
    Math.round(r.compilePerS).toLocaleString('en-US'),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const line of [header, ...lines]) console.log(line.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
}

async function main(): Promise<void> {
  const opts = parseOptions();
  execFileSync('valgrind', ['--version']);
  if (os.availableParallelism() < 2) throw new Error('needs at least 2 CPUs (server on CPU 1, load on CPU 0)');
  execFileSync('taskset', ['-a', '-p', '-c', DRIVER_CPU, String(process.pid)], { stdio: 'ignore' });
  const spinPerMs = calibrateSpin();
  const upstream = await startProcess(serverFile('upstream'), { cpu: DRIVER_CPU });
  const collector = await startCollector({ port: 0, dataDir: mkdtempSync(join(os.tmpdir(), 'loopscope-bench-')), logger: false });
  const env = {
    UPSTREAM_URL: `http://127.0.0.1:${upstream.port}`,
    LOOPSCOPE_COLLECTOR: collector.url,
    LOOPSCOPE_LONG_TASK_MS: String(50 * SLOWDOWN),
    LOOPSCOPE_FLUSH_MS: String(NO_FLUSH_MS),
    BENCH_SPIN_PER_MS: String(spinPerMs),
  };
  let runs: Run[] = [];
  try {
    runs = await interleave(
      opts.scenarios,
      opts.rounds,
      opts.variants,
      (scenario, variant, round) => measure(scenario, variant, round, opts, env),
      (r) => `${Math.round(r.instrPerReq).toLocaleString('en-US')} instr/req, periodic ${Math.round(r.periodicPerS).toLocaleString('en-US')} instr/s`,
    );
  } finally {
    await stopProcess(upstream.child);
    await collector.close();
  }
  const summary = summarize(runs, opts);
  console.log();
  printTable(summary, opts.variants[0]!.name);
  saveResults('instructions', { options: { ...opts, variants: opts.variants.map((v) => v.name) }, spinPerMs, summary, runs });
}

await main();
