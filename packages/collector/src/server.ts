/**
 * The collector's HTTP face (Fastify): `POST /v1/ingest` and the query API of GUIDE 3.3 on one
 * port. Every error is answered as `{ "error": "<message>" }`: 4xx for what the client got wrong,
 * 500 only for a fault of the collector itself (logged).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { HttpError } from './http-error.js';
import { decodeBody, parseBatch, type IngestLimits } from './ingest.js';
import { parseRange, parseTimeseries, parseTraces, requireService, type QueryString } from './query-params.js';
import type { Storage } from './storage/storage.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface ServerOptions {
  storage: Storage;
  limits: IngestLimits;
  /** when set, ingest requires `Authorization: Bearer <token>`; the query API stays open */
  token?: string | undefined;
  logger: FastifyServerOptions['logger'];
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

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function buildServer(options: ServerOptions): FastifyInstance {
  const { storage, limits } = options;
  const app = Fastify({ logger: options.logger, bodyLimit: limits.maxBodyBytes });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send({ error: clientMessage(err, limits) });
    request.log.error({ err, url: request.url }, 'internal error');
    return reply.code(500).send({ error: 'internal error of the collector; its log has the details' });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` }));

  app.get('/', async () => ({
    name: 'loopscope collector',
    version: VERSION,
    ingest: 'POST /v1/ingest',
    api: ['/api/health', '/api/services', '/api/endpoints', '/api/timeseries', '/api/traces', '/api/traces/:traceId', '/api/loop'],
  }));

  app.register(async (ingest) => {
    // the body is read as bytes: decompression and validation are ingest.ts's job
    ingest.removeAllContentTypeParsers();
    ingest.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    const expected = options.token === undefined ? undefined : digest(`Bearer ${options.token}`);
    if (expected) {
      // before the body is read: a client without the token does not get to upload 5 MB
      ingest.addHook('onRequest', async (request) => {
        const given = request.headers.authorization;
        if (given === undefined || !timingSafeEqual(digest(given), expected)) {
          throw new HttpError(401, 'missing or wrong ingest token: send Authorization: Bearer <token> (the collector was started with --token)');
        }
      });
    }
    ingest.post('/v1/ingest', async (request) => {
      const receivedAt = Date.now();
      const body = request.body instanceof Buffer ? request.body : Buffer.alloc(0);
      const header = request.headers['content-encoding'];
      const bytes = await decodeBody(body, Array.isArray(header) ? header.join(',') : header, limits);
      const batch = parseBatch(bytes, receivedAt);
      const { duplicate } = await storage.ingest(batch, receivedAt); // resolves after the commit
      return { ok: true, batchId: batch.batchId, duplicate };
    });
  });

  app.get('/api/health', async () => ({ status: 'ok', version: VERSION, storage: storage.kind }));

  app.get('/api/services', async (request) => storage.services(parseRange(request.query as QueryString, Date.now())));

  app.get('/api/endpoints', async (request) => {
    const q = request.query as QueryString;
    return storage.endpoints(requireService(q), parseRange(q, Date.now()));
  });

  app.get('/api/timeseries', async (request) => storage.timeseries(parseTimeseries(request.query as QueryString, Date.now())));

  app.get('/api/traces', async (request) => storage.traces(parseTraces(request.query as QueryString, Date.now())));

  app.get<{ Params: { traceId: string } }>('/api/traces/:traceId', async (request) => {
    const record = await storage.trace(request.params.traceId);
    if (!record) throw new HttpError(404, `no trace ${request.params.traceId} (it may be older than the trace retention)`);
    return record;
  });

  // Event-loop health arrives with its own issue; until then the shape with nothing measured.
  app.get('/api/loop', async (request) => {
    requireService(request.query as QueryString);
    return { delay: { p50: 0, p95: 0, p99: 0, max: 0, mean: 0 }, utilization: 0, gcPauseMs: 0, longTasks: [] };
  });

  return app;
}
