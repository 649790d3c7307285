/**
 * The real Prometheus and Alertmanager of the tests (Debian's `prometheus` and
 * `prometheus-alertmanager`, which .ci/run installs), each started on 127.0.0.1 on a free port with
 * a config of the test's, its data in a temp directory, stopped (and the directory removed) by
 * `stop`. Also the fixture app that the tests drive, under the agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.js';

export interface Tool {
  url: string;
  /** what it printed, for a failing test's message */
  log(): string;
  stop(): Promise<void>;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `command` on a free port of 127.0.0.1 with its config file in a fresh directory; resolves once GET `readyPath` answers 2xx. */
export async function start(command: string, args: (dir: string, port: number) => string[], config: { name: string; text: string }, readyPath = '/-/ready'): Promise<Tool> {
  const dir = tempDir();
  writeFileSync(path.join(dir, config.name), config.text);
  const port = await freePort();
  // (through util-linux's setpriv: the server gets SIGKILL when this process ends, even when the
  // test runner cuts it off at its timeout, so that no server outlives the file that started it)
  const child: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL', '--', command, ...args(dir, port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const failed = new Promise<never>((_resolve, reject) => {
    const missing = "(is it installed? .ci/run installs it from Debian's packages)";
    child.once('error', (err) => reject(new Error(`${command} did not start: ${err.message} ${missing}`)));
    child.once('exit', (code) => reject(new Error(code === 127 ? `${command} did not start: ${output.trim()} ${missing}` : `${command} exited (${code}) before it was ready:\n${output}`)));
  });
  failed.catch(() => undefined);
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await Promise.race([
      fetch(`${url}${readyPath}`).then(
        (r) => r.ok,
        () => false,
      ),
      failed,
    ]);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${command} not ready within 30 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, log: () => output, stop };
}

/** Prometheus scraping `target` (host:port) every second at /metrics, as job `loopscope`. */
/** Prometheus scraping `target` every second, with the collector's read token when it has one. */
export function startPrometheus(target: string, readToken?: string): Promise<Tool> {
  const config = `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: loopscope
    metrics_path: /metrics
    static_configs:
      - targets: ['${target}']
${readToken === undefined ? '' : `    authorization:\n      credentials: '${readToken}'\n`}`;
  return start(
    'prometheus',
    (dir, port) => [`--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { name: 'prometheus.yml', text: config },
  );
}

/** Alertmanager alone (no cluster), routing every alert to a receiver that sends nothing. */
export function startAlertmanager(): Promise<Tool> {
  const config = `route:
  receiver: nowhere
  group_wait: 1s
receivers:
  - name: nowhere
`;
  return start(
    'prometheus-alertmanager',
    (dir, port) => [`--config.file=${dir}/alertmanager.yml`, `--storage.path=${dir}/data`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
    { name: 'alertmanager.yml', text: config },
  );
}

/** A PromQL instant query's vector, each sample's labels and value. */
export async function promQuery(prometheus: string, query: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  if (body.status !== 'success') throw new Error(`PromQL ${query}: ${body.error}`);
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

export interface TimedApp {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** fixtures/timed-app.mjs under the agent, shipping to `collector` as `service`. */
export async function startTimedApp(collector: string, service: string): Promise<TimedApp> {
  const child = spawn(process.execPath, ['--import', 'loopscope/register', 'timed-app.mjs'], {
    cwd: fixtures,
    env: { ...process.env, LOOPSCOPE_COLLECTOR: collector, LOOPSCOPE_SERVICE: service, LOOPSCOPE_FLUSH_MS: '250' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return {
    url: /listening (\S+)/.exec(chunk.toString())![1]!,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** `count` GETs of `paths(i)` on `app`, `concurrency` at a time; resolves with the statuses. */
export async function drive(app: string, count: number, concurrency: number, pathOf: (i: number) => string): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const res = await fetch(`${app}${pathOf(i)}`);
        await res.arrayBuffer();
        statuses[i] = res.status;
      }
    }),
  );
  return statuses;
}
