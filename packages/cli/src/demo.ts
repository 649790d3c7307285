/**
 * `loopscope demo`: the whole data flow on one machine. The collector on the embedded default, the
 * puppy service of Amy Boyle's talk "Monitoring Asynchronous Applications" under the agent (a
 * process of its own) and its upstream, a second service under the agent in another process (so
 * that a trace follows a request from one to the other), and traffic driven at the puppies, with
 * a progress line that shows the live numbers the query API answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_HOST, DEFAULT_PORT } from '@loopscope/collector';
import { driveTraffic, errorReasons, type TrafficStats } from '@loopscope/example-puppies/traffic';
import { COLLECTOR_FLAGS, joinNegatives, parseDuration, parsePort, untilSignal, UsageError } from './args.js';
import { startCollectorExplained } from './collector.js';

export const DEMO_USAGE = `loopscope demo [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOST}] [--data DIR] [--app-port 4500] [--rps 20] [--duration D] [--service puppies]
  Starts the collector, the puppies example app and its upstream (service "<service>-upstream"),
  both under the agent, and traffic at the puppies until Ctrl-C. With --duration (30s, 5m) the
  traffic and the apps stop after that long, and the collector and its dashboard stay until Ctrl-C.`;

interface Endpoint {
  endpoint: string;
  count: number;
  response: { p95: number };
  cpu: { p95: number };
  blocking: { p95: number };
}

/** Starts a node process and waits for the first stdout line that matches `ready`. */
async function startProcess(args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let seen = '';
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${args.at(-1)} exited with code ${code} before it was ready:\n${seen}`);
  });
  const matched = new Promise<RegExpExecArray>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const m = ready.exec(seen);
      if (m !== null) resolve(m);
    });
  });
  const match = await Promise.race([matched, exited]);
  exited.catch(() => {}); // it may exit later, when the demo stops it
  return { child, match };
}

/** The errors, with their reasons when there are any. */
const errorsOf = (stats: TrafficStats): string => (stats.errors === 0 ? 'errors 0' : `errors ${stats.errors} (${errorReasons(stats.reasons)})`);

/** The live line: the traffic, then the p95 of the busiest endpoints; cut to `width` characters. */
export function progressLine(stats: TrafficStats, endpoints: Endpoint[] | undefined, width = Infinity): string {
  const traffic = `${(stats.elapsedMs / 1000).toFixed(0).padStart(4)} s  sent ${stats.sent}  ok ${stats.ok}  ${errorsOf(stats)}`;
  const line =
    endpoints === undefined || endpoints.length === 0
      ? `${traffic}  (waiting for the first batch)`
      : `${traffic}  │ p95 ${[...endpoints]
          .sort((a, b) => b.count - a.count)
          .slice(0, 3)
          .map((e) => `${e.endpoint} ${e.response.p95.toFixed(0)} ms (cpu ${e.cpu.p95.toFixed(1)}, blocked ${e.blocking.p95.toFixed(1)})`)
          .join('  ')}`;
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

/** What the demo did, said when its traffic stops. */
function summary(stats: TrafficStats, collectorUrl: string, dataDir: string): string {
  const skipped = stats.skipped > 0 ? `, ${stats.skipped} not sent (50 were waiting already)` : '';
  return `loopscope demo: ${stats.sent} requests in ${(stats.elapsedMs / 1000).toFixed(0)} s, ${stats.ok} answered 200, ${errorsOf(stats)}${skipped}
  the data is kept in ${dataDir}/: look at it again with  loopscope up --data ${dataDir}  (dashboard ${collectorUrl}/)`;
}

export async function runDemo(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: joinNegatives(argv),
    options: {
      ...COLLECTOR_FLAGS,
      'app-port': { type: 'string', default: '4500' },
      rps: { type: 'string', default: '20' },
      duration: { type: 'string' },
      service: { type: 'string', default: 'puppies' },
    },
    strict: true,
  });
  const port = parsePort(values.port);
  const appPort = parsePort(values['app-port'], '--app-port');
  const rps = Number(values.rps);
  if (!(rps >= 1 && rps <= 10_000)) throw new UsageError(`--rps must be a number of requests per second from 1 to 10000, not ${JSON.stringify(values.rps)}`);
  const durationMs = values.duration === undefined ? Infinity : parseDuration(values.duration, '--duration');

  const collector = await startCollectorExplained({ port, host: values.host, dataDir: values.data });
  // the processes in the order they stop: the app first (its last requests still reach the
  // upstream), then the upstream
  const children: ChildProcess[] = [];
  let traffic: ReturnType<typeof driveTraffic> | undefined;
  let last: TrafficStats | undefined;
  let stopping: Promise<void> | undefined;
  const tty = process.stdout.isTTY === true;
  /** Stops the traffic (its requests in flight answered), then the app, then the upstream; says what was done. */
  const stopTraffic = (): Promise<void> =>
    (stopping ??= (async () => {
      await traffic?.stop();
      for (const c of children) {
        // the app's agent ships its last interval on SIGTERM
        if (c.exitCode === null && c.signalCode === null) {
          c.kill('SIGTERM');
          await once(c, 'exit');
        }
      }
      if (tty) process.stdout.write('\n');
      if (last !== undefined) console.log(summary(last, collector.url, values.data));
    })());
  let interrupted = false;
  const signalled = untilSignal().then(() => {
    interrupted = true;
  });

  try {
    const upstreamService = `${values.service}-upstream`;
    const upstream = await startProcess(
      ['--import', import.meta.resolve('loopscope/register'), fileURLToPath(import.meta.resolve('@loopscope/example-puppies/upstream'))],
      { PORT: '0', LOOPSCOPE_COLLECTOR: collector.url, LOOPSCOPE_SERVICE: upstreamService },
      /upstream: (http:\S+)/,
    );
    children.unshift(upstream.child);
    const app = await startProcess(
      ['--import', import.meta.resolve('loopscope/register'), fileURLToPath(import.meta.resolve('@loopscope/example-puppies/main'))],
      { PORT: String(appPort), UPSTREAM_URL: upstream.match[1], LOOPSCOPE_COLLECTOR: collector.url, LOOPSCOPE_SERVICE: values.service },
      /puppies:\s+(http:\S+)/,
    );
    children.unshift(app.child);
    const live = `${collector.url}/api/endpoints?service=${encodeURIComponent(values.service)}`;
    console.log(`loopscope demo
  collector   ${collector.url}   (data in ${values.data}/)
  app         ${app.match[1]}   (the puppies example under the agent, service "${values.service}", ~${rps} req/s)
  upstream    ${upstream.match[1]}   (what the puppies call, under the agent too: service "${upstreamService}")
  open        ${collector.url}/
  live API    ${live}
${Number.isFinite(durationMs) ? `The traffic stops after ${values.duration}; the dashboard stays until Ctrl-C.` : 'Ctrl-C stops it.'}`);

    let endpoints: Endpoint[] | undefined;
    let lastPrinted = 0;
    traffic = driveTraffic({
      url: app.match[1]!,
      rps,
      onProgress: (stats) => {
        last = stats;
        fetch(live)
          .then((r) => (r.ok ? (r.json() as Promise<Endpoint[]>) : undefined))
          .then((e) => (endpoints = e ?? endpoints))
          .catch(() => {});
        if (stopping !== undefined) return;
        if (tty) process.stdout.write(`\r\x1b[2K${progressLine(stats, endpoints, process.stdout.columns)}`);
        else if (stats.elapsedMs - lastPrinted >= 5000) {
          lastPrinted = stats.elapsedMs;
          console.log(progressLine(stats, endpoints));
        }
      },
    });
    const timer = new Promise<void>((resolve) => {
      if (Number.isFinite(durationMs)) setTimeout(resolve, durationMs).unref();
    });
    await Promise.race([timer, signalled]);
    await stopTraffic();
    if (!interrupted) {
      console.log(`the collector and its dashboard stay at ${collector.url}/ until Ctrl-C`);
      await signalled;
    }
  } catch (error) {
    await stopTraffic();
    throw error;
  } finally {
    await collector.close();
  }
}
