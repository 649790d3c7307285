/**
 * The loopscope collector: `startCollector()` opens the storage, serves ingest and the query API,
 * and prunes by retention on a timer. `loopscope up` is this function behind command-line flags.
 */
import { randomUUID } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { FastifyServerOptions } from 'fastify';
import { DEFAULT_LIMITS, type IngestLimits } from './ingest.js';
import { buildServer, DEFAULT_QUERY_TIMEOUT_MS } from './server.js';
import type { ThrottleOptions } from './access.js';
import type { Quotas } from './quotas.js';
import { OtlpExporter } from './otlp/exporter.js';
import { AlertEngine } from './alerts/engine.js';
import { Receivers } from './alerts/receivers.js';
import type { RulesFile } from './alerts/rules.js';
import { openClickHouseStorage, type ClickHouseOptions } from './storage/clickhouse/index.js';
import { openSqliteStorage } from './storage/sqlite.js';
import type { Retention, Storage } from './storage/storage.js';

export interface CollectorOptions {
  /** default 4400; 0 picks a free port (read it from `url`) */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** directory of the SQLite file, created if missing; default ./.loopscope */
  dataDir?: string;
  /** clickhouse://[user[:password]@]HOST:8123/DATABASE: store in ClickHouse instead (dataDir is not used) */
  storageUrl?: string;
  /** ClickHouse's finer settings (docs/clickhouse.md) */
  clickhouse?: Pick<ClickHouseOptions, 'settleMs' | 'groupMs'>;
  /** ingest token; without it ingest is open */
  token?: string | undefined;
  /** read token: the query API, `/metrics` and the dashboard's data need it; without it they are open */
  readToken?: string | undefined;
  /** wrong tokens an address may send per window before it is refused (429); default 10 a minute */
  throttle?: Partial<ThrottleOptions>;
  /** the longest the query API works on one answer before a 503 (ms; default 10 s); ClickHouse stops its query then too */
  queryTimeoutMs?: number;
  /** what one sender may send (docs/collector.md#limits); the rest keep their defaults */
  quotas?: Partial<Quotas>;
  /** serve HTTPS (PEM certificate chain and key) on every port */
  tls?: { cert: Buffer; key: Buffer };
  /** per-kind retention in ms; the rest keep their defaults */
  retention?: Partial<Retention>;
  limits?: Partial<IngestLimits>;
  /** how often old data is deleted; default every minute */
  pruneEveryMs?: number;
  /** Fastify's logger option; default warnings and errors as JSON lines on stderr */
  logger?: FastifyServerOptions['logger'];
  /** a port of OTLP/HTTP's receiver alone (4318 is OTLP's), on `host`; the collector's own port takes `POST /v1/traces` too */
  otlpPort?: number;
  /** forward every stored trace as OTLP spans to this backend (base URL; traces go to URL/v1/traces), with these headers */
  otlpExport?: { endpoint: string; headers?: Record<string, string> };
  /** alert rules and their receivers (`loopscope up --rules FILE`: `loadRules(FILE)`) */
  rules?: RulesFile;
  /** what the quantiles of `GET /metrics` cover (ms); default the last 60 s */
  metricsWindowMs?: number;
}

export interface Collector {
  /** e.g. http://127.0.0.1:4400 (https:// with `tls`) */
  url: string;
  /** the OTLP port's base URL, when `otlpPort` was given */
  otlpUrl: string | undefined;
  storage: Storage;
  /** Stops accepting, lets requests in flight finish, then closes the storage. */
  close(): Promise<void>;
}

export const DEFAULT_PORT = 4400;
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_DATA_DIR = '.loopscope';

/** A certificate and key that cannot serve TLS fail here, before anything is opened, saying so. */
function checkTls(tls: { cert: Buffer; key: Buffer }): void {
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new TlsError(`the TLS certificate and key cannot serve HTTPS: ${(err as Error).message} (both must be PEM, the key the certificate's own)`);
  }
}

export class TlsError extends Error {}

export async function startCollector(options: CollectorOptions = {}): Promise<Collector> {
  const host = options.host ?? DEFAULT_HOST;
  if (options.tls) checkTls(options.tls);
  const retention = options.retention ?? {};
  // what the storage says while it opens (a full disk), said once the logger is there
  const early: string[] = [];
  let say = (message: string): void => void early.push(message);
  const storage =
    options.storageUrl === undefined
      ? openSqliteStorage({ dataDir: options.dataDir ?? DEFAULT_DATA_DIR, retention, warn: (message) => say(message) })
      : await openClickHouseStorage({ ...options.clickhouse, url: options.storageUrl, retention, queryTimeoutMs: options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS });
  const logger = options.logger ?? { level: 'warn', stream: process.stderr };
  let exporter: OtlpExporter | undefined;
  const warn = (message: string): void => app.log.warn(message);
  // (collectors on one ClickHouse evaluate the rules in turn, each under an id of its own)
  const holder = storage.kind === 'sqlite' ? 'sqlite' : randomUUID();
  const alerts = options.rules ? new AlertEngine(options.rules, storage, new Receivers(options.rules.receivers, warn, () => collectorUrl), warn, holder) : undefined;
  const { app, otlp } = buildServer({
    storage,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
    token: options.token,
    readToken: options.readToken,
    throttle: options.throttle,
    quotas: options.quotas,
    queryTimeoutMs: options.queryTimeoutMs,
    tls: options.tls,
    logger,
    otlpServer: options.otlpPort !== undefined,
    exporter: options.otlpExport ? (exporter = new OtlpExporter({ ...options.otlpExport, warn })) : undefined,
    alerts,
    ...(options.metricsWindowMs !== undefined ? { metricsWindowMs: options.metricsWindowMs } : {}),
  });
  say = warn;
  early.forEach(warn);
  try {
    await storage.prune(Date.now());
    await app.listen({ port: options.port ?? DEFAULT_PORT, host });
    await otlp?.listen({ port: options.otlpPort, host });
  } catch (err) {
    await otlp?.close();
    await app.close();
    await storage.close();
    throw err;
  }
  exporter?.start();
  const pruner = setInterval(() => {
    storage.prune(Date.now()).catch((err: unknown) => app.log.error({ err }, 'pruning failed'));
  }, options.pruneEveryMs ?? 60_000);
  pruner.unref();
  const base = (server: typeof app.server): string => {
    const address = server.address();
    return `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${typeof address === 'object' && address ? address.port : ''}`;
  };
  // (the receivers link back to it: they send nothing before alerts.start())
  const collectorUrl = base(app.server);
  alerts?.start();
  let closing: Promise<void> | undefined;
  return {
    url: collectorUrl,
    otlpUrl: otlp ? base(otlp.server) : undefined,
    storage,
    close() {
      closing ??= (async () => {
        clearInterval(pruner);
        await otlp?.close();
        await app.close();
        await exporter?.stop();
        await alerts?.stop();
        await storage.close();
      })();
      return closing;
    },
  };
}

export { buildServer, DEFAULT_QUERY_TIMEOUT_MS, VERSION } from './server.js';
export { openSqliteStorage, DB_FILE, SCHEMA_VERSION, type SqliteOptions } from './storage/sqlite.js';
export { openClickHouseStorage, parseClickHouseUrl, type ClickHouseOptions } from './storage/clickhouse/index.js';
export { ClickHouseError } from './storage/clickhouse/client.js';
export { DEFAULT_LIMITS, type IngestLimits } from './ingest.js';
export { DEFAULT_THROTTLE, type ThrottleOptions } from './access.js';
export { DEFAULT_QUOTAS, QUOTA_NAMES, OVERFLOW_INSTANCE, type Quotas } from './quotas.js';
export * from './storage/storage.js';
export { loadRules, parseRules, RulesError, RULE_METRICS, type Rule, type RulesFile, type Receiver } from './alerts/rules.js';
export { SIGNATURE_HEADER } from './alerts/receivers.js';
