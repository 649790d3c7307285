/**
 * # Trace completeness across services
 *
 * What it measures: on a chain of three services (gateway → orders → stock, each a node:http app
 * under `--import loopscope/register`, all three pinned to one CPU, shipping to a real collector
 * in this process, on the other CPU with the load generator), under
 * closed-loop load on the gateway with a share of failing requests, the share of the gateway's
 * stored traces that arrived whole (all three parts, none orphaned), by why the gateway kept them:
 * failed (an error trace), or not (the slowest of its endpoint in an interval, or the random share).
 * The gateway's traces are kept by its agent alone; the parts of orders and stock arrive because
 * the collector asks for them (docs/instrumentation.md, "Whole traces across services").
 *
 * Run (from the repository root, after `npm run build`):
 *   npm run bench:traces [-- --duration 10 --connections 20 --fail 0.02 --sample-rate 0.01]
 */
import autocannon from 'autocannon';
import { parseArgs } from 'node:util';
import { startCollector } from '@loopscope/collector';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveResults, serverFile, startProcess, stopProcess, DRIVER_CPU, SERVER_CPU } from './driver.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '20' },
    fail: { type: 'string', default: '0.02' },
    'sample-rate': { type: 'string', default: '0.01' },
  },
});
const durationS = Number(values.duration);
const failShare = Number(values.fail);

const dataDir = mkdtempSync(join(tmpdir(), 'loopscope-bench-traces-'));
const collector = await startCollector({ port: 0, host: '127.0.0.1', dataDir, logger: false });
const env = (service: string, next?: string): Record<string, string> => ({
  LOOPSCOPE_COLLECTOR: collector.url,
  LOOPSCOPE_SERVICE: service,
  LOOPSCOPE_SAMPLE_RATE: values['sample-rate']!,
  ...(next !== undefined ? { NEXT_URL: next } : {}),
});
const execArgv = ['--import', 'loopscope/register'];
const stock = await startProcess(serverFile('chain'), { cpu: SERVER_CPU, execArgv, env: env('stock') });
const orders = await startProcess(serverFile('chain'), { cpu: SERVER_CPU, execArgv, env: env('orders', `http://127.0.0.1:${stock.port}`) });
const gateway = await startProcess(serverFile('chain'), { cpu: SERVER_CPU, execArgv, env: env('gateway', `http://127.0.0.1:${orders.port}`) });

const started = Date.now();
// one request in 1/failShare fails: the requests cycle through that many paths
const every = Math.max(1, Math.round(1 / failShare));
const requests = Array.from({ length: every }, (_, i) => ({ method: 'GET' as const, path: i === 0 ? '/work?fail=1' : '/work' }));
const result = await autocannon({ url: `http://127.0.0.1:${gateway.port}`, connections: Number(values.connections), duration: durationS, requests });
console.log(`load: ${result.requests.total} requests to the gateway, ${result.non2xx} answered 5xx, ${Math.round(result.requests.average)} req/s`);

// the last parts are asked for one or two flushes after the last traces arrive
await new Promise((r) => setTimeout(r, 15_000));
const range = `from=${started - 1000}&to=${Date.now()}`;
const listed = (await (await fetch(`${collector.url}/api/traces?service=gateway&sort=recent&limit=1000&${range}`)).json()) as Array<{ traceId: string; status: number }>;
const tally = { error: { kept: 0, whole: 0 }, other: { kept: 0, whole: 0 } };
for (const t of listed) {
  const trace = (await (await fetch(`${collector.url}/api/traces/${t.traceId}`)).json()) as { parts: Array<{ service: string; orphan: boolean }> };
  const whole = trace.parts.length === 3 && trace.parts.every((p) => !p.orphan);
  const kind = t.status >= 500 ? tally.error : tally.other;
  kind.kept++;
  if (whole) kind.whole++;
}
const share = (k: { kept: number; whole: number }): string => (k.kept === 0 ? '-' : `${((k.whole / k.kept) * 100).toFixed(1)} % (${k.whole} of ${k.kept})`);
console.log(`gateway traces kept for an error, whole: ${share(tally.error)}`);
console.log(`gateway traces kept as slowest or at random, whole: ${share(tally.other)}`);
if (listed.length === 1000) console.log('(the trace list is capped at 1000: only the most recent were checked)');

for (const p of [gateway, orders, stock]) await stopProcess(p.child);
await collector.close();
rmSync(dataDir, { recursive: true, force: true });
saveResults('traces', { options: values, requests: result.requests.total, errors: result.non2xx, tally, cpus: { driver: DRIVER_CPU, servers: SERVER_CPU } });
