// The async scenario's upstream: answers every request after UPSTREAM_DELAY_MS (default 5) ms.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServerMessage } from './harness.js';

const delayMs = Number(process.env.UPSTREAM_DELAY_MS ?? 5);
const server = http.createServer((_req, res) => {
  setTimeout(() => res.end('ok'), delayMs);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const message: ServerMessage = { type: 'listening', port: (server.address() as AddressInfo).port };
  process.send?.(message);
});
