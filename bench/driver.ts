/**
 * What the benchmarks' drivers share: the agent variants and server scenarios, starting and stopping a benchmarked process pinned to a CPU,
 * talking to it over IPC, one measured run under autocannon, and the median.
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ServerMessage } from './servers/harness.js';

export interface Variant {
  name: string;
  execArgv: string[];
  env: Record<string, string>;
}

/** How the server process is started for each variant; overhead is computed against the first one run. */
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
  // loop health and long tasks, but no sampling profiler to name their functions
  {
    name: 'loopscope-noprofiler',
    execArgv: ['--import', 'loopscope/register'],
    env: { LOOPSCOPE_SERVICE: 'bench', LOOPSCOPE_PROFILER: 'false' },
  },
];

export const SCENARIOS = ['hello', 'async'] as const;
export type Scenario = (typeof SCENARIOS)[number];

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
/** Seconds of load before each measured window. */
export const WARMUP_S = 1;

export const benchDir = fileURLToPath(new URL('..', import.meta.url));
export const serverFile = (name: string): string => fileURLToPath(new URL(`./servers/${name}.js`, import.meta.url));

export interface ProcessOptions {
  /** the CPU it is pinned to */
  cpu: string;
  execArgv?: string[];
  env?: Record<string, string>;
  /** a command that runs node, e.g. valgrind with its flags */
  wrapper?: string[];
  /** how long it may take to listen */
  timeoutMs?: number;
}

/** Starts `[wrapper] node [execArgv] file` pinned to a CPU, and waits for it to report its port. */
export async function startProcess(file: string, opts: ProcessOptions): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn('taskset', ['-c', opts.cpu, ...(opts.wrapper ?? []), process.execPath, ...(opts.execArgv ?? []), file], {
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

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface Load {
  /** the path requested */
  path: string;
  connections: number;
  warmupS: number;
  durationS: number;
}

export interface Measurement {
  /** the server's CPU time per request it served in the measured window (its own count) */
  cpuUsPerReq: number;
  reqPerSec: number;
  p99Ms: number;
  requests: number;
  /** errors, timeouts and non-2xx answers seen by the client */
  errors: number;
}

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
    const run = (port: number, duration: number) => autocannon({ url: `http://127.0.0.1:${port}${load.path}`, connections: load.connections, duration });
    await Promise.all(ports.map((port) => run(port, load.warmupS)));
    for (const child of servers) child.send('start');
    const results = await Promise.all(ports.map((port) => run(port, load.durationS)));
    for (const child of servers) child.send('stop');
    const usages = await Promise.all(servers.map((child) => nextMessage(child, 'usage', IPC_TIMEOUT_MS)));
    return results.map((result, i) => ({
      cpuUsPerReq: usages[i]!.cpuUs / usages[i]!.requests,
      reqPerSec: result.requests.total / result.duration,
      p99Ms: result.latency.p99,
      requests: usages[i]!.requests,
      errors: result.errors + result.non2xx,
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
  for (const scenario of scenarios)
    for (let round = 1; round <= rounds; round++)
      for (const variant of variants) {
        const run = await measure(scenario, variant, round);
        console.log(`${scenario} ${variant.name} round ${round}/${rounds}: ${describe(run)}`);
        runs.push(run);
      }
  return runs;
}
