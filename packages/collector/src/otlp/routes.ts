/**
 * `POST /v1/traces` on a Fastify instance: the collector's own port, and the OTLP port (4318) when
 * `loopscope up --otlp-port` asks for it. Every answer, errors too, is in the request's encoding
 * (OTLP/HTTP): a protobuf ExportTraceServiceResponse or google.rpc.Status, or their JSON.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../http-error.js';
import type { Access } from '../access.js';
import type { QuotaKeeper } from '../quotas.js';
import { decodeBody, type IngestLimits } from '../ingest.js';
import type { WireBatch } from '@loopscope/protocol';
import type { Storage } from '../storage/storage.js';
import { decodeTraces, encodingOf, errorBody, receive, successBody, type OtlpEncoding } from './receiver.js';
import type { OtlpAssembler } from './transactions.js';

export interface OtlpRouteOptions {
  storage: Storage;
  limits: IngestLimits;
  assembler: OtlpAssembler;
  /** the ingest token's check */
  access: Access;
  /** what one sender may send */
  quotas: QuotaKeeper;
  /** what the collector does with a batch once stored (traces across services, the service map) */
  stored: (batch: WireBatch, receivedAt: number) => Promise<void>;
}

const encodingOfRequest = (request: FastifyRequest): OtlpEncoding => {
  try {
    return encodingOf(request.headers['content-type']);
  } catch {
    return 'json';
  }
};

function send(reply: FastifyReply, encoding: OtlpEncoding, status: number, body: Buffer | object): FastifyReply {
  return reply
    .code(status)
    .type(encoding === 'json' ? 'application/json' : 'application/x-protobuf')
    .send(body);
}

export async function otlpRoutes(app: FastifyInstance, options: OtlpRouteOptions): Promise<void> {
  const { storage, limits, assembler } = options;
  // every body as bytes: the content type is checked by the route, which answers in kind
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = err instanceof HttpError ? err.statusCode : (err.statusCode ?? 500);
    if (err instanceof HttpError) reply.headers(err.headers);
    // a 503 (the storage cannot take it now: a full disk, ClickHouse away) says why, and when to try again
    const message =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `body is larger than ${limits.maxBodyBytes} bytes; send smaller batches` : status >= 500 && status !== 503 ? 'internal error of the collector; its log has the details' : err.message;
    if (status === 503) reply.header('retry-after', '5');
    else if (status >= 500) request.log.error({ err, url: request.url }, 'internal error');
    const encoding = encodingOfRequest(request);
    return send(reply, encoding, status, errorBody(encoding, status, message));
  });
  if (options.access.guards('ingest')) app.addHook('onRequest', async (request) => options.access.check('ingest', request));
  app.post('/v1/traces', async (request, reply) => {
    const receivedAt = Date.now();
    const encoding = encodingOf(request.headers['content-type']);
    const body = request.body instanceof Buffer ? request.body : Buffer.alloc(0);
    const header = request.headers['content-encoding'];
    const bytes = await decodeBody(body, Array.isArray(header) ? header.join(',') : header, limits);
    const { batches, rejected, reason } = receive(decodeTraces(bytes, encoding), assembler, receivedAt);
    for (const assembled of batches) {
      let batch;
      try {
        batch = options.quotas.admit(assembled, receivedAt);
      } catch {
        continue; // a service past the service limit (counted)
      }
      await storage.ingest(batch, receivedAt);
      await options.stored(batch, receivedAt);
    }
    return send(reply, encoding, 200, successBody(encoding, rejected, reason));
  });
}
