/** What the end-to-end tests share: an app under the agent in a process of its own, HTTP from the test, waiting. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TransactionRecord } from '@loopscope/protocol';

export const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
/** the compiled `loopscope` command */
export const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

export interface Command {
  child: ChildProcess;
  /** its first line on stdout (the ready line) */
  line: string;
  stdout(): string;
  stderr(): string;
  /** SIGTERM and wait for the exit */
  stop(): Promise<void>;
}

/** Starts `loopscope ...args` and waits for its first line on stdout. */
export async function startCommand(args: string[], env: Record<string, string> = {}): Promise<Command> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c;
      if (stdout.includes('\n')) resolve(stdout.slice(0, stdout.indexOf('\n') + 1));
    });
    child.once('exit', (code) => reject(new Error(`loopscope ${args.join(' ')} exited with ${code}: ${stderr}`)));
  });
  child.removeAllListeners('exit');
  return {
    child,
    line,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Runs `loopscope ...args` to its end. */
/** The command as users start it (bin/loopscope.js, which checks the Node.js first). */
export const BIN = fileURLToPath(new URL('../../bin/loopscope.js', import.meta.url));

export async function runCommand(args: string[], node = process.execPath, script = MAIN): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(node, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c));
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

export const tempDir = (): string => mkdtempSync(join(tmpdir(), 'loopscope-e2e-'));

export interface App {
  url: string;
  child: ChildProcess;
  /** every transaction the agent finished, as its onTransactionEnd listener wrote them */
  records(): TransactionRecord[];
  /** what it wrote on stderr so far, when started with `stderr: 'pipe'` */
  stderr(): string;
}

/** `node --import loopscope/register fixtures/<file>` (or a file elsewhere, by its absolute path) shipping to `collector`; env on top. */
export async function startApp(file: string, collector: string, env: Record<string, string>, stderr: 'inherit' | 'pipe' = 'inherit'): Promise<App> {
  const report = join(tempDir(), 'records.jsonl');
  const child = spawn(process.execPath, ['--import', 'loopscope/register', resolve(fixtures, file)], {
    cwd: fixtures,
    env: { ...process.env, LOOPSCOPE_COLLECTOR: collector, REPORT_FILE: report, ...env },
    stdio: ['ignore', 'pipe', stderr],
  });
  let written = '';
  child.stderr?.on('data', (c: Buffer) => (written += c));
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return {
    url: `http://127.0.0.1:${/listening (\d+)/.exec(line.toString())![1]}`,
    child,
    stderr: () => written,
    records: () => {
      // complete lines only: the app may be halfway through appending one
      const text = existsSync(report) ? readFileSync(report, 'utf8') : '';
      return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((l) => JSON.parse(l) as TransactionRecord);
    },
  };
}

/** SIGTERM (the agent ships what is left) and wait for the exit. */
export async function stopApp(app: App): Promise<void> {
  if (app.child.exitCode !== null || app.child.signalCode !== null) return;
  app.child.kill('SIGTERM');
  await once(app.child, 'exit');
}

const pool = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** GET from the test process (which runs no agent); resolves with status and body. */
export function get(url: string, agent: http.Agent = pool): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** A query API answer that must be a 200. */
export async function api<T>(base: string, path: string): Promise<T> {
  const { status, body } = await get(`${base}${path}`);
  assert.equal(status, 200, `${path}: ${body}`);
  return JSON.parse(body) as T;
}

/** Polls `probe` until it gives a value. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
