// The server side of the ingest and storage benchmarks, in a process of its own (forked with IPC):
//   collector [URL]  a real collector (startCollector) with its SQLite file in a temp directory, or
//                    on the ClickHouse database of URL (clickhouse://...)
//   discard    a plain node:http server that reads each body and throws it away: the transport floor
// It tells the driver its port, and its own CPU time between the driver's 'start' and 'stop'.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCollector } from '@loopscope/collector';

export type TargetMessage = { type: 'listening'; port: number; dataDir?: string } | { type: 'usage'; cpuUs: number };

const send = (m: TargetMessage): void => void process.send?.(m);

let cpuAtStart = process.cpuUsage();
process.on('message', (message) => {
  if (message === 'start') cpuAtStart = process.cpuUsage();
  else if (message === 'stop') {
    const { user, system } = process.cpuUsage(cpuAtStart);
    send({ type: 'usage', cpuUs: user + system });
  }
});

if (process.argv[2] === 'collector') {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'loopscope-bench-'));
  const storageUrl = process.argv[3];
  // (the benchmark's senders stand for many agents of one service: every trace they send is stored, as before the limits)
  const quotas = { tracesPerMinute: Number.MAX_SAFE_INTEGER };
  const collector = await startCollector({ port: 0, dataDir, logger: false, quotas, ...(storageUrl ? { storageUrl } : {}) });
  process.once('disconnect', () => {
    void collector.close().then(() => rmSync(dataDir, { recursive: true, force: true }));
  });
  send({ type: 'listening', port: Number(new URL(collector.url).port), dataDir });
} else {
  const server = http.createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1', () => send({ type: 'listening', port: (server.address() as AddressInfo).port }));
  process.once('disconnect', () => server.close());
}
