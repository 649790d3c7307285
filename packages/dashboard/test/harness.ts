/**
 * Real parts for the dashboard's browser tests: a collector on 127.0.0.1, an app under the agent
 * that ships to it, a request loop, and Debian's Chromium driven by playwright-core.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export const tempDir = (): string => mkdtempSync(join(tmpdir(), 'loopscope-dashboard-'));

export interface Child {
  /** what the `ready` pattern captured first: the address the process printed */
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `node ...args`; resolves once its stdout matches `ready`, whose first group is its URL. */
export async function startNode(args: string[], opts: { cwd?: string; env: Record<string, string>; ready: RegExp }): Promise<Child> {
  const child = spawn(process.execPath, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let seen = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`node ${args.join(' ')} exited with ${code} before it was ready: ${seen}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const m = opts.ready.exec(seen);
      if (m) resolve(m);
    });
  });
  child.removeAllListeners('exit');
  child.stdout!.resume();
  return {
    url: match[1]!,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM'); // an agent ships its last interval on SIGTERM
      await once(child, 'exit');
    },
  };
}

/** Starts `script` under the agent (`--import loopscope/register`), shipping every trace to `collector`. */
export function startApp(script: string, opts: { cwd?: string; collector: string; service: string; env?: Record<string, string>; ready: RegExp }): Promise<Child> {
  return startNode(['--import', import.meta.resolve('loopscope/register'), script], {
    cwd: opts.cwd,
    env: { LOOPSCOPE_COLLECTOR: opts.collector, LOOPSCOPE_SERVICE: opts.service, LOOPSCOPE_SAMPLE_RATE: '1', ...opts.env },
    ready: opts.ready,
  });
}

/** Sends GET requests to `paths` in turn, one every `everyMs`, until stopped; bounded by `maxMs`. */
export function requestLoop(base: string, paths: string[], everyMs: number, maxMs = 120_000): { stop(): Promise<void> } {
  let i = 0;
  const inFlight = new Set<Promise<unknown>>();
  const started = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - started > maxMs) return clearInterval(timer);
    const p = fetch(`${base}${paths[i++ % paths.length]}`)
      .then((r) => r.text())
      .catch(() => undefined);
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}

export async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function api<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
