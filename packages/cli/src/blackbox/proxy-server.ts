/**
 * The measuring reverse proxy: every request is forwarded to the target with httpxy (the maintained
 * TypeScript fork of node-http-proxy: bodies streamed both ways, keep-alive to the target,
 * WebSocket upgrades passed through, X-Forwarded-* headers), and timed as the client sees it:
 * from the moment the request is seen to the status line sent (first byte) and to the last byte
 * handed to the kernel (response). A target that cannot be reached gets a 502 with a body that says
 * why, recorded as an error. Shipping to the collector happens in the background and never holds
 * a request.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createProxyServer } from 'httpxy';
import { endpointName } from '@loopscope/protocol';
import type { Exchange, Recorder } from './recorder.js';

export interface ProxyOptions {
  /** the port to listen on (0: any free one) */
  port: number;
  host: string;
  /** the server in front of which the proxy stands, e.g. http://127.0.0.1:3000 */
  target: URL;
  recorder: Recorder;
}

export interface RunningProxy {
  url: string;
  close(): Promise<void>;
}

/** What the proxy knows about one request while it is in flight. */
interface Pending {
  t0: number;
  firstByte: number | undefined;
  failure: string | undefined;
  requestBytes: number;
  responseBytes: number;
}

const PENDING = Symbol('loopscope.proxy');
type Tracked = http.IncomingMessage & { [PENDING]?: Pending };

/** Why the target did not answer, or stopped answering, in words (the 502 body and the trace's error). */
export function targetFailure(target: URL, error: NodeJS.ErrnoException, midResponse: boolean): string {
  if (midResponse) return `target ${target.origin} closed the connection in the middle of the response (${error.code ?? error.message})`;
  const why =
    error.code === 'ECONNREFUSED'
      ? 'connection refused (nothing listens there)'
      : error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN'
        ? `its host name does not resolve (${error.code})`
        : error.code === 'ECONNRESET'
          ? 'it closed the connection without an answer (ECONNRESET)'
          : `${error.code ?? 'error'}: ${error.message}`;
  return `target ${target.origin} did not answer: ${why}`;
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { target, recorder } = options;
  const agent = new (target.protocol === 'https:' ? https : http).Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
  const proxy = createProxyServer({ target: target.href, agent, xfwd: true, ws: true });

  proxy.on('proxyReq', (_proxyReq, req: Tracked) => {
    const p = req[PENDING];
    // the body is piped to the target right after this event, in the same tick: nothing is missed
    if (p !== undefined) req.on('data', (chunk: Buffer) => (p.requestBytes += chunk.length));
  });

  proxy.on('proxyRes', (proxyRes, req: Tracked, res) => {
    const p = req[PENDING];
    if (p === undefined) return;
    proxyRes.on('data', (chunk: Buffer) => (p.responseBytes += chunk.length));
    // httpxy copies the status and headers right after this event; Node would hold them until the
    // first body byte: send them now, so that the client sees the first byte when the target sent it
    queueMicrotask(() => {
      if (res.writableEnded || res.destroyed) return;
      res.flushHeaders();
      p.firstByte = performance.now() - p.t0;
    });
  });

  proxy.on('error', (error: NodeJS.ErrnoException, req, res) => {
    const failure = targetFailure(target, error, res instanceof http.ServerResponse && res.headersSent);
    const p = (req as Tracked | undefined)?.[PENDING];
    if (p !== undefined) p.failure ??= failure;
    if (res instanceof http.ServerResponse) {
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
        res.end(`502 Bad Gateway\nloopscope proxy: ${failure}\n`);
      }
    } else res?.destroy(); // a WebSocket upgrade whose target did not answer
  });

  const server = http.createServer((req: Tracked, res) => {
    const t0 = performance.now();
    const p: Pending = { t0, firstByte: undefined, failure: undefined, requestBytes: 0, responseBytes: 0 };
    req[PENDING] = p;
    const done = (): void => {
      const response = performance.now() - t0;
      const status = res.headersSent ? res.statusCode : 0;
      // a client that leaves early is not the server's error (the agent does not count it either):
      // the request is recorded with the time until it left
      const firstByte = p.firstByte ?? (res.headersSent ? response : undefined);
      const exchange: Exchange = {
        endpoint: endpointName(req.method ?? 'GET', req.url ?? '/'),
        start: performance.timeOrigin + t0,
        response,
        firstByte,
        status,
        failure: p.failure,
        requestBytes: p.requestBytes,
        responseBytes: p.responseBytes,
        phases:
          firstByte === undefined
            ? [{ name: `forward to ${target.host}`, start: 0, end: response }]
            : [
                { name: `${target.host}: until the status line`, start: 0, end: firstByte },
                { name: `${target.host}: the body`, start: firstByte, end: response },
              ],
      };
      recorder.record(exchange);
    };
    // the last byte is handed to the kernel ('finish'), or the client went away first ('close')
    let recorded = false;
    const once = (): void => {
      if (recorded) return;
      recorded = true;
      done();
    };
    res.once('finish', once);
    res.once('close', once);
    void proxy.web(req, res);
  });
  server.on('upgrade', (req, socket, head) => void proxy.ws(req, socket as import('node:net').Socket, {}, head));

  server.listen(options.port, options.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // requests in flight get a moment to finish; then every connection goes
      const timer = setTimeout(() => server.closeAllConnections(), 2000);
      await closed;
      clearTimeout(timer);
      agent.destroy();
    },
  };
}
