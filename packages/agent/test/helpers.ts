/** Real parts for the agent's tests: an upstream and a client in processes of their own. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@loopscope/protocol';
import { onTransactionEnd } from '../src/index.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

export function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** The middle value (the upper one of an even count): a shared machine can stall any single run, never most. */
export function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

export async function startUpstream(): Promise<{ url: string; close(): void }> {
  const child = spawn(process.execPath, [fixture('upstream.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${chunk.toString().trim()}`, close: () => child.kill() };
}

export interface ClientResult {
  id: number;
  ms: number;
  /** when the client sent the request, ms since the epoch */
  sentAt: number;
  status: number;
  body: string;
}

export async function startClient(): Promise<{ get(url: string): Promise<ClientResult>; close(): void }> {
  const child: ChildProcess = fork(fixture('client.js'), { stdio: 'inherit' });
  await once(child, 'message');
  let next = 0;
  const waiting = new Map<number, (r: ClientResult) => void>();
  child.on('message', (msg: ClientResult) => waiting.get(msg.id)?.(msg));
  return {
    get(url: string) {
      const id = ++next;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        child.send({ id, url });
      });
    },
    close: () => child.disconnect(),
  };
}

export async function listen(server: http.Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Collects finished transactions; `next(endpoint)` waits for the next one of that endpoint. */
export interface Recorder {
  all: TransactionRecord[];
  /** The next transaction of `endpoint` not handed out yet (waits for it). */
  next(endpoint: string): Promise<TransactionRecord>;
  /** Waits until nothing has finished for 50 ms, then forgets everything handed out so far. */
  drain(): Promise<void>;
  stop(): void;
}

export function recorder(): Recorder {
  const all: TransactionRecord[] = [];
  const waiters: Array<{ endpoint: string; resolve: (r: TransactionRecord) => void }> = [];
  const seen = new Map<string, number>();
  const stop = onTransactionEnd((record) => {
    all.push(record);
    const i = waiters.findIndex((w) => w.endpoint === record.endpoint);
    if (i !== -1) waiters.splice(i, 1)[0]!.resolve(record);
  });
  return {
    all,
    stop,
    async drain() {
      let count = -1;
      while (count !== all.length) {
        count = all.length;
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const r of all) seen.set(r.endpoint, all.filter((x) => x.endpoint === r.endpoint).length);
    },
    next(endpoint: string) {
      const from = seen.get(endpoint) ?? 0;
      const found = all.filter((r) => r.endpoint === endpoint)[from];
      seen.set(endpoint, from + 1);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ endpoint, resolve }));
    },
  };
}

/** GET over node:http from this process (not traced: no transaction here); resolves with the body. */
export function get(url: string, agent?: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, agent === undefined ? {} : { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Not compiled: the source's fixtures/report.mjs. */
const reportModule = fileURLToPath(new URL('../../test/fixtures/report.mjs', import.meta.url));

export interface SpawnedApp {
  url: string;
  /** The records written so far, once there are `count` of them (or the time is up). */
  records(count: number, timeoutMs?: number): Promise<TransactionRecord[]>;
  stderr(): string;
  stop(): void;
}

/**
 * Starts `node [preload] app` in `cwd`, with every finished transaction written to a file
 * (fixtures/report.mjs is imported after `preload`); the app prints `listening <port>`.
 */
export async function spawnApp(preload: string[], app: string, cwd: string, env: Record<string, string> = {}): Promise<SpawnedApp> {
  const report = join(mkdtempSync(join(tmpdir(), 'loopscope-')), 'records.jsonl');
  const child = spawn(process.execPath, [...preload, '--import', reportModule, app], {
    cwd,
    env: { ...process.env, REPORT_FILE: report, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const [chunk] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')])) as [Buffer | number | null];
  const stdout = chunk instanceof Buffer ? chunk.toString() : '';
  const port = /listening (\d+)/.exec(stdout)?.[1];
  if (port === undefined) throw new Error(`${app} did not start: ${stdout}${stderr}`);
  return {
    url: `http://127.0.0.1:${port}`,
    async records(count: number, timeoutMs = 5000): Promise<TransactionRecord[]> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // complete lines only: the app may be halfway through appending one
        const text = existsSync(report) ? readFileSync(report, 'utf8') : '';
        const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
        if (lines.length >= count || Date.now() > deadline) return lines.map((l) => JSON.parse(l) as TransactionRecord);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stderr: () => stderr,
    stop: () => child.kill(),
  };
}
