// What every benchmarked server shares: it listens on 127.0.0.1, tells the driver its port over
// IPC, and measures its own CPU time per request between the driver's 'start' and 'stop'.
// Knows nothing of any agent: the variant under test is chosen by how node is started.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type ServerMessage =
  | { type: 'listening'; port: number }
  | { type: 'usage'; cpuUs: number; userUs: number; requests: number; heapStartBytes: number; heapEndBytes: number; maxRssBytes: number };

function send(message: ServerMessage): void {
  process.send?.(message);
}

/**
 * The heap in use after a full collection: what the process keeps. Taken outside the CPU window
 * (the collection costs CPU), so that memory held per request (context kept alive by a closure,
 * an agent's retained frames) shows as growth over the window without changing the CPU figure.
 */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;
function heapAfterGc(): number {
  collect();
  return process.memoryUsage().heapUsed;
}

export function serve(handler: http.RequestListener): void {
  let requests = 0;
  let heapStartBytes = 0;
  let cpuAtStart = process.cpuUsage();
  const server = http.createServer((req, res) => {
    requests++;
    handler(req, res);
  });

  process.on('message', (message) => {
    if (message === 'start') {
      heapStartBytes = heapAfterGc();
      requests = 0;
      cpuAtStart = process.cpuUsage();
    } else if (message === 'stop') {
      const { user, system } = process.cpuUsage(cpuAtStart);
      const served = requests;
      const heapEndBytes = heapAfterGc();
      send({ type: 'usage', cpuUs: user + system, userUs: user, requests: served, heapStartBytes, heapEndBytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 });
    }
  });

  server.listen(0, '127.0.0.1', () => {
    send({ type: 'listening', port: (server.address() as AddressInfo).port });
  });
}

/** A fixed amount of work: `iterations` rounds of arithmetic the JIT cannot remove. */
export function spin(iterations: number): number {
  let x = 0;
  for (let i = 0; i < iterations; i++) x = (x * 31 + i) % 1_000_003;
  return x;
}

/**
 * Keeps the CPU busy for `ms` milliseconds. With BENCH_SPIN_PER_MS set (by a driver that counts
 * instructions, where the clock runs slow), it does the same amount of work by count instead.
 */
const spinPerMs = Number(process.env.BENCH_SPIN_PER_MS ?? 0);
export function burn(ms: number): void {
  if (spinPerMs > 0) {
    spin(Math.round(ms * spinPerMs));
    return;
  }
  const end = performance.now() + ms;
  while (performance.now() < end);
}
