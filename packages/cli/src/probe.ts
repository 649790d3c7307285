/**
 * `loopscope probe URL`: a synthetic check of URL now and then every `--every`, recorded as the
 * service `probe` (or `--service`); failures count as errors with their reason. One line per check
 * on stdout. SIGINT or SIGTERM stops it and ships what it measured (at most 2 s more).
 */
import { parseArgs } from 'node:util';
import { check } from './blackbox/check.js';
import { Recorder } from './blackbox/recorder.js';
import { joinNegatives, parseCollector, parseDuration, parseHttpUrl, parseService, untilSignal, UsageError } from './args.js';

export const PROBE_USAGE = `loopscope probe URL [--every 10s | --once] [--timeout 5s] [--expect-status 200] [--service probe] [--collector URL]
  Checks URL with a GET on a new connection now and every --every, and records each check (its
  response time, first byte and status) as the service "probe": a timeout, a refused or failed
  connection or another status than --expect-status is an error, with its reason in the trace; a
  check with no answer at all is recorded as "GET <path> (no answer)", out of the answers' percentiles.
  --once checks once, ships it, and exits 0 if the check passed, 1 if not (for CI and cron).
  --collector defaults to LOOPSCOPE_COLLECTOR or http://127.0.0.1:4400 (\`off\` ships nothing).`;

export async function runProbe(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: joinNegatives(argv),
    options: {
      every: { type: 'string', default: '10s' },
      once: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '5s' },
      'expect-status': { type: 'string', default: '200' },
      service: { type: 'string', default: 'probe' },
      collector: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 1) throw new UsageError(`one URL to check, not ${positionals.length}: ${positionals.join(' ')}`);
  const url = parseHttpUrl(positionals[0], 'the URL to check', 'loopscope probe http://127.0.0.1:3000/health');
  const every = parseDuration(values.every, '--every');
  const timeoutMs = parseDuration(values.timeout, '--timeout');
  const expect = values['expect-status'];
  if (!/^[1-5]\d\d$/.test(expect)) throw new UsageError(`--expect-status must be an HTTP status from 100 to 599, not ${JSON.stringify(expect)}`);
  const service = parseService(values.service);
  if (values.once && argv.some((a) => a === '--every' || a.startsWith('--every='))) throw new UsageError('--once and --every exclude each other: one check, or one every so often');
  const recorder = new Recorder({ service, collector: parseCollector(values.collector), sender: 'loopscope-probe' });
  console.log(`loopscope probe checking ${url.href} ${values.once ? 'once' : `every ${values.every}`}, service "${service}"`);

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: () => void = () => {};
  void untilSignal().then(() => {
    stopped = true;
    clearTimeout(timer);
    wake();
  });
  let failure: string | undefined;
  // eslint-disable-next-line no-unmodified-loop-condition -- the signal handler above sets it
  while (!stopped) {
    const started = Date.now();
    const x = await check({ url, timeoutMs, expectStatus: Number(expect) });
    recorder.record(x);
    failure = x.failure;
    const outcome = x.failure === undefined ? 'ok' : `error: ${x.failure}`;
    console.log(`${new Date(x.start).toISOString()} ${x.endpoint} ${x.status === 0 ? '-' : x.status} ${x.response.toFixed(1)} ms ${outcome}`);
    if (stopped || values.once) break;
    await new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, Math.max(0, started + every - Date.now()));
    });
  }
  await recorder.close();
  // (main exits 1 with this message)
  if (values.once && failure !== undefined) throw new Error(`the check failed: ${failure}`);
}
