/** Real parts for the agent's tests: an upstream and a client in processes of their own. */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
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

/** How long a test waits for something it expects before it fails saying what it waited for. */
export const DEADLINE_MS = 10_000;

/**
 * `promise`, or, if it has not settled within `ms`, a rejection that says what was awaited: a wait
 * that fails shows as this message, not as the test runner's timeout.
 */
export function deadline<T>(what: string, promise: Promise<T>, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Polls `probe` (every `everyMs`) until it returns something other than undefined, and returns that;
 * fails saying what was awaited (and, from `detail`, what was seen instead) once `ms` have passed.
 */
export async function until<T>(what: string, probe: () => T | undefined, ms = DEADLINE_MS, detail?: () => string, everyMs = 5): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${detail === undefined ? '' : `: ${detail()}`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The first line a child process prints (its port, or `ready`), or a failure saying it never did. */
export async function firstLine(child: ChildProcess, what: string): Promise<string> {
  const exited = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`${what} exited (${String(code ?? signal)}) before it printed its first line`);
  });
  exited.catch(() => {}); // once it has printed, its exit is no failure
  const [chunk] = (await deadline(`${what} to start`, Promise.race([once(child.stdout!, 'data'), exited]))) as [Buffer];
  return chunk.toString().trim();
}

export async function startUpstream(): Promise<{ url: string; close(): void }> {
  const child = spawn(process.execPath, [fixture('upstream.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { url: `http://127.0.0.1:${await firstLine(child, 'the upstream')}`, close: () => child.kill() };
}

export interface ClientResult {
  id: number;
  ms: number;
  /** when the client's request was handed to its socket (ms since the epoch): see fixtures/client.ts */
  sentAt: number;
  status: number;
  body: string;
}

export async function startClient(): Promise<{ get(url: string): Promise<ClientResult>; close(): void }> {
  const child: ChildProcess = fork(fixture('client.js'), { stdio: 'inherit' });
  await deadline('the client process to start', once(child, 'message'));
  let next = 0;
  const waiting = new Map<number, (r: ClientResult) => void>();
  child.on('message', (msg: ClientResult) => waiting.get(msg.id)?.(msg));
  return {
    get(url: string) {
      const id = ++next;
      const answer = new Promise<ClientResult>((resolve) => {
        waiting.set(id, resolve);
        child.send({ id, url });
      });
      return deadline(`the client's answer to GET ${url}`, answer).finally(() => waiting.delete(id));
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
  /**
   * The next transaction of `endpoint` not handed out yet; waits for it, and fails after
   * `timeoutMs` saying which endpoint it waited for and what did finish.
   */
  next(endpoint: string, timeoutMs?: number): Promise<TransactionRecord>;
  /**
   * Waits until `count` transactions have finished since the recorder started (failing after
   * `timeoutMs`), then hands out all of them: `next` waits for the ones after. For a warm-up whose
   * transactions the test does not look at.
   */
  settle(count: number, timeoutMs?: number): Promise<void>;
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
  const finished = (): string => {
    const counts = new Map<string, number>();
    for (const r of all) counts.set(r.endpoint, (counts.get(r.endpoint) ?? 0) + 1);
    return counts.size === 0 ? 'none finished' : `finished so far: ${[...counts].map(([e, n]) => `${n} × ${e}`).join(', ')}`;
  };
  return {
    all,
    stop,
    async settle(count: number, timeoutMs = DEADLINE_MS) {
      await until(`${count} finished transactions`, () => (all.length >= count ? true : undefined), timeoutMs, finished);
      for (const r of all) seen.set(r.endpoint, all.filter((x) => x.endpoint === r.endpoint).length);
    },
    next(endpoint: string, timeoutMs = DEADLINE_MS) {
      const from = seen.get(endpoint) ?? 0;
      const found = all.filter((r) => r.endpoint === endpoint)[from];
      seen.set(endpoint, from + 1);
      if (found !== undefined) return Promise.resolve(found);
      const waiter = { endpoint, resolve: (_: TransactionRecord) => {} };
      const arrived = new Promise<TransactionRecord>((resolve) => {
        waiter.resolve = resolve;
        waiters.push(waiter);
      });
      return deadline(`finished transaction no. ${from + 1} of ${endpoint}`, arrived, timeoutMs).catch((error: Error) => {
        const i = waiters.indexOf(waiter);
        if (i !== -1) waiters.splice(i, 1);
        throw new Error(`${error.message} (${finished()})`);
      });
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
  /**
   * The records written so far, once there are `count` of them; fails after `timeoutMs` saying
   * how many there were (and what the app printed on stderr).
   */
  records(count: number, timeoutMs?: number): Promise<TransactionRecord[]>;
  stderr(): string;
  /** Ends the app (SIGTERM) and resolves once it has exited: nothing it does is left to come. */
  stop(): Promise<void>;
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
  const exited = once(child, 'exit');
  exited.catch(() => {}); // a failure to spawn shows in the race below
  const [chunk] = (await deadline(`${app} to print its port`, Promise.race([once(child.stdout!, 'data'), exited]))) as [Buffer | number | null];
  const stdout = chunk instanceof Buffer ? chunk.toString() : '';
  const port = /listening (\d+)/.exec(stdout)?.[1];
  if (port === undefined) throw new Error(`${app} did not start: ${stdout}${stderr}`);
  const written = (): TransactionRecord[] => {
    // complete lines only: the app may be halfway through appending one
    const text = existsSync(report) ? readFileSync(report, 'utf8') : '';
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((l) => JSON.parse(l) as TransactionRecord);
  };
  return {
    url: `http://127.0.0.1:${port}`,
    async records(count: number, timeoutMs = 5000): Promise<TransactionRecord[]> {
      return until(`${count} record(s) from ${app}`, () => {
        const records = written();
        return records.length >= count ? records : undefined;
      }, timeoutMs, () => `${written().length} written; its stderr: ${stderr.slice(-2000)}`, 20);
    },
    stderr: () => stderr,
    async stop(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await deadline(`${app} to exit`, exited);
    },
  };
}

/**
 * Runs `node [flags] --import loopscope/register --import ./report.mjs <app>` in test/fixtures to its end,
 * every finished transaction written to a file: its exit status, its output, and those records.
 */
export function runToEnd(flags: string[], app: string, timeoutMs: number): { status: number | null; stdout: string; stderr: string; records: TransactionRecord[] } {
  const report = join(mkdtempSync(join(tmpdir(), 'loopscope-')), 'records.jsonl');
  const run = spawnSync(process.execPath, [...flags, '--import', 'loopscope/register', '--import', './report.mjs', app], {
    cwd: fileURLToPath(new URL('../../test/fixtures/', import.meta.url)),
    env: { ...process.env, REPORT_FILE: report, LOOPSCOPE_COLLECTOR: 'off' },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  const text = existsSync(report) ? readFileSync(report, 'utf8') : '';
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, records: text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as TransactionRecord) };
}

/** What fixtures/fingerprint.mjs reports of its process. */
export interface Fingerprint {
  body: string;
  /** what changed in the process once loopscope was loaded, started and used */
  changed: string[];
  /** what the process saw at the end: each patched function's source text, each flag */
  seen: Record<string, string>;
  /** the transactions delivered to an onTransactionEnd listener */
  delivered: string[];
  /** with FINGERPRINT_API_FIRST=1: what the API changed before the start, and what its calls returned */
  changedBeforeStart: string[] | null;
  beforeStart: { wrapped: boolean; job: number; asyncJob: unknown } | null;
}

/** Runs `node [preload] fingerprint.mjs` with `env` (and LOOPSCOPE_COLLECTOR=off) and returns its report. */
export async function fingerprint(preload: string[], env: Record<string, string>): Promise<Fingerprint> {
  const child = spawn(process.execPath, [...preload, 'fingerprint.mjs'], {
    cwd: fileURLToPath(new URL('../../test/fixtures/', import.meta.url)),
    env: { ...process.env, LOOPSCOPE_COLLECTOR: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const [code] = (await deadline(`node ${preload.join(' ')} fingerprint.mjs to exit`, once(child, 'exit'))) as [number | null];
  if (code !== 0) throw new Error(`fingerprint.mjs exited with ${code}: ${err}`);
  return JSON.parse(out) as Fingerprint;
}
