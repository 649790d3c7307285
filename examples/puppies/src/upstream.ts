// The outside world for the puppy service: an HTTP server that answers late on purpose.
//   GET /delay/:ms          answers after ms milliseconds
//   GET /echo/:id?delay=ms  answers {"id": ":id"} after delay milliseconds
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMain } from './is-main.js';

export interface Upstream {
  port: number;
  url: string;
  close(): Promise<void>;
}

const MAX_DELAY_MS = 60_000;

function reply(res: http.ServerResponse, delayMs: number, status: number, body: unknown): void {
  const ms = Number.isFinite(delayMs) ? Math.min(Math.max(delayMs, 0), MAX_DELAY_MS) : 0;
  setTimeout(() => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }, ms);
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://upstream');
  const [, route, arg = ''] = url.pathname.split('/');
  if (req.method === 'GET' && route === 'delay' && /^\d+$/.test(arg)) {
    reply(res, Number(arg), 200, { delayed: Number(arg) });
  } else if (req.method === 'GET' && route === 'echo' && arg !== '') {
    reply(res, Number(url.searchParams.get('delay') ?? 0), 200, { id: decodeURIComponent(arg) });
  } else {
    reply(res, 0, 404, { error: 'not found' });
  }
}

export function startUpstream(port = 0): Promise<Upstream> {
  const server = http.createServer(handle);
  // HTTP keep-alive is on; keep idle sockets longer than any client does, so that a client
  // never reuses a socket the server is closing.
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}

if (isMain(import.meta.url)) {
  const upstream = await startUpstream(Number(process.env.PORT ?? 4401));
  console.log(`upstream: ${upstream.url}  (GET /delay/:ms, GET /echo/:id?delay=ms)`);
}
