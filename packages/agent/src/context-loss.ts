/**
 * Lost context, found and named. A library that calls its callbacks from a context of its own (a
 * connection it opened at start, a queue a timer drains) runs the app's code for a request outside
 * that request: its time is missing from the request, silently. The agent sees it where it is sure:
 * a request's response is ended by code that runs in no transaction, or in one that is over. (Code
 * of another open request ending it is how long polling answers, and is left alone.)
 *
 * Each such end is counted for its call site: the outermost frame of the app's and its libraries'
 * code on the stack, that is, the function the loop called from outside the request, and the
 * package it is in (`app` for the app's own code). `lostMs` is how long that code had run outside
 * the request by then (a floor: what ran before it, in earlier callbacks, is not known). The stack is
 * read once per resource the loop called (a library's connection or timer), not once per request.
 * docs/metrics.md#lost-context.
 */
import { sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LIMITS, roundMs, type WireContextLoss } from '@loopscope/protocol';
import { runningResource } from './context.js';
import { now } from './clock.js';
import { isAgentUrl, scriptUrl } from './loop/profiler.js';
import { callbackSerial, runningSince } from './timing.js';

interface Frame {
  module: string;
  site: string;
  function: string;
}

/** `    at name (location)` or `    at location`, the location ending in `:line:column` */
const FRAME = /^\s*at (?:(.*?) \()?(.+?):(\d+):(\d+)\)?$/;
const PACKAGE = /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)[\\/](?!.*node_modules[\\/])/;
/** Frames read from a stack: enough to reach the loop's own below the deepest app code. */
const STACK_DEPTH = 100;

/** The outermost frame of the app's (or its libraries') code on the current stack. */
export function outermostAppFrame(stack: string): Frame | undefined {
  const lines = stack.split('\n');
  for (let i = lines.length - 1; i > 0; i--) {
    const frame = FRAME.exec(lines[i]!);
    if (frame === null) continue;
    const file = frame[2]!;
    if (file.startsWith('node:') || file.startsWith('<') || file === 'native') continue;
    const url = file.startsWith('file:') ? file : file.startsWith(sep) ? pathToFileURL(file).href : file;
    if (isAgentUrl(url)) continue;
    const pkg = PACKAGE.exec(file)?.[1]?.replaceAll('\\', '/');
    return { module: pkg ?? 'app', site: `${scriptUrl(file)}:${frame[3]}:${frame[4]}`.slice(-LIMITS.lossSite), function: (frame[1] ?? '').slice(0, LIMITS.lossFunction) };
  }
  return undefined;
}

/** Where the losses past the site limit are counted. */
const OTHER_SITES: Frame = { module: 'other', site: '(site limit reached)', function: '' };

interface Site extends Frame {
  count: number;
  lostMs: number;
}

export class ContextLoss {
  private readonly sites = new Map<string, Site>();
  /** The frame already found for a resource the loop called (its stack is read once), and its key. */
  private readonly frameOf = new WeakMap<object, { frame: Frame; key: string }>();
  private since = Date.now();
  /** When the latest loss was counted, and in which macrotask: a second one in it ran from then. */
  private lastAt = -Infinity;
  private lastSerial = -1;

  /** The running code, outside a request, is ending that request's response. */
  notice(): void {
    const t = now();
    const serial = callbackSerial();
    const from = serial === this.lastSerial ? Math.max(this.lastAt, runningSince()) : runningSince();
    this.lastAt = t;
    this.lastSerial = serial;
    const resource = runningResource();
    let found = this.frameOf.get(resource);
    if (found === undefined) {
      const frame = outermostAppFrame(stackNow());
      if (frame === undefined) return;
      found = { frame, key: `${frame.module}\n${frame.site}` };
      this.frameOf.set(resource, found);
    }
    let site = this.sites.get(found.key);
    if (site === undefined) {
      const full = this.sites.size >= LIMITS.lossSites - 1;
      const key = full ? '' : found.key;
      site = this.sites.get(key);
      if (site === undefined) this.sites.set(key, (site = { ...(full ? OTHER_SITES : found.frame), count: 0, lostMs: 0 }));
    }
    site.count++;
    site.lostMs += Math.max(0, t - from);
  }

  /** The sites seen since the last call, for a batch. */
  take(): WireContextLoss[] {
    const start = Math.floor(this.since);
    this.since = Date.now();
    const out = [...this.sites.values()].map((s) => ({ start, module: s.module, site: s.site, function: s.function, count: s.count, lostMs: roundMs(s.lostMs) }));
    this.sites.clear();
    return out;
  }
}

function stackNow(): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = STACK_DEPTH;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return stack;
}
