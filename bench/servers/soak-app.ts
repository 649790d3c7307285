// The soak benchmark's app, run under the agent (`--import loopscope/register`): a mix of
// endpoints, each a kind of request an app serves (the driver picks the mix):
//   /fast          answers at once
//   /io            three parallel calls to the upstream (node:http, 5 ms each), then answers
//   /users/:id     reads a small file (fs.promises) and answers it; a different id every request
//   /slow          fetch (undici) of the upstream's /delay/200, then answers
//   /cpu           5 ms of CPU, then answers
//   /fail          a call to the upstream, then a 500
//   /abort         answers after 300 ms: the driver's client has gone away at 50 ms
//   /after         answers, then works on for 100 ms (a timer, then a call to the upstream)
// It counts the requests it received and, through the agent's onTransactionEnd, the transactions
// the agent closed (truncated, aborted, errors and invalid ones among them), and sends them with its memory when
// the driver asks ('report' over IPC; 'memory' as soak-memory.ts).
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTransactionEnd } from 'loopscope';
import { burn } from './harness.js';
import { answerMemory } from './soak-memory.js';

export interface SoakAppReport {
  type: 'report';
  /** requests the server's listener was called for */
  requests: number;
  /** transactions the agent closed and delivered, and of them */
  transactions: number;
  truncated: number;
  aborted: number;
  /** records with a segment that ends before it starts (the collector would refuse their traces) */
  inverted: number;
  errors: number;
  byEndpoint: Record<string, number>;
}
export type SoakAppMessage = { type: 'listening'; port: number } | SoakAppReport;

const upstream = process.env.UPSTREAM_URL!;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const dir = mkdtempSync(join(tmpdir(), 'loopscope-soak-app-'));
const file = join(dir, 'user.json');
writeFileSync(file, JSON.stringify({ name: 'x'.repeat(200) }));

function call(path = '/'): Promise<void> {
  return new Promise((resolve, reject) => {
    http.get(new URL(path, upstream), { agent }, (res) => res.on('end', resolve).on('error', reject).resume()).on('error', reject);
  });
}

const report: SoakAppReport = { type: 'report', requests: 0, transactions: 0, truncated: 0, aborted: 0, inverted: 0, errors: 0, byEndpoint: {} };
onTransactionEnd((tx) => {
  report.transactions++;
  if (tx.truncated) report.truncated++;
  if (tx.aborted === true) report.aborted++;
  if (tx.error) report.errors++;
  if (tx.segments.some((s) => s.end < s.start)) report.inverted++;
  report.byEndpoint[tx.endpoint] = (report.byEndpoint[tx.endpoint] ?? 0) + 1;
});

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = req.url ?? '/';
  if (path === '/fast') res.end('ok\n');
  else if (path === '/io') {
    await Promise.all([call(), call(), call()]);
    res.end('done\n');
  } else if (path.startsWith('/users/')) res.end(await readFile(file));
  else if (path === '/slow') {
    const answer = await fetch(new URL('/delay/200', upstream));
    await answer.text();
    res.end('slow\n');
  } else if (path === '/cpu') {
    burn(5);
    res.end('cpu\n');
  } else if (path === '/fail') {
    await call();
    res.writeHead(500).end('failed\n');
  } else if (path === '/abort') {
    await new Promise((resolve) => setTimeout(resolve, 300));
    res.end('too late\n');
  } else if (path === '/after') {
    res.end('answered\n');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await call();
  } else res.writeHead(404).end();
}

const server = http.createServer((req, res) => {
  report.requests++;
  handle(req, res).catch((err: unknown) => {
    if (!res.headersSent) res.writeHead(502);
    res.end(String(err));
  });
});
// the driver's keep-alive sockets are never closed under it
server.keepAliveTimeout = 65_000;

answerMemory();
process.on('message', (message) => {
  if (message === 'report') process.send?.(report);
});
server.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port } satisfies SoakAppMessage);
});
