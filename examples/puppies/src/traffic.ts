// An open-loop load generator for the puppy service: requests are sent at a fixed rate whether
// or not earlier ones have answered (as real users do), with at most MAX_IN_FLIGHT outstanding;
// a request due while that many are in flight is skipped and counted.
//   node dist/src/traffic.js [URL] [RPS]
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { isMain } from './is-main.js';

export interface TrafficStats {
  elapsedMs: number;
  sent: number;
  ok: number;
  errors: number;
  /** the errors by reason: `HTTP 502`, `timeout`, `ECONNREFUSED`... */
  reasons: Record<string, number>;
  skipped: number;
  inFlight: number;
}

export interface TrafficOptions {
  url: string;
  durationMs?: number;
  rps?: number;
  onProgress?: (stats: TrafficStats) => void;
}

const MAX_IN_FLIGHT = 50;
const REQUEST_TIMEOUT_MS = 10_000;
const TICK_MS = 10;

/** Endpoint and relative weight. */
const MIX: ReadonlyArray<readonly [string, number]> = [
  ['/async', 40],
  ['/concurrent', 20],
  ['/chores', 20],
  ['/feed', 20],
  ['/sequential', 10],
  ['/sync', 5],
  ['/health', 5],
];
const TOTAL_WEIGHT = MIX.reduce((sum, [, weight]) => sum + weight, 0);

function pickPath(): string {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [path, weight] of MIX) {
    r -= weight;
    if (r < 0) return path;
  }
  return MIX[0]![0];
}

export function driveTraffic(opts: TrafficOptions): { stop(): Promise<void> } {
  const { url, durationMs = Infinity, rps = 20, onProgress } = opts;
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
  const stats: TrafficStats = { elapsedMs: 0, sent: 0, ok: 0, errors: 0, reasons: {}, skipped: 0, inFlight: 0 };
  const started = performance.now();
  let scheduled = 0;
  let drained: (() => void) | undefined;

  function send(path: string): void {
    stats.sent++;
    stats.inFlight++;
    let ok = false;
    let reason = 'no answer';
    const req = http.get(new URL(path, url), { agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      reason = `HTTP ${res.statusCode}`;
      res.on('end', () => (ok = res.statusCode === 200)).resume();
      res.on('error', () => (reason = 'cut short'));
    });
    req.on('timeout', () => {
      reason = 'timeout';
      req.destroy();
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (reason !== 'timeout') reason = error.code ?? error.message;
    }); // counted on 'close'
    req.on('close', () => {
      stats.inFlight--;
      if (ok) stats.ok++;
      else {
        stats.errors++;
        stats.reasons[reason] = (stats.reasons[reason] ?? 0) + 1;
      }
      if (stats.inFlight === 0) drained?.();
    });
  }

  const tick = setInterval(() => {
    stats.elapsedMs = performance.now() - started;
    for (const due = Math.floor((stats.elapsedMs / 1000) * rps); scheduled < due; scheduled++) {
      if (stats.inFlight < MAX_IN_FLIGHT) send(pickPath());
      else stats.skipped++;
    }
  }, TICK_MS);
  const progress = setInterval(() => onProgress?.({ ...stats, reasons: { ...stats.reasons } }), 1000);
  const timeout = Number.isFinite(durationMs) ? setTimeout(stop, durationMs) : undefined;

  let stopping: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopping ??= (async () => {
      clearInterval(tick);
      clearInterval(progress);
      clearTimeout(timeout);
      if (stats.inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      agent.destroy();
      stats.elapsedMs = performance.now() - started;
      onProgress?.({ ...stats, reasons: { ...stats.reasons } });
    })();
    return stopping;
  }
  return { stop };
}

/** `HTTP 502 ×2, timeout ×1`: the errors by reason, the commonest first. */
export function errorReasons(reasons: Record<string, number>): string {
  return Object.entries(reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ×${n}`)
    .join(', ');
}

function formatStats(s: TrafficStats): string {
  const errors = s.errors === 0 ? '0' : `${s.errors} (${errorReasons(s.reasons)})`;
  return `${(s.elapsedMs / 1000).toFixed(0).padStart(5)} s  sent ${s.sent}  ok ${s.ok}  errors ${errors}  skipped ${s.skipped}  in flight ${s.inFlight}   `;
}

if (isMain(import.meta.url)) {
  const url = process.argv[2] ?? 'http://127.0.0.1:4500';
  const rps = Number(process.argv[3] ?? 20);
  console.log(`sending ~${rps} req/s to ${url}, Ctrl-C to stop`);
  const traffic = driveTraffic({ url, rps, onProgress: (s) => process.stdout.write(`\r${formatStats(s)}`) });
  process.once('SIGINT', () => {
    void traffic.stop().then(() => process.stdout.write('\n'));
  });
}
