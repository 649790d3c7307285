/**
 * # Agent overhead benchmark
 *
 * What it measures: for each server scenario, the server process's CPU time per request
 * (process.cpuUsage() over the measured window divided by the requests it served in it, as
 * counted by the server itself), the throughput (req/s) and the p99 latency seen by the client,
 * how busy the server's CPU was in the window (below 90 %, the load generator set the pace: such
 * runs are named after the table, see warnUnsaturated), and the user-mode part of the CPU time
 * (the rest is the kernel's: syscalls, and waking the load generator and the upstream when it
 * writes to them, which is dear on this VM; how often that happens moves with the server's
 * timing, so the kernel's part can change with an agent that makes no syscall), and memory: the
 * heap in use after a full GC at the window's end, its growth over the window (context retained
 * per request would show here), and the process's peak RSS,
 * once per variant, where a variant is how the server's node process is started:
 *
 *   none       node server.js
 *   loopscope  node --import loopscope/register server.js   (LOOPSCOPE_SERVICE=bench), shipping to a
 *              real collector in a process of its own on the driver's CPU (not in the driver, whose
 *              event loop runs the load generator)
 *   loopscope-noloop  the same with LOOPSCOPE_LOOP=false (no event-loop health, long tasks or
 *              sampling profiler): `--variants loopscope-noloop,loopscope` shows what those cost
 *   loopscope-noprofiler  the same with LOOPSCOPE_PROFILER=false: what naming long tasks costs
 *   loopscope-nofs  the same with LOOPSCOPE_DISABLED_INSTRUMENTATIONS=fs,dns: what the file system's
 *              and name resolution's time costs (`--variants loopscope-nofs,loopscope --scenarios async,files`)
 *   otel       node --require otel-setup.cjs server.js: OpenTelemetry's SDK and http instrumentation,
 *              every request traced and exported over OTLP to the same collector
 *   otel+loopscope  both in one process: `--together --variants otel,otel+loopscope` is what adding
 *              loopscope to a service OpenTelemetry traces costs (docs/benchmarks.md)
 *   agent:FILE  node --import FILE server.js, FILE being another build's register.js (a copy of
 *              packages/agent/dist, say, taken before a change): `--together --variants
 *              agent:/tmp/before/bundle/register.js,loopscope` measures the change
 *
 * Scenarios (servers/*.ts, which never import an agent):
 *   hello  a node:http hello world: the fixed cost per request
 *   async  three parallel node:http calls to a local upstream answering after 5 ms, then
 *          ~0.2 ms of handler CPU: the cost of following async work
 *   puppies  the puppy service's /async endpoint: a fetch to an upstream answering after 200 ms,
 *          the response, then 10 ms of CPU (not run by default; `npm run bench:loop` runs it to
 *          show what event-loop health and long tasks cost: loopscope-noloop against loopscope)
 *   files  20 small files read one after the other (fs.promises) and a stat per request (not run by
 *          default): what watching the file system costs a storage-bound app
 * The handlers' CPU is a fixed amount of work, calibrated here (BENCH_SPIN_PER_MS), so that CPU
 * the agent takes meanwhile lengthens the request rather than being absorbed by a busy-wait.
 *
 * Runs are interleaved (none, loopscope, loopscope, none, none, loopscope, ...: every other round
 * in the opposite order) so that drift of the machine affects every variant alike, and so does
 * whatever a run leaves behind for the next: in five runs in a fixed order, the agent variant that
 * ran right after `none` measured 5-13 points worse than the other agent variant, whichever it
 * was (a second `none` right after `none` measured +0.8 %); cause not found. With --together, each round runs all the variants' servers at once
 * instead, on the same CPU (they share it), each under its own load in the same window, started in
 * the opposite order every other round: whatever disturbs one disturbs all, which resolves
 * differences of a percent that sequential rounds on a shared machine cannot (their rounds
 * disagree by ±3 %; two identical servers together agree within 0.3 %). Sharing the core, each
 * server serves fewer requests per second, so work an agent does per second (timers, samples)
 * weighs more per request than on a server of its own: the figure is an upper bound; and req/s
 * then depends on how the scheduler splits the core. Each run is a fresh server process, a
 * warm-up (at least 1 s and 12 000 requests, at most 6 s, so that V8 has compiled the hot paths:
 * driver.ts) and
 * a measured window under autocannon (closed loop, 50 connections: the server is
 * saturated, so req/s is its capacity and p99 includes queueing). The table shows the median of each figure over the rounds,
 * and each variant's change in CPU per request and in throughput against the first variant given
 * ("none" by default): the median over the rounds of each round's ratio, with the interquartile
 * range of those ratios (how much the rounds disagree).
 *
 * Pinning: the server runs on CPU 1 (taskset -c 1); the driver (autocannon, in-process) pins
 * itself to CPU 0 and starts the upstream there too, so load generation does not steal the
 * server's CPU. Needs Linux, taskset and at least 2 CPUs. Everything listens on 127.0.0.1.
 *
 * Node lines: `--nodes 20,22,26` runs every variant on each of those Node.js versions (a major is
 * the newest of its line, installed by scripts/node-line.sh; a path is a node executable), in the
 * same interleaved rounds, and computes each one's change against the first variant on the same
 * Node. On a Node that loopscope/register does not start on (20), the loopscope variants start
 * the agent by hand instead (start-agent.ts, as `loopscope.start()` does), so that its figure can
 * stand beside the others'.
 *
 * Run (from the repository root, after `npm run build`):
 *   node bench/dist/overhead.js                 5 rounds, 5 s windows (about 2.5 minutes)
 *   node bench/dist/overhead.js --nodes 20,22,26 --rounds 4    the same on three Node lines
 *   node bench/dist/overhead.js --quick         2 rounds, 2 s windows
 *   node bench/dist/overhead.js --variants none,loopscope --scenarios async --rounds 9
 *   node bench/dist/overhead.js --scenarios puppies --variants loopscope-noloop,loopscope --together --requests 400
 * Options: --variants a,b  --scenarios hello,async,puppies  --together  --rounds N  --duration SECONDS
 *          --nodes MAJOR|PATH,...  (each variant on each of those Node.js versions)
 *          --requests N (each window is N requests instead of --duration seconds)  --connections N
 *          --pipelining N (requests each connection sends before waiting: a cheaper load generator per
 *          request, for when it cannot saturate a fast server; HTTP/1.1 pipelining, which real clients
 *          rarely use, so not the default)
 *          --ingest collector|discard (what the agent ships to: a real collector, the default, or a
 *          server that throws the batches away, when what the collector does on the driver's CPU
 *          should not slow the load generator and the upstream that share it).
 * Results also go to bench/results/overhead-<timestamp>.json.
 *
 * To compare with another tool, add a row to VARIANTS (and its package to bench's devDependencies).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { calibrateSpin, DEFAULT_SCENARIOS, interleave, measureServer, measureServers, median, pick, quantile, roundOrder, serverFile, startProcess, stopProcess, DRIVER_CPU, SCENARIOS, SATURATED, SERVER_CPU, pickVariants, WARMUP_S, saveResults, benchDir, type Run, type Scenario, type Variant } from './driver.js';

interface ScenarioRun extends Run {
  scenario: Scenario;
}

type Options = ReturnType<typeof parseOptions>;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      together: { type: 'boolean', default: false },
      ingest: { type: 'string', default: 'collector' },
      variants: { type: 'string', default: 'none,loopscope' },
      scenarios: { type: 'string', default: DEFAULT_SCENARIOS },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      requests: { type: 'string' },
      connections: { type: 'string', default: '50' },
      pipelining: { type: 'string', default: '1' },
      nodes: { type: 'string' },
    },
  });
  const variants = values.nodes === undefined ? pickVariants(values.variants) : onNodes(pickVariants(values.variants), values.nodes);
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
    pipelining: positive('pipelining', values.pipelining),
    together: values.together,
    ingest: pick(['collector', 'discard'], values.ingest, (i) => i, 'ingest')[0]!,
    requests: values.requests === undefined ? undefined : positive('requests', values.requests),
  };
}

/**
 * `--nodes 20,22,26`: every variant on each of those Node.js versions, named `variant vX.Y.Z`,
 * each compared with the first variant on the same Node. A major is the newest of its line
 * (scripts/node-line.sh installs it if needed); anything else is the path of a node executable.
 */
function onNodes(variants: Variant[], nodes: string): Variant[] {
  const startByHand = pathToFileURL(fileURLToPath(new URL('./start-agent.js', import.meta.url))).href;
  return nodes.split(',').flatMap((spec) => {
    const node = /^\d+$/.test(spec)
      ? path.join(execFileSync('bash', [path.join(benchDir, '..', 'scripts', 'node-line.sh'), spec], { encoding: 'utf8' }).trim(), 'bin', 'node')
      : spec;
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    // does loopscope/register start the agent on this Node? (it warns and stays off on an unsupported one)
    const probe = spawnSync(node, ['--import', 'loopscope/register', '-e', ''], { cwd: benchDir, encoding: 'utf8', env: { ...process.env, LOOPSCOPE_COLLECTOR: 'off' } });
    const byHand = probe.stderr.includes('LOOPSCOPE_UNSUPPORTED_NODE');
    if (byHand) console.log(`${version}: loopscope/register stays off on it; the loopscope variants start the agent by hand (start-agent.js)`);
    return variants.map((v) => ({
      ...v,
      name: `${v.name} ${version}`,
      node,
      baseline: `${variants[0]!.name} ${version}`,
      execArgv: byHand && v.execArgv.join(' ') === '--import loopscope/register' ? ['--import', startByHand] : v.execArgv,
    }));
  });
}

function load(opts: Options) {
  return { path: '/', connections: opts.connections, pipelining: opts.pipelining, warmupS: WARMUP_S, durationS: opts.durationS, amount: opts.requests };
}

const serverOf = (variant: Variant, env: Record<string, string>) => ({ cpu: SERVER_CPU, node: variant.node, execArgv: variant.execArgv, env: { ...variant.env, ...env } });

async function measure(scenario: Scenario, variant: Variant, round: number, opts: Options, env: Record<string, string>): Promise<ScenarioRun> {
  const m = await measureServer(serverFile(scenario), serverOf(variant, env), load(opts));
  return { scenario, variant: variant.name, round, ...m };
}

/** --together: each round runs every variant's server at once, on the same CPU, each under its own load. */
async function measureTogether(opts: Options, env: Record<string, string>): Promise<ScenarioRun[]> {
  const runs: ScenarioRun[] = [];
  for (const scenario of opts.scenarios) {
    for (let round = 1; round <= opts.rounds; round++) {
      // the server started second costs ~0.6 % more than the first in A/A runs
      const order = roundOrder(opts.variants, round);
      const measured = await measureServers(serverFile(scenario), order.map((v) => serverOf(v, env)), load(opts));
      measured.forEach((m, i) => {
        const run = { scenario, variant: order[i]!.name, round, ...m };
        console.log(`${scenario} ${run.variant} round ${round}/${opts.rounds}: ${describe(run)}`);
        runs.push(run);
      });
    }
  }
  return runs;
}

const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const describe = (run: ScenarioRun): string =>
  `${run.cpuUsPerReq.toFixed(1)} µs/req (user ${run.userUsPerReq.toFixed(1)}), ${run.reqPerSec.toFixed(0)} req/s, p99 ${run.p99Ms} ms, server busy ${(run.busy * 100).toFixed(0)} %, heap ${mb(run.heapBytes)} MB (${run.heapGrowthBytes >= 0 ? '+' : ''}${mb(run.heapGrowthBytes)} over the window), max rss ${mb(run.maxRssBytes)} MB`;

/** A variant's change against the baseline run of the same round: median and interquartile range, in %. */
interface Change {
  median: number;
  q1: number;
  q3: number;
}

function change(runs: ScenarioRun[], row: { scenario: Scenario; variant: string }, baseline: string, of: (run: ScenarioRun) => number): Change | undefined {
  // each round's runs are neighbours in time, so the machine's drift cancels out of their ratio
  const pct: number[] = [];
  for (const run of runs.filter((r) => r.scenario === row.scenario && r.variant === row.variant)) {
    const base = runs.find((r) => r.scenario === row.scenario && r.variant === baseline && r.round === run.round);
    if (base !== undefined) pct.push((of(run) / of(base) - 1) * 100);
  }
  return pct.length === 0 ? undefined : { median: median(pct), q1: quantile(pct, 0.25), q3: quantile(pct, 0.75) };
}

function summarize(runs: ScenarioRun[], opts: Options) {
  return opts.scenarios.flatMap((scenario) =>
    opts.variants.map((variant) => {
      const baseline = variant.baseline ?? opts.variants[0]!.name;
      const mine = runs.filter((r) => r.scenario === scenario && r.variant === variant.name);
      const row = { scenario, variant: variant.name };
      const vsBaseline = variant.name !== baseline;
      return {
        ...row,
        cpuUsPerReq: median(mine.map((r) => r.cpuUsPerReq)),
        userUsPerReq: median(mine.map((r) => r.userUsPerReq)),
        reqPerSec: median(mine.map((r) => r.reqPerSec)),
        p99Ms: median(mine.map((r) => r.p99Ms)),
        busy: median(mine.map((r) => r.busy)),
        heapBytes: median(mine.map((r) => r.heapBytes)),
        heapGrowthBytes: median(mine.map((r) => r.heapGrowthBytes)),
        maxRssBytes: median(mine.map((r) => r.maxRssBytes)),
        errors: mine.reduce((sum, r) => sum + r.errors, 0),
        cpuChange: vsBaseline ? change(runs, row, baseline, (r) => r.cpuUsPerReq) : undefined,
        userChange: vsBaseline ? change(runs, row, baseline, (r) => r.userUsPerReq) : undefined,
        throughputChange: vsBaseline ? change(runs, row, baseline, (r) => r.reqPerSec) : undefined,
      };
    }),
  );
}

const percent = (n: number): string => `${n >= 0 ? '+' : ''}${n.toFixed(1)} %`;
const showChange = (c: Change | undefined): string => (c === undefined ? '-' : `${percent(c.median)} [${percent(c.q1)}, ${percent(c.q3)}]`);

function printTable(rows: ReturnType<typeof summarize>, baseline: string): void {
  const header = ['scenario', 'variant', 'cpu µs/req', 'user', 'req/s', 'p99 ms', 'busy', `cpu/req vs ${baseline} [IQR]`, `user/req vs ${baseline} [IQR]`, `req/s vs ${baseline} [IQR]`, 'heap MB', 'growth', 'max rss MB', 'errors'];
  const lines = rows.map((r) => [
    r.scenario,
    r.variant,
    r.cpuUsPerReq.toFixed(1),
    r.userUsPerReq.toFixed(1),
    r.reqPerSec.toFixed(0),
    r.p99Ms.toFixed(1),
    `${(r.busy * 100).toFixed(0)} %`,
    showChange(r.cpuChange),
    showChange(r.userChange),
    showChange(r.throughputChange),
    mb(r.heapBytes),
    mb(r.heapGrowthBytes),
    mb(r.maxRssBytes),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  }
}

/**
 * A closed loop measures the server's cost only while the server is the bottleneck. When the load
 * generator's CPU is slowed (this is a shared 2-vCPU machine), a fast server is left waiting: in
 * one 16-round run, `none` served 23-25 000 req/s at 0.7 busy and 29 µs/req for six rounds in a
 * row, then 44 000 req/s at 0.97 busy and 21.7 µs/req, while loopscope stayed at 0.9-0.98. Such
 * rounds say little about the agent's cost; they are named here (and kept in the results).
 */
function warnUnsaturated(runs: ScenarioRun[], opts: Options): void {
  // with --together the servers share one CPU: together they saturate it
  const busyOf = (run: ScenarioRun): number =>
    opts.together ? runs.filter((r) => r.scenario === run.scenario && r.round === run.round).reduce((sum, r) => sum + r.busy, 0) : run.busy;
  const idle = runs.filter((r) => busyOf(r) < SATURATED);
  if (idle.length === 0) return;
  console.log(
    `\nnot saturated (server busy < ${SATURATED * 100} % of the window: the load generator set the pace, and CPU per request includes waking up between requests): ` +
      idle.map((r) => `${r.scenario} ${r.variant} round ${r.round} (${(busyOf(r) * 100).toFixed(0)} %)`).join(', ') +
      (opts.pipelining === 1 ? '; --pipelining 4 makes the load generator cheaper per request' : ''),
  );
}

/**
 * servers/ingest-target.ts (a real collector, or a server that throws the batches away) in a
 * process of its own on the driver's CPU: not in the driver, whose event loop runs the load
 * generator, which would stall while the collector stores a batch.
 */
async function startIngest(mode: 'collector' | 'discard'): Promise<{ url: string; close: () => Promise<void> }> {
  const { child, port } = await startProcess(serverFile('ingest-target'), { cpu: DRIVER_CPU, args: [mode] });
  return { url: `http://127.0.0.1:${port}`, close: () => stopProcess(child) };
}

async function main(): Promise<void> {
  const opts = parseOptions();
  if (os.availableParallelism() < 2) throw new Error('needs at least 2 CPUs (server on CPU 1, load on CPU 0)');
  // Pin every thread of this driver (autocannon runs here) to the load generator's CPU.
  execFileSync('taskset', ['-a', '-p', '-c', DRIVER_CPU, String(process.pid)], { stdio: 'ignore' });

  const spinPerMs = calibrateSpin();
  const upstream = await startProcess(serverFile('upstream'), { cpu: DRIVER_CPU });
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  // the agent ships to a real collector, as in production (here, on the driver's CPU), or with
  // --ingest discard to a server that reads each batch and throws it away
  const collector = await startIngest(opts.ingest === 'collector' ? 'collector' : 'discard');
  let runs: ScenarioRun[] = [];
  try {
    const env = { UPSTREAM_URL: upstreamUrl, LOOPSCOPE_COLLECTOR: collector.url, BENCH_SPIN_PER_MS: String(spinPerMs) };
    runs = opts.together
      ? await measureTogether(opts, env)
      : await interleave(opts.scenarios, opts.rounds, opts.variants, (scenario, variant, round) => measure(scenario, variant, round, opts, env), describe);
  } finally {
    await stopProcess(upstream.child);
    await collector.close();
  }

  const summary = summarize(runs, opts);
  console.log();
  printTable(summary, opts.variants[0]!.baseline === undefined ? opts.variants[0]!.name : `${opts.variants[0]!.name.split(' ')[0]} on its Node`);
  warnUnsaturated(runs, opts);

  saveResults('overhead', { options: { ...opts, variants: opts.variants.map((v) => v.name) }, spinPerMs, summary, runs });
}

await main();
