// The upstream of the async and puppies scenarios: answers `GET /delay/N` after N ms and any other
// request after UPSTREAM_DELAY_MS (default 5) ms.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerMessage } from './harness.js';

const defaultDelayMs = Number(process.env.UPSTREAM_DELAY_MS ?? 5);
const server = http.createServer((req, res) => {
  const asked = /^\/delay\/(\d+)$/.exec(req.url ?? '');
  setTimeout(() => res.end('ok'), asked === null ? defaultDelayMs : Number(asked[1]));
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const message: ServerMessage = { type: 'listening', port: (server.address() as AddressInfo).port };
  process.send?.(message);
});
