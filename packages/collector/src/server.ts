/**
 * The collector's HTTP face (Fastify): `POST /v1/ingest`, the query API (docs/collector.md) and the
 * dashboard on one port. Every error of ingest and the API is answered as `{ "error": "<message>" }`:
 * 4xx for what the client got wrong, 500 only for a fault of the collector itself (logged).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { HttpError } from './http-error.js';
import { Access, type ThrottleOptions } from './access.js';
import { QuotaKeeper, type Quotas } from './quotas.js';
import { decodeBody, parseBatch, type IngestLimits } from './ingest.js';
import { HOLDER_LOOKBACK_MS, holdersOf, waitWindow } from './holders.js';
import { assembleTrace, rootPart } from './trace-parts.js';
import { summarizePaths } from './path-summary.js';
import { WantedTraces, crossesServices, incomplete } from './wanted-traces.js';
import { buildServiceMap, callsTo, nodeOf, targetsOf } from './service-map.js';
import { parseHolders, parseLoop, parseMapCalls, parseRange, parseTimeseries, parseTraces, requireEndpoint, requireService, type QueryString } from './query-params.js';
import type { Storage } from './storage/storage.js';
import { otlpRoutes } from './otlp/routes.js';
import { OtlpAssembler } from './otlp/transactions.js';
import type { OtlpExporter } from './otlp/exporter.js';
import { DEFAULT_METRICS_WINDOW_MS, PrometheusCounters, renderMetrics } from './prometheus.js';
import type { AlertEngine } from './alerts/engine.js';
import type { ContextLossSite, CriticalPathSummary, ServiceMapCallTrace, ServiceMapCalls, WireBatch } from '@loopscope/protocol';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface ServerOptions {
  storage: Storage;
  limits: IngestLimits;
  /** when set, ingest requires `Authorization: Bearer <token>` */
  token?: string | undefined;
  /** when set, the query API and `/metrics` require `Authorization: Bearer <readToken>` (access.ts) */
  readToken?: string | undefined;
  /** how many wrong tokens an address may send, and in what time, before it is refused for a while */
  throttle?: Partial<ThrottleOptions> | undefined;
  /** the longest the query API and /metrics work on one answer before a 503 says it was cut off; default 10 s */
  queryTimeoutMs?: number | undefined;
  /** what one sender may send (quotas.ts): services, endpoints, instances, traces and long tasks per minute */
  quotas?: Partial<Quotas> | undefined;
  /** serve HTTPS with this certificate (PEM) and key, the OTLP port too */
  tls?: { cert: Buffer; key: Buffer } | undefined;
  logger: FastifyServerOptions['logger'];
  /** also build a server of OTLP's receiver alone, for the OTLP port (`loopscope up --otlp-port`) */
  otlpServer?: boolean;
  /** forwards what is stored to an OpenTelemetry backend (`loopscope up --otlp-endpoint`) */
  exporter?: OtlpExporter | undefined;
  /** the alert rules (`loopscope up --rules`): `GET /api/alerts` lists theirs */
  alerts?: AlertEngine | undefined;
  /** what the quantiles of `GET /metrics` cover; default the last 60 s */
  metricsWindowMs?: number;
}

export interface Servers {
  /** ingest, the query API, the dashboard, and OTLP's `POST /v1/traces` */
  app: FastifyInstance;
  /** `POST /v1/traces` alone, when asked for */
  otlp: FastifyInstance | undefined;
}

/** Messages for Fastify's own client errors that say what to do instead. */
function clientMessage(err: FastifyError, limits: IngestLimits): string {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Content-Type must be application/json (compress with Content-Encoding: gzip)';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `body is larger than ${limits.maxBodyBytes} bytes; send smaller batches`;
    default:
      return err.message;
  }
}

/** The dashboard's built files (`npm run build` makes them), wherever npm put the package. */
const DASHBOARD_DIR = fileURLToPath(new URL('dist/public/', import.meta.resolve('@loopscope/dashboard/package.json')));

/**
 * Sent with every answer: the dashboard runs only its own scripts and styles (no inline script, no
 * style attribute: the pages set styles through the DOM), talks only to its own origin, and is
 * never framed; no answer is sniffed as another type.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** A page of the dashboard (history routing), as opposed to a file or an API path. */
const isPagePath = (path: string): boolean => !path.startsWith('/api/') && !path.startsWith('/v1/') && !/\.[a-z0-9]+$/i.test(path);

/** What the read token guards: the data. The dashboard's files are the same for everyone, and a load balancer's health check needs no token. */
const isReadPath = (path: string): boolean => (path.startsWith('/api/') && path !== '/api/health') || path === '/metrics';

export const DEFAULT_QUERY_TIMEOUT_MS = 10_000;

/** `answer`, or a 503 that says so once `ms` have passed without it. */
function withDeadline<T>(answer: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const cutOff = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new HttpError(503, `the query took longer than ${ms} ms and was cut off (--query-timeout); ask for a shorter range`)), ms);
  });
  return Promise.race([answer, cutOff]).finally(() => clearTimeout(timer));
}

export function buildServer(options: ServerOptions): Servers {
  const { storage, limits } = options;
  const serverOptions = { logger: options.logger, bodyLimit: limits.maxBodyBytes, ...(options.tls ? { https: options.tls } : {}) };
  const app = Fastify(serverOptions);
  const access = new Access({ ingest: options.token, read: options.readToken }, options.throttle);
  const quotas = new QuotaKeeper(options.quotas);

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = err.statusCode ?? 500;
    if (err instanceof HttpError) reply.headers(err.headers);
    if (status >= 400 && status < 500) return reply.code(status).send({ error: clientMessage(err, limits) });
    // the storage cannot take or answer it now (RetryLater, ClickHouse unreachable): the sender tries again
    if (status === 503) return reply.code(503).header('retry-after', '5').send({ error: err.message });
    request.log.error({ err, url: request.url }, 'internal error');
    return reply.code(500).send({ error: 'internal error of the collector; its log has the details' });
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(SECURITY_HEADERS);
    return payload;
  });
  // every answer of the data is cut off at the query time limit (ClickHouse stops its query then too);
  // SQLite's queries run on the loop, bounded by the API's limits on ranges, steps and counts instead
  const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  app.addHook('onRoute', (route) => {
    if (!isReadPath(route.url)) return;
    const handler = route.handler;
    route.handler = function (request, reply) {
      return withDeadline(Promise.resolve(handler.call(this, request, reply)), queryTimeoutMs);
    };
  });
  if (access.guards('read')) {
    app.addHook('onRequest', async (request) => {
      if (isReadPath(request.url.split('?')[0]!)) access.check('read', request);
    });
  }
  const dashboard = existsSync(`${DASHBOARD_DIR}index.html`);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    // the dashboard's own routes (/service?..., /trace?...) are pages of its index.html
    if ((request.method === 'GET' || request.method === 'HEAD') && isPagePath(path)) {
      if (dashboard) return reply.header('cache-control', 'no-cache').sendFile('index.html');
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`loopscope collector ${VERSION}: the dashboard is not built. Run \`npm run build\` in the loopscope repository. The query API is at /api/.\n`);
    }
    return reply.code(404).send({ error: `no route ${request.method} ${path}` });
  });

  // The built files are named by their content hash, so they may be cached for good; index.html not.
  if (dashboard) {
    app.register(fastifyStatic, {
      root: DASHBOARD_DIR,
      index: 'index.html',
      cacheControl: false,
      setHeaders: (res, file) => res.setHeader('cache-control', file.endsWith('.html') ? 'no-cache' : 'public, max-age=31536000, immutable'),
    });
  }

  /** A target learned to be a service is taken as one for this long before a map's range. */
  const DEFAULT_TARGET_MEMORY_MS = 24 * 3_600_000;
  /** How many of each caller's slowest stored traces of the range `GET /api/servicemap/calls` looks into. */
  const MAP_CALLS_SCAN = 200;
  /** The most traces `GET /api/critical-path` sums (the newest), and the fewest drawn at random it takes alone. */
  const PATH_TRACES = 2000;
  const MIN_RANDOM_PATHS = 30;
  const wanted = new WantedTraces();
  const counters = new PrometheusCounters();
  /** After a batch is stored: traces across services that miss a part (the agents that hold one are asked for it), and which targets are services (the service map). */
  const stored = async (batch: WireBatch, receivedAt: number): Promise<void> => {
    counters.observe(batch);
    options.exporter?.offer(batch);
    for (const t of batch.traces) {
      if (!crossesServices(t)) continue;
      const parts = await storage.traceParts(t.traceId);
      wanted.note(t.traceId, incomplete(parts), receivedAt);
      for (const [target, service] of targetsOf(parts)) await storage.learnTarget(target, service, receivedAt);
    }
  };
  // OTLP spans waiting for their transaction, whichever port they came to
  const otlp = { storage, limits, assembler: new OtlpAssembler(), access, quotas, stored };
  app.register(async (scope) => otlpRoutes(scope, otlp));
  let otlpApp: FastifyInstance | undefined;
  if (options.otlpServer) {
    otlpApp = Fastify(serverOptions);
    otlpApp.register(async (scope) => otlpRoutes(scope, otlp));
    otlpApp.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}; this port takes OTLP/HTTP traces at POST /v1/traces` }));
  }
  app.register(async (ingest) => {
    // the body is read as bytes: decompression and validation are ingest.ts's job
    ingest.removeAllContentTypeParsers();
    ingest.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    // before the body is read: a client without the token does not get to upload 5 MB
    if (access.guards('ingest')) ingest.addHook('onRequest', async (request) => access.check('ingest', request));
    ingest.post('/v1/ingest', async (request) => {
      const receivedAt = Date.now();
      const body = request.body instanceof Buffer ? request.body : Buffer.alloc(0);
      const header = request.headers['content-encoding'];
      const bytes = await decodeBody(body, Array.isArray(header) ? header.join(',') : header, limits);
      const parsed = parseBatch(bytes, receivedAt);
      const { rejected } = parsed;
      const batch = quotas.admit(parsed.batch, receivedAt);
      const { duplicate } = await storage.ingest(batch, receivedAt); // resolves after the commit
      if (!duplicate) await stored(batch, receivedAt);
      // records left out of the batch: counted, and the sender told (it says so once)
      if (rejected !== undefined && !duplicate) {
        counters.reject(batch.service, rejected);
        request.log.warn({ service: batch.service, instance: batch.instance, rejected }, 'records of a batch left out');
      }
      const want = wanted.forAnswer(`${batch.service}\n${batch.instance}`, receivedAt);
      return { ok: true, batchId: batch.batchId, duplicate, ...(rejected !== undefined ? { rejected } : {}), ...(want.length > 0 ? { want } : {}) };
    });
  });

  app.get('/api/health', async (request, reply) => {
    // 503 while the storage does not answer (a load balancer's health check sends traffic elsewhere)
    const problem = await storage.check().then(
      () => undefined,
      (err: unknown) => (err as Error).message,
    );
    if (problem !== undefined) reply.code(503);
    return {
      status: problem === undefined ? 'ok' : 'unavailable',
      ...(problem === undefined ? {} : { error: problem }),
      version: VERSION,
      storage: storage.kind,
      // the rest (receivers' URLs among it) for readers only
      ...(access.allows('read', request) ? details() : {}),
    };
  });
  const details = (): object => ({
    // OTLP spans waiting for their transaction, and those that waited in vain
    otlpIn: { waiting: otlp.assembler.waiting, expired: otlp.assembler.expired },
    ...(options.exporter ? { otlpExport: options.exporter.stats } : {}),
    ...(storage.diskFull ? { diskFull: storage.diskFull } : {}),
    ...(options.alerts ? { alerts: { rules: options.alerts.ruleCount, failures: options.alerts.failures, receivers: options.alerts.receiverStats } } : {}),
    // what senders sent past the limits, per service (quotas.ts)
    limits: { ...quotas.limits, over: Object.fromEntries(quotas.over) },
  });

  app.get('/api/services', async (request) => storage.services(parseRange(request.query as QueryString, Date.now())));

  app.get('/api/endpoints', async (request) => {
    const q = request.query as QueryString;
    return storage.endpoints(requireService(q), parseRange(q, Date.now()));
  });

  app.get('/api/views', async (request) => {
    const q = request.query as QueryString;
    return storage.views(requireEndpoint(q), parseRange(q, Date.now()));
  });

  app.get('/api/timeseries', async (request) => storage.timeseries(parseTimeseries(request.query as QueryString, Date.now())));

  app.get('/api/traces', async (request) => storage.traces(parseTraces(request.query as QueryString, Date.now())));

  app.get('/api/servicemap', async (request) => {
    const range = parseRange(request.query as QueryString, Date.now());
    const [calls, targets, services] = await Promise.all([storage.calls(range), storage.targets(range.from - DEFAULT_TARGET_MEMORY_MS), storage.services(range)]);
    return buildServiceMap(calls, targets, services.map((s) => s.service));
  });

  // an edge of the map (caller and node) or a node: the stored traces that made those calls
  app.get('/api/servicemap/calls', async (request): Promise<ServiceMapCalls> => {
    const { node, caller, limit, ...range } = parseMapCalls(request.query as QueryString, Date.now());
    const [calls, targets] = await Promise.all([storage.calls(range), storage.targets(range.from - DEFAULT_TARGET_MEMORY_MS)]);
    const callers = caller !== undefined ? [caller] : [...new Set(calls.filter((c) => nodeOf(c.kind, c.target, targets) === node).map((c) => c.service))].sort();
    const ids = new Set<string>();
    for (const service of callers) for (const t of await storage.traces({ service, sort: 'slowest', limit: MAP_CALLS_SCAN, ...range })) ids.add(t.traceId);
    const found: ServiceMapCallTrace[] = [];
    const callerSet = new Set(callers);
    const list = [...ids];
    for (let i = 0; i < list.length; i += 16) {
      const parts = await Promise.all(list.slice(i, i + 16).map((id) => storage.traceParts(id)));
      for (const p of parts) found.push(...callsTo(p, node, callerSet, targets).filter((t) => t.start >= range.from && t.start < range.to));
    }
    // a service node: its endpoints that these calls reached, in how many of the traces
    const callee = node.startsWith('service:') ? node.slice('service:'.length) : undefined;
    const endpoints = new Map<string, number>();
    if (callee !== undefined) for (const t of found) for (const endpoint of t.callee) endpoints.set(endpoint, (endpoints.get(endpoint) ?? 0) + 1);
    found.sort((a, b) => b.longest.ms - a.longest.ms || b.start - a.start);
    return {
      node,
      caller: caller ?? null,
      callers,
      checked: ids.size,
      endpoints: [...endpoints].map(([endpoint, traces]) => ({ service: callee!, endpoint, traces })).sort((a, b) => b.traces - a.traces || a.endpoint.localeCompare(b.endpoint)),
      traces: found.slice(0, limit),
    };
  });

  app.get<{ Params: { traceId: string } }>('/api/traces/:traceId', async (request) => {
    const trace = assembleTrace(await storage.traceParts(request.params.traceId));
    if (!trace) throw new HttpError(404, `no trace ${request.params.traceId} (it may be older than the trace retention)`);
    return trace;
  });

  // who held the loop during each of a trace's waits: long tasks and other traces of its process
  app.get<{ Params: { traceId: string } }>('/api/traces/:traceId/holders', async (request) => {
    const { traceId, limit } = parseHolders(request.params.traceId, request.query as QueryString);
    // the root's waits (a trace of several services: its first part)
    const source = rootPart(await storage.traceParts(traceId));
    if (!source) throw new HttpError(404, `no trace ${traceId} (it may be older than the trace retention)`);
    const { record, instance } = source;
    const window = waitWindow(record);
    const work = window ? await storage.loopWork({ service: record.service, instance, lookback: HOLDER_LOOKBACK_MS, ...window }) : { longTasks: [], traces: [] };
    return holdersOf(record, instance, work, limit);
  });

  // where an endpoint's time goes: its traces' critical paths summed per step (path-summary.ts); the
  // ones drawn at random when there are enough of them, an unbiased sample
  app.get('/api/critical-path', async (request): Promise<CriticalPathSummary> => {
    const q = request.query as QueryString;
    const query = { service: requireService(q), endpoint: requireEndpoint(q), ...parseRange(q, Date.now()), limit: PATH_TRACES };
    const random = await storage.traceRecords({ ...query, atRandom: true });
    if (random.length >= MIN_RANDOM_PATHS) return summarizePaths(random, 'random');
    return summarizePaths(await storage.traceRecords({ ...query, atRandom: false }), 'all');
  });

  // where the service's requests lost their context, per call site (the agent's context-loss.ts)
  app.get('/api/context-loss', async (request): Promise<ContextLossSite[]> => {
    const q = request.query as QueryString;
    return storage.contextLoss(requireService(q), parseRange(q, Date.now()));
  });

  app.get('/api/loop', async (request) => storage.loop(parseLoop(request.query as QueryString, Date.now())));

  // Prometheus's scrape (docs/alerts.md)
  const metricsWindowMs = options.metricsWindowMs ?? DEFAULT_METRICS_WINDOW_MS;
  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(await renderMetrics(counters, storage, Date.now(), metricsWindowMs, { refused: access.refused, over: quotas.over })),
  );

  app.get('/api/alerts', async () => options.alerts?.list() ?? []);
  app.get('/api/rules', async () => options.alerts?.rules() ?? []);

  return { app, otlp: otlpApp };
}
