// Scenario of the start-up benchmark: the example app of examples/frameworks/$FRAMEWORK (Express 4
// by default), required as CommonJS and served on node:http. It reports, when it listens, how long
// its process took to get there (performance.now(): ms since the process started) and the CPU time
// it spent (every thread's, since the start); then, at each 'usage', the CPU time and the requests
// since the last report. Knows nothing of any agent.
import type http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

export type StartupMessage =
  | { type: 'listening'; port: number; upMs: number; startCpuUs: number }
  | { type: 'usage'; cpuUs: number; requests: number };

const send = (message: StartupMessage): void => void process.send?.(message);

const name = process.env.FRAMEWORK ?? 'express4';
if (!/^[a-z]+\d$/.test(name)) throw new Error(`FRAMEWORK=${name}: expected a folder of examples/frameworks`);
const require = createRequire(import.meta.url);
const handler = (await require(`../../../examples/frameworks/${name}/handler.cjs`)) as http.RequestListener;
// node:http as a CommonJS app gets it: an ES module's `import` of it makes Node load its fetch
// (undici) too, which the app would then pay with or without an agent
const { createServer } = require('node:http') as typeof http;

let requests = 0;
let cpuAt = process.cpuUsage();
const server = createServer((req, res) => {
  requests++;
  handler(req, res);
});
server.listen(0, '127.0.0.1', () => {
  const upMs = performance.now();
  const { user, system } = process.cpuUsage();
  cpuAt = process.cpuUsage();
  requests = 0;
  send({ type: 'listening', port: (server.address() as AddressInfo).port, upMs, startCpuUs: user + system });
});
process.on('message', (message) => {
  if (message !== 'usage') return;
  const { user, system } = process.cpuUsage(cpuAt);
  send({ type: 'usage', cpuUs: user + system, requests });
  cpuAt = process.cpuUsage();
  requests = 0;
});
