/**
 * Real parts for the dashboard's browser tests: a collector on 127.0.0.1, an app under the agent
 * that ships to it, a request loop, and Debian's Chromium driven by playwright-core.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startCollector, type Collector, type CollectorOptions } from '@loopscope/collector';
import type { WireBatch, WireTrace } from '@loopscope/protocol';
import { chromium, type Browser, type Page } from 'playwright-core';

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

/** Opens `url` in a new page and waits until it has drawn; dialogs and page errors go to `incidents`. */
export async function openPage(browser: Browser, url: string, incidents: string[]): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('dialog', (d) => {
    incidents.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('pageerror', (e) => incidents.push(`page error: ${e.message}`));
  // what the collector's Content-Security-Policy refused (an inline style or script): a page that relies on it is broken
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) incidents.push(`refused by the CSP: ${m.text()}`);
  });
  await page.goto(url);
  await ready(page);
  return page;
}

export const ready = (page: Page): Promise<unknown> => page.waitForSelector('body[data-state="ready"]', { timeout: 15_000 });

/** "1,234 ms", "12.3 s", "0.24 ms" → ms */
export function parseMs(text: string): number {
  const m = /^([\d,.]+) (ms|s)$/.exec(text.trim());
  assert.ok(m, `not a duration: ${JSON.stringify(text)}`);
  return Number(m[1]!.replace(/,/g, '')) * (m[2] === 's' ? 1000 : 1);
}

/** "12.5 req/s", "3.0 req/min", "0.35 req/h" → requests per second */
export function parseRate(text: string): number {
  const m = /^([\d,.]+) req\/(s|min|h)$/.exec(text.trim());
  assert.ok(m, `not a rate: ${JSON.stringify(text)}`);
  return Number(m[1]!.replace(/,/g, '')) / { s: 1, min: 60, h: 3600 }[m[2] as 's' | 'min' | 'h'];
}

/** Equal within the rounding of the display (3 significant digits at least). */
export function closeTo(shown: number, actual: number, what: string): void {
  assert.ok(Math.abs(shown - actual) <= Math.max(0.006, Math.abs(actual) * 0.006), `${what}: shown ${shown}, API ${actual}`);
}

/**
 * For a test file: a real collector that has ingested `batches` (in order) and a browser, started before the
 * file's tests and closed after them (checking no page opened a dialog or threw). Returns `open`.
 */
export function withIngested(batches: WireBatch | WireBatch[], options: Partial<CollectorOptions> = {}): (path: string) => Promise<Page> {
  let collector: Collector;
  let browser: Browser;
  const incidents: string[] = [];
  before(async () => {
    collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false, ...options });
    for (const batch of Array.isArray(batches) ? batches : [batches]) {
      const res = await fetch(`${collector.url}/v1/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
      assert.equal(res.status, 200, await res.text());
    }
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await collector?.close();
    assert.deepEqual(incidents, [], 'no page opened a dialog or threw');
  });
  return (path) => openPage(browser, `${collector.url}${path}`, incidents);
}

let traces = 0;

/**
 * A trace of `service` (a new trace id each, unique in the test process), 10 ms of response and
 * duration spent on the loop unless `fields` says otherwise.
 */
export function wireTrace(service: string, endpoint: string, start: number, fields: Partial<WireTrace> = {}): WireTrace {
  return {
    traceId: `${process.pid.toString(16)}${(++traces).toString(16)}`.padStart(32, 'e'),
    service,
    endpoint,
    start,
    status: 200,
    error: false,
    response: 10,
    duration: 10,
    cpu: 10,
    external: 0,
    externalByKind: {},
    blocking: 0,
    segments: [],
    criticalPath: [],
    truncated: false,
    droppedSegments: 0,
    ...fields,
  };
}

/** One agent's batch of `service` (instance `<service>-1:1`), sent at `sentAt`, with `fields` on top (traces, calls, ...). */
export function agentBatch(service: string, sentAt: number, fields: Partial<WireBatch>): WireBatch {
  return {
    v: 1,
    batchId: `test-${service}-${process.pid}-${sentAt}`,
    service,
    instance: `${service}-1:1`,
    agent: { name: 'loopscope', version: '0.1.0' },
    sentAt,
    intervals: [],
    traces: [],
    dropped: { batches: 0, transactions: 0, traces: 0 },
    ...fields,
  };
}
