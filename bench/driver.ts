/**
 * What the benchmarks' drivers share: the agent variants and server scenarios, starting and stopping a benchmarked process pinned to a CPU,
 * talking to it over IPC, one measured run under autocannon, and the median.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spin, type ServerMessage } from './servers/harness.js';

export interface Variant {
  name: string;
  execArgv: string[];
  env: Record<string, string>;
  /** the node executable (`--nodes`); this process's own by default */
  node?: string;
  /** the variant its change is computed against (`--nodes`: the first variant on the same Node); the first variant by default */
  baseline?: string;
}

/** How the server process is started for each variant; overhead is computed against the first one run. */
/** OpenTelemetry's setup for the `otel` variants (a CommonJS file beside the sources). */
const OTEL_SETUP = fileURLToPath(new URL('../otel-setup.cjs', import.meta.url));

export const VARIANTS: Variant[] = [
  { name: 'none', execArgv: [], env: {} },
  {
    name: 'loopscope',
    execArgv: ['--import', 'loopscope/register'],
    env: { LOOPSCOPE_SERVICE: 'bench' },
  },
  // the same without event-loop health, long tasks and the sampling profiler: what they cost
  {
    name: 'loopscope-noloop',
    execArgv: ['--import', 'loopscope/register'],
    env: { LOOPSCOPE_SERVICE: 'bench', LOOPSCOPE_LOOP: 'false' },
  },
  // without the file system's and name resolution's time (io.ts): what watching them costs
  {
    name: 'loopscope-nofs',
    execArgv: ['--import', 'loopscope/register'],
    env: { LOOPSCOPE_SERVICE: 'bench', LOOPSCOPE_DISABLED_INSTRUMENTATIONS: 'fs,dns' },
  },
  // loop health and long tasks, but no sampling profiler to name their functions
  {
    name: 'loopscope-noprofiler',
    execArgv: ['--import', 'loopscope/register'],
    env: { LOOPSCOPE_SERVICE: 'bench', LOOPSCOPE_PROFILER: 'false' },
  },
  // OpenTelemetry's SDK and http instrumentation alone (otel-setup.cjs), and with loopscope next to it
  { name: 'otel', execArgv: ['--require', OTEL_SETUP], env: {} },
  { name: 'otel+loopscope', execArgv: ['--require', OTEL_SETUP, '--import', 'loopscope/register'], env: { LOOPSCOPE_SERVICE: 'bench' } },
];

/**
 * The variants named in `names` (comma-separated): those of VARIANTS, or `agent:FILE`, the agent
 * as registered by another build's register.js (to compare a change with the build before it).
 */
export function pickVariants(names: string): Variant[] {
  return names.split(',').map((name) => {
    if (!name.startsWith('agent:')) return pick(VARIANTS, name, (v) => v.name, 'variant')[0]!;
    const file = name.slice('agent:'.length);
    if (!existsSync(file)) throw new Error(`variant ${name}: no such file ${file} (agent:FILE wants another build's register.js)`);
    return { name, execArgv: ['--import', pathToFileURL(file).href], env: { LOOPSCOPE_SERVICE: 'bench' } };
  });
}

/**
 * The servers in servers/*.ts: `hello` and `async` for the agent's cost per request (targets in
 * docs/benchmarks.md), `puppies` for what event-loop health costs on the puppy service's async
 * endpoint, `files` for what watching the file system costs a storage-bound app.
 */
export const SCENARIOS = ['hello', 'async', 'puppies', 'files'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/** What runs when no --scenarios is given. */
export const DEFAULT_SCENARIOS = 'hello,async';

/** Parses `a,b` against the names of a list. */
export function pick<T>(list: readonly T[], names: string, nameOf: (item: T) => string, what: string): T[] {
  return names.split(',').map((name) => {
    const item = list.find((i) => nameOf(i) === name);
    if (item === undefined) throw new Error(`unknown ${what} ${name}; known: ${list.map(nameOf).join(', ')}`);
    return item;
  });
}

export const IPC_TIMEOUT_MS = 10_000;
/** The benchmarked server runs on this CPU; the driver (autocannon) and its helpers on the other. */
export const SERVER_CPU = '1';
export const DRIVER_CPU = '0';
/**
 * Load before each measured window: at least WARMUP_S seconds and WARMUP_REQUESTS requests (but
 * no more than WARMUP_MAX_S seconds), so that V8 has compiled the hot paths before the window
 * starts (what it compiles is not a per-request cost). The async scenario serves ~2 500 req/s:
 * after 1 s alone its measured window still included compiling, which put its overhead at +20 %
 * where later windows of the same server show +10 %. A slow endpoint (puppies, ~100 req/s, each
 * request 10 ms of CPU) stops at WARMUP_MAX_S: what compiling costs is small beside its requests.
 */
export const WARMUP_S = 1;
export const WARMUP_REQUESTS = 12_000;
export const WARMUP_MAX_S = 6;
/** With a count of requests measured: how long the warm-up's last requests are given to finish. */
const SETTLE_MS = 1000;

export const benchDir = fileURLToPath(new URL('..', import.meta.url));
export const serverFile = (name: string): string => fileURLToPath(new URL(`./servers/${name}.js`, import.meta.url));

export interface ProcessOptions {
  /** the CPU it is pinned to */
  cpu: string;
  /** the node executable; this process's own by default */
  node?: string;
  execArgv?: string[];
  env?: Record<string, string>;
  /** a command that runs node, e.g. valgrind with its flags */
  wrapper?: string[];
  /** the script's own arguments */
  args?: string[];
  /** how long it may take to listen */
  timeoutMs?: number;
}

/** Starts `[wrapper] node [execArgv] file` pinned to a CPU, and waits for it to report its port. */
export async function startProcess(file: string, opts: ProcessOptions): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn('taskset', ['-c', opts.cpu, ...(opts.wrapper ?? []), opts.node ?? process.execPath, ...(opts.execArgv ?? []), file, ...(opts.args ?? [])], {
    cwd: benchDir,
    env: { ...process.env, ...opts.env },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  const message = await nextMessage(child, 'listening', opts.timeoutMs ?? IPC_TIMEOUT_MS);
  return { child, port: message.port };
}

export function nextMessage<T extends ServerMessage['type']>(
  child: ChildProcess,
  type: T,
  timeoutMs: number,
): Promise<Extract<ServerMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ServerMessage) => {
      if (message.type !== type) return;
      cleanup();
      resolve(message as Extract<ServerMessage, { type: T }>);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`server exited (code ${code}) while waiting for '${type}'`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' from server within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage).off('exit', onExit);
    };
    child.on('message', onMessage).on('exit', onExit);
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The q-quantile (0..1) of `values`, interpolated between the two nearest ranks. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  return sorted[lo]! + (sorted[Math.ceil(at)]! - sorted[lo]!) * (at - lo);
}

export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/**
 * Iterations of servers/harness.ts's `spin` per millisecond on this machine (the best of a few
 * tries): the drivers pass it as BENCH_SPIN_PER_MS, so that a scenario's CPU is a fixed amount of
 * work, not a busy-wait by the clock that would absorb whatever else takes the CPU meanwhile.
 */
export function calibrateSpin(): number {
  let best = 0;
  for (let i = 0; i < 5; i++) {
    const n = 200_000;
    const t = performance.now();
    spin(n);
    best = Math.max(best, n / (performance.now() - t));
  }
  return Math.round(best);
}

export interface Load {
  /** the path requested */
  path: string;
  connections: number;
  /** requests each connection sends before waiting for the answers (autocannon's pipelining; 1 by default) */
  pipelining?: number;
  warmupS: number;
  durationS: number;
  /**
   * Measure this many requests instead of a window of durationS: the server's CPU time is then
   * that of exactly these requests, start to finish, with nothing of requests before or after the
   * window in it (what matters when requests are long and many are in flight).
   */
  amount?: number;
}

export interface Measurement {
  /** the server's CPU time per request it served in the measured window (its own count) */
  cpuUsPerReq: number;
  /** the part of it in user mode (the rest is the kernel's: syscalls, and waking the peers it writes to) */
  userUsPerReq: number;
  reqPerSec: number;
  p99Ms: number;
  requests: number;
  /** errors, timeouts and non-2xx answers seen by the client */
  errors: number;
  /** the heap in use after a full GC at the window's end, and its growth since its start (bytes) */
  heapBytes: number;
  heapGrowthBytes: number;
  /** the process's peak resident set size (bytes) */
  maxRssBytes: number;
  /**
   * The server's CPU time over the window's length: how busy its CPU was (1: all the time). Under
   * closed-loop load a server below ~0.9 was not the bottleneck — the load generator was — and
   * its CPU per request then includes going to sleep and waking up between requests.
   */
  busy: number;
}

/** Below this a server was not saturated (see Measurement.busy). */
export const SATURATED = 0.9;

/** One measured run of a variant in a round of interleaved runs. */
export interface Run extends Measurement {
  variant: string;
  round: number;
}

/** Starts the server, warms it up, measures one window of closed-loop load, and stops it. */
export async function measureServer(file: string, proc: ProcessOptions, load: Load): Promise<Measurement> {
  return (await measureServers(file, [proc], load))[0]!;
}

/**
 * The same for several servers at once, each under its own load in the same window: on a machine
 * shared with other work, whatever disturbs one disturbs all of them alike, so their ratios hold.
 */
export async function measureServers(file: string, procs: ProcessOptions[], load: Load): Promise<Measurement[]> {
  const servers: ChildProcess[] = [];
  try {
    const ports: number[] = [];
    for (const proc of procs) {
      const { child, port } = await startProcess(file, proc);
      servers.push(child);
      ports.push(port);
    }
    const url = (port: number) => `http://127.0.0.1:${port}${load.path}`;
    const clients = { connections: load.connections, pipelining: load.pipelining ?? 1 };
    await Promise.all(
      ports.map(async (port) => {
        const warm = await autocannon({ url: url(port), ...clients, duration: load.warmupS });
        if (warm.requests.total >= WARMUP_REQUESTS) return;
        // autocannon refuses fewer requests than connections: a few more then
        const more = Math.max(WARMUP_REQUESTS - warm.requests.total, load.connections);
        const left = WARMUP_MAX_S - load.warmupS;
        const enoughIn = (more * load.warmupS) / Math.max(1, warm.requests.total);
        await autocannon({ url: url(port), ...clients, ...(enoughIn <= left ? { amount: more } : { duration: left }) });
      }),
    );
    // the warm-up's last requests are still being served: with a count of requests measured,
    // they must not fall into it
    if (load.amount !== undefined) await sleep(SETTLE_MS);
    for (const child of servers) child.send('start');
    // autocannon notices that the last request is answered at its next sample: every 10 ms, not every second
    const window = load.amount !== undefined ? { amount: load.amount, sampleInt: 10 } : { duration: load.durationS };
    const started = performance.now();
    const results = await Promise.all(
      ports.map(async (port) => {
        const result = await autocannon({ url: url(port), ...clients, ...window });
        // autocannon's own duration is in whole seconds
        return { result, seconds: (performance.now() - started) / 1000 };
      }),
    );
    for (const child of servers) child.send('stop');
    const usages = await Promise.all(servers.map((child) => nextMessage(child, 'usage', IPC_TIMEOUT_MS)));
    return results.map(({ result, seconds }, i) => ({
      cpuUsPerReq: usages[i]!.cpuUs / usages[i]!.requests,
      userUsPerReq: usages[i]!.userUs / usages[i]!.requests,
      reqPerSec: result.requests.total / seconds,
      p99Ms: result.latency.p99,
      requests: usages[i]!.requests,
      errors: result.errors + result.non2xx,
      busy: usages[i]!.cpuUs / 1e6 / seconds,
      heapBytes: usages[i]!.heapEndBytes,
      heapGrowthBytes: usages[i]!.heapEndBytes - usages[i]!.heapStartBytes,
      maxRssBytes: usages[i]!.maxRssBytes,
    }));
  } finally {
    await Promise.all(servers.map(stopProcess));
  }
}

/**
 * Writes a benchmark's options, summary and runs, with the machine they ran on, to
 * bench/results/<name>-<timestamp>.json, and says where.
 */
export function saveResults(name: string, results: Record<string, unknown>): void {
  const dir = new URL('../results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, dir);
  const environment = { node: process.version, cpu: os.cpus()[0]?.model, cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}`, loadavg: os.loadavg() };
  writeFileSync(file, JSON.stringify({ environment, ...results }, null, 2) + '\n');
  console.log(`\nresults: ${fileURLToPath(file)}`);
}

/**
 * The variants in the order round `round` (from 1) runs or starts them: every other round the
 * opposite order, so that no variant always comes right after the same one (what ran or started
 * before can move a run's figure: bench/overhead.ts).
 */
export function roundOrder<V>(variants: readonly V[], round: number): readonly V[] {
  return round % 2 === 1 ? variants : [...variants].reverse();
}

/**
 * Runs every scenario in rounds of every variant (none, loopscope, none, loopscope, ...), so that
 * the machine's drift affects every variant alike; prints each run with `describe`.
 */
export async function interleave<S extends string, R>(
  scenarios: readonly S[],
  rounds: number,
  variants: readonly Variant[],
  measure: (scenario: S, variant: Variant, round: number) => Promise<R>,
  describe: (run: R) => string,
): Promise<R[]> {
  const runs: R[] = [];
  for (const scenario of scenarios) {
    for (let round = 1; round <= rounds; round++) {
      for (const variant of roundOrder(variants, round)) {
        const run = await measure(scenario, variant, round);
        console.log(`${scenario} ${variant.name} round ${round}/${rounds}: ${describe(run)}`);
        runs.push(run);
      }
    }
  }
  return runs;
}
