/**
 * `loopscope up`: the collector in the foreground. Prints one line on stdout when it is ready
 * (scripts and tests read the URL from it); warnings and errors go to stderr. SIGINT or SIGTERM
 * stops it cleanly: requests in flight are answered, then the database is closed.
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { DB_FILE, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUOTAS, DEFAULT_RETENTION, QUOTA_NAMES, loadRules, parseClickHouseUrl, type Quotas, type Retention } from '@loopscope/collector';
import { COLLECTOR_FLAGS, joinNegatives, parseDuration, parsePort, readNamedFile, readToken, untilSignal, UsageError } from './args.js';
import { startCollectorExplained } from './collector.js';

const human = (ms: number): string => (ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : `${ms / 3_600_000}h`);

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const UP_USAGE = `loopscope up [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOST}] [--data DIR | --storage clickhouse://HOST:8123/DB]
             [--token-file FILE] [--read-token-file FILE] [--tls-cert FILE --tls-key FILE] [--limit NAME=N]...
             [--query-timeout 10s] [--otlp-port 4318]
             [--otlp-endpoint URL [--otlp-header K=V]...] [--rules FILE] [--metrics-window 60s]
             [--retention-seconds ${human(DEFAULT_RETENTION.seconds)}] [--retention-minutes ${human(DEFAULT_RETENTION.minutes)}] [--retention-hours ${human(DEFAULT_RETENTION.hours)}] [--retention-traces ${human(DEFAULT_RETENTION.traces)}]
  Starts the collector: ingest (POST /v1/ingest) and the query API (/api/...) on one port, data in
  DIR/loopscope.db (default ./${DEFAULT_DATA_DIR}), or in ClickHouse with --storage (or LOOPSCOPE_STORAGE;
  user and password in the URL or LOOPSCOPE_CLICKHOUSE_USER/_PASSWORD): any number of collectors may
  share one database (docs/clickhouse.md). --port 0 picks a free port. With an ingest token (from
  --token-file or LOOPSCOPE_TOKEN_FILE; --token and LOOPSCOPE_TOKEN show it in ps) ingest requires
  "Authorization: Bearer TOKEN"; with a read token (--read-token-file, LOOPSCOPE_READ_TOKEN_FILE,
  --read-token, LOOPSCOPE_READ_TOKEN) so do the query API, /metrics and the dashboard's data.
  --tls-cert and --tls-key (PEM files) serve HTTPS on every port. --limit bounds what senders may
  send; by default ${QUOTA_NAMES.slice(0, 3).map((q) => `${kebab(q)}=${DEFAULT_QUOTAS[q]}`).join(', ')} (active within an hour;
  endpoints and instances per service), ${QUOTA_NAMES.slice(3).map((q) => `${kebab(q)}=${DEFAULT_QUOTAS[q]}`).join(', ')}
  (per service). Past them, endpoints and instances are folded into one name, traces and long
  tasks left out, a new service's batches refused (403); each counted in /metrics. An answer of
  the query API that takes longer than --query-timeout is cut off with a 503.
  Retention flags take durations such as 90m, 2h, 7d: how long per-second, per-minute and per-hour
  aggregates and full traces are kept. OpenTelemetry SDKs may send OTLP/HTTP traces to POST
  /v1/traces on the collector's port, or on --otlp-port (4318 is OTLP's own) as well. With
  --otlp-endpoint, every stored trace is forwarded as OTLP spans to URL/v1/traces (an
  OpenTelemetry Collector, Jaeger, Tempo...), with each --otlp-header (an API key, say).
  GET /metrics is for Prometheus: counters since start, quantiles over the last --metrics-window.
  --rules FILE (YAML, docs/alerts.md) evaluates alert rules and sends their alerts to the
  Alertmanagers and webhooks it names; GET /api/alerts lists them.`;

const RETENTION_FLAGS = {
  'retention-seconds': 'seconds',
  'retention-minutes': 'minutes',
  'retention-hours': 'hours',
  'retention-traces': 'traces',
} as const satisfies Record<string, keyof Retention>;

/** The ClickHouse server (or shards) and database of a storage URL, without its password. */
function describeStorage(url: string): string {
  const { servers, cluster, database, user } = parseClickHouseUrl(url);
  return `${servers.join(', ')}${cluster === undefined ? '' : ` (the shards of cluster ${cluster})`} database ${database} as ${user}`;
}

function parseEndpoint(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--otlp-endpoint must be a URL such as http://127.0.0.1:4318, not ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--otlp-endpoint must be an http or https URL, not ${JSON.stringify(raw)}`);
  return raw;
}

function parseHeaders(raw: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of raw) {
    const eq = h.indexOf('=');
    const name = h.slice(0, eq).trim();
    if (eq <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new UsageError(`--otlp-header must be NAME=VALUE with a valid header name, not ${JSON.stringify(h)}`);
    headers[name] = h.slice(eq + 1);
  }
  return headers;
}

/** `--limit traces-per-minute=20000` (repeatable) → quotas. */
function parseLimits(raw: string[]): Partial<Quotas> {
  const quotas: Partial<Quotas> = {};
  for (const r of raw) {
    const [name, value] = r.split('=', 2);
    const quota = QUOTA_NAMES.find((q) => kebab(q) === name);
    if (quota === undefined) throw new UsageError(`--limit must be NAME=N with NAME one of ${QUOTA_NAMES.map(kebab).join(', ')}, not ${JSON.stringify(r)}`);
    const n = /^\d+$/.test(value ?? '') ? Number(value) : NaN;
    if (!(n >= 1 && n <= 10_000_000)) throw new UsageError(`--limit ${name} must be a whole number from 1 to 10000000, not ${JSON.stringify(value ?? '')}`);
    quotas[quota] = n;
  }
  return quotas;
}

export async function runUp(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: joinNegatives(argv),
    options: {
      ...COLLECTOR_FLAGS,
      token: { type: 'string' },
      'token-file': { type: 'string' },
      'read-token': { type: 'string' },
      'read-token-file': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      limit: { type: 'string', multiple: true },
      'query-timeout': { type: 'string' },
      storage: { type: 'string' },
      'otlp-port': { type: 'string' },
      'otlp-endpoint': { type: 'string' },
      'otlp-header': { type: 'string', multiple: true },
      rules: { type: 'string' },
      'metrics-window': { type: 'string' },
      'retention-seconds': { type: 'string' },
      'retention-minutes': { type: 'string' },
      'retention-hours': { type: 'string' },
      'retention-traces': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const { port: rawPort, host, data } = values;
  const port = parsePort(rawPort);
  const retention: Partial<Retention> = {};
  for (const flag of Object.keys(RETENTION_FLAGS) as Array<keyof typeof RETENTION_FLAGS>) {
    const raw = values[flag];
    if (raw !== undefined) retention[RETENTION_FLAGS[flag]] = parseDuration(raw, `--${flag}`);
  }
  const token = readToken('token', { value: values.token, file: values['token-file'] }, 'LOOPSCOPE_TOKEN');
  const readTokenValue = readToken('read-token', { value: values['read-token'], file: values['read-token-file'] }, 'LOOPSCOPE_READ_TOKEN');
  if (readTokenValue !== undefined && readTokenValue === token) throw new UsageError('the read token must differ from the ingest token: every agent holds the ingest token');
  for (const flag of ['token', 'read-token'] as const) {
    if (values[flag] !== undefined) console.error(`loopscope: --${flag} shows the token to every user of this machine (ps); --${flag}-file FILE does not`);
  }
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together: the certificate (PEM, its chain after it) and its private key');
  const tls = values['tls-cert'] === undefined ? undefined : { cert: readNamedFile(values['tls-cert'], '--tls-cert'), key: readNamedFile(values['tls-key']!, '--tls-key') };
  const storageUrl = values.storage ?? (process.env.LOOPSCOPE_STORAGE || undefined);
  if (storageUrl !== undefined) {
    const flag = values.storage === undefined ? 'LOOPSCOPE_STORAGE' : '--storage';
    if (argv.some((a) => a === '--data' || a.startsWith('--data='))) throw new UsageError(`--data and ${flag} exclude each other: the data is in the SQLite file under --data or in the ClickHouse database of ${flag}`);
    try {
      parseClickHouseUrl(storageUrl);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }

  const otlpPort = values['otlp-port'] === undefined ? undefined : parsePort(values['otlp-port'], '--otlp-port');
  const otlpExport = values['otlp-endpoint'] === undefined ? undefined : { endpoint: parseEndpoint(values['otlp-endpoint']), headers: parseHeaders(values['otlp-header'] ?? []) };
  if (otlpExport === undefined && values['otlp-header'] !== undefined) throw new UsageError('--otlp-header goes with --otlp-endpoint');
  const queryTimeoutMs = values['query-timeout'] === undefined ? undefined : parseDuration(values['query-timeout'], '--query-timeout');
  const metricsWindowMs = values['metrics-window'] === undefined ? undefined : parseDuration(values['metrics-window'], '--metrics-window');
  let rules;
  try {
    rules = values.rules === undefined ? undefined : loadRules(values.rules);
  } catch (err) {
    throw new Error(`--rules: ${(err as Error).message}`);
  }
  const collector = await startCollectorExplained({ port, host, dataDir: data, storageUrl, token, readToken: readTokenValue, tls, quotas: parseLimits(values.limit ?? []), queryTimeoutMs, retention, otlpPort, otlpExport, rules, metricsWindowMs });
  const note = collector.storage.note === undefined ? '' : ` (${collector.storage.note})`;
  const where = storageUrl === undefined ? `storage SQLite, data in ${path.join(data, DB_FILE)}` : `storage ClickHouse, data in ${describeStorage(storageUrl)}${note}`;
  const otlp = collector.otlpUrl ? `, OTLP/HTTP traces on ${collector.otlpUrl}/v1/traces` : '';
  console.log(`loopscope collector listening on ${collector.url} (dashboard ${collector.url}/, ${where}${otlp})`);
  await untilSignal();
  await collector.close();
}
