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
import { driveTraffic, type TrafficStats } from '@loopscope/example-puppies/traffic';
import { COLLECTOR_FLAGS, parseDuration, parsePort, UsageError } from './args.js';
import { startCollectorExplained } from './collector.js';

export const DEMO_USAGE = `loopscope demo [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOST}] [--data DIR] [--app-port 4500] [--rps 20] [--duration 30s] [--service puppies]
  Starts the collector, the puppies example app and its upstream (service "<service>-upstream"),
  both under the agent, and traffic at the puppies, until Ctrl-C (or for --duration).`;

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

function progressLine(stats: TrafficStats, endpoints: Endpoint[] | undefined): string {
  const traffic = `${(stats.elapsedMs / 1000).toFixed(0).padStart(4)} s  sent ${stats.sent}  ok ${stats.ok}  errors ${stats.errors}`;
  if (endpoints === undefined || endpoints.length === 0) return `${traffic}  (waiting for the first batch)`;
  const top = [...endpoints].sort((a, b) => b.count - a.count).slice(0, 3);
  return `${traffic}  │ p95 ${top.map((e) => `${e.endpoint} ${e.response.p95.toFixed(0)} ms (cpu ${e.cpu.p95.toFixed(1)}, blocked ${e.blocking.p95.toFixed(1)})`).join('  ')}`;
}

export async function runDemo(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
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
  const children: ChildProcess[] = [];
  let traffic: ReturnType<typeof driveTraffic> | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await traffic?.stop();
      // the app's agent ships its last interval on SIGTERM
      await Promise.all(children.map(async (c) => {
        if (c.exitCode === null && c.signalCode === null) {
          c.kill('SIGTERM');
          await once(c, 'exit');
        }
      }));
      await collector.close();
    })());
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  try {
    const upstreamService = `${values.service}-upstream`;
    const upstream = await startProcess(
      ['--import', import.meta.resolve('loopscope/register'), fileURLToPath(import.meta.resolve('@loopscope/example-puppies/upstream'))],
      { PORT: '0', LOOPSCOPE_COLLECTOR: collector.url, LOOPSCOPE_SERVICE: upstreamService },
      /upstream: (http:\S+)/,
    );
    children.push(upstream.child);
    const app = await startProcess(
      ['--import', import.meta.resolve('loopscope/register'), fileURLToPath(import.meta.resolve('@loopscope/example-puppies/main'))],
      { PORT: String(appPort), UPSTREAM_URL: upstream.match[1], LOOPSCOPE_COLLECTOR: collector.url, LOOPSCOPE_SERVICE: values.service },
      /puppies:\s+(http:\S+)/,
    );
    children.push(app.child);
    const live = `${collector.url}/api/endpoints?service=${encodeURIComponent(values.service)}`;
    console.log(`loopscope demo
  collector   ${collector.url}   (data in ${values.data}/)
  app         ${app.match[1]}   (the puppies example under the agent, service "${values.service}", ~${rps} req/s)
  upstream    ${upstream.match[1]}   (what the puppies call, under the agent too: service "${upstreamService}")
  open        ${collector.url}/
  live API    ${live}
Ctrl-C stops it.`);

    let endpoints: Endpoint[] | undefined;
    const tty = process.stdout.isTTY === true;
    let lastPrinted = 0;
    traffic = driveTraffic({
      url: app.match[1]!,
      rps,
      durationMs,
      onProgress: (stats) => {
        fetch(live)
          .then((r) => (r.ok ? (r.json() as Promise<Endpoint[]>) : undefined))
          .then((e) => (endpoints = e ?? endpoints))
          .catch(() => {});
        if (tty) process.stdout.write(`\r\x1b[2K${progressLine(stats, endpoints)}`);
        else if (stats.elapsedMs - lastPrinted >= 5000) {
          lastPrinted = stats.elapsedMs;
          console.log(progressLine(stats, endpoints));
        }
      },
    });
    if (Number.isFinite(durationMs)) {
      await new Promise((r) => setTimeout(r, durationMs).unref());
      await stop();
      if (tty) process.stdout.write('\n');
    }
  } catch (error) {
    await stop();
    throw error;
  }
}
