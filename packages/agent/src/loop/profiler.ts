/**
 * Which function made a long task long: V8's sampling CPU profiler runs at a coarse interval, the
 * long-task threshold (50 ms by default: every long task holds a sample, one twice as long two),
 * and when long tasks happened, the samples inside each task's window name the innermost function
 * on the stack in at least half of them, and its stack. What sampling costs grows with its rate
 * (docs/benchmarks.md has it per interval, from `npm run bench:loop`), hence the coarse interval.
 *
 * Starting V8's profiler from nothing logs every compiled function (tens of milliseconds, more in a
 * bigger app; docs/benchmarks.md): that happens once,
 * during the agent's start, which is none of the app's time. After that the profile is rotated,
 * never stopped: a new one is started while the old one still runs (cheap: the profiler is already
 * on), then the old one is ended and its samples read — well under a millisecond. The profiles are
 * console profiles of the agent's own inspector session (`console.profile` with titles of its
 * own); a debugger attached with its Profiler enabled sees them too. They are rotated when there
 * are long tasks to explain, and otherwise every minute so that samples do not pile up.
 */
import { Session } from 'node:inspector';

export interface Culprit {
  function: string;
  location: string | undefined;
  /** innermost first: "name (file:line:column)" */
  stack: string[];
}

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** The finest sampling interval (ms), whatever the long-task threshold. */
const MIN_INTERVAL_MS = 10;
const RESTART_EVERY_MS = 60_000;
const MAX_STACK = 32;

/**
 * The agent's own code: its compiled files and the module hooks it installs. Never named as what
 * made a task long: a sample in it (a wrapper of the agent's around the app's handler, a `require`
 * the agent's hook passes on) counts for the app function that called it, and one with no app
 * function above it for none.
 */
const AGENT_CODE: readonly string[] = [
  new URL('../', import.meta.url).href,
  ...['require-in-the-middle', 'import-in-the-middle'].flatMap((pkg) => {
    try {
      return [new URL('./', import.meta.resolve(pkg)).href];
    } catch {
      return [];
    }
  }),
];

/** Frames that are the app's (or its libraries') code, not the runtime's or the agent's. */
function isAppFrame(f: CallFrame): boolean {
  return f.url !== '' && !f.url.startsWith('node:') && !AGENT_CODE.some((dir) => f.url.startsWith(dir));
}

function locationOf(f: CallFrame): string {
  return `${f.url}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
}

function nameOf(f: CallFrame): string {
  return f.functionName === '' ? '(anonymous)' : f.functionName;
}

/**
 * For each window [from, to] (µs, the profile's clock), the innermost app function that was on the
 * stack in at least half of the samples inside it, with its stack. Not the function sampled most by
 * itself: V8 now and then loses the innermost frames of a sample (seen in the loop tests: a sample
 * 100 ms into a busy loop in `crunchNumbers` that showed only its caller), and of the two samples
 * of a task twice the threshold, that one would tie with the true one.
 */
export function culprits(profile: Profile, windows: Array<{ from: number; to: number }>): Array<Culprit | undefined> {
  const parent = new Map<number, ProfileNode>();
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node);
  }
  /** The innermost app frame at or above `node` (a sample in `now()` or in a builtin counts for its caller). */
  const appFrame = (node: ProfileNode | undefined): ProfileNode | undefined => {
    while (node !== undefined && !isAppFrame(node.callFrame)) node = parent.get(node.id);
    return node;
  };
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const times: number[] = [];
  let t = profile.startTime;
  for (const d of deltas) times.push((t += d));
  return windows.map(({ from, to }) => {
    // each sample counts for its innermost app frame and every app frame above it
    const hits = new Map<ProfileNode, { count: number; depth: number }>();
    let total = 0;
    for (let i = 0; i < samples.length; i++) {
      if (times[i]! < from || times[i]! > to) continue;
      const chain: ProfileNode[] = [];
      for (let node = appFrame(byId.get(samples[i]!)); node !== undefined; node = appFrame(parent.get(node.id))) chain.push(node);
      if (chain.length === 0) continue;
      total++;
      chain.forEach((node, k) => {
        const hit = hits.get(node);
        if (hit === undefined) hits.set(node, { count: 1, depth: chain.length - k });
        else hit.count++;
      });
    }
    let best: ProfileNode | undefined;
    let bestHit = { count: 0, depth: 0 };
    for (const [node, hit] of hits) {
      if (hit.count * 2 < total) continue;
      if (hit.depth > bestHit.depth || (hit.depth === bestHit.depth && hit.count > bestHit.count)) [best, bestHit] = [node, hit];
    }
    if (best === undefined) return undefined;
    const stack: string[] = [];
    for (let node: ProfileNode | undefined = best; node !== undefined && stack.length < MAX_STACK; node = parent.get(node.id)) {
      const f = node.callFrame;
      if (f.functionName === '(root)') break;
      stack.push(f.url === '' ? nameOf(f) : `${nameOf(f)} (${locationOf(f)})`);
    }
    return { function: nameOf(best.callFrame), location: locationOf(best.callFrame), stack };
  });
}

/** The console's own profile functions, kept in case the app replaces them later. */
const consoleProfile = console.profile.bind(console);
const consoleProfileEnd = console.profileEnd.bind(console);

export class Profiler {
  private session: Session | null = null;
  private startedAt = 0;
  /** the profile running now, and the count of profiles started */
  private title = '';
  private rotations = 0;
  /** what the session last delivered for a profile the agent ended */
  private finished: Profile | undefined;
  /** hrtime (µs, the profile's clock) minus performance.now() (ms) × 1000 */
  private readonly clockOffsetUs: number;

  /** µs between two stack samples */
  private readonly intervalUs: number;

  /** `longTaskMs`: the long-task threshold, which is the sampling interval too (10 ms at the finest). */
  constructor(longTaskMs: number) {
    this.intervalUs = Math.round(Math.max(MIN_INTERVAL_MS, longTaskMs) * 1000);
    this.clockOffsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
  }

  /** Starts sampling; false when the inspector is not available in this process. */
  start(): boolean {
    try {
      const session = new Session();
      session.connect();
      session.post('Profiler.enable');
      session.post('Profiler.setSamplingInterval', { interval: this.intervalUs });
      session.on('Profiler.consoleProfileFinished', (message: { params: { title?: string; profile: Profile } }) => {
        if (message.params.title?.startsWith('loopscope:') === true) this.finished = message.params.profile;
      });
      this.session = session;
      this.rotate();
      return true;
    } catch {
      this.session = null;
      return false;
    }
  }

  stop(): void {
    try {
      if (this.title !== '') consoleProfileEnd(this.title);
      this.session?.disconnect();
    } catch {
      // already gone
    }
    this.session = null;
    this.title = '';
  }

  /** Called every flush: nothing to explain, but the profile is restarted now and then. */
  maintain(): void {
    if (this.session !== null && performance.now() - this.startedAt > RESTART_EVERY_MS) this.take();
  }

  /** For each window [start, start + ms] (now() clock), its culprit (see `culprits`). */
  explain(windows: Array<{ start: number; ms: number }>): Array<Culprit | undefined> {
    const profile = this.take();
    if (profile === undefined) return windows.map(() => undefined);
    return culprits(
      profile,
      windows.map(({ start, ms }) => ({ from: start * 1000 + this.clockOffsetUs, to: (start + ms) * 1000 + this.clockOffsetUs })),
    );
  }

  /** The samples since the last rotation: a new profile is started, then the running one ended. */
  private take(): Profile | undefined {
    if (this.session === null) return undefined;
    try {
      this.finished = undefined;
      this.rotate();
      // the session of this thread delivers the ended profile at once
      return this.finished;
    } catch {
      this.stop();
      return undefined;
    }
  }

  private rotate(): void {
    const previous = this.title;
    this.title = `loopscope:${++this.rotations}`;
    consoleProfile(this.title);
    if (previous !== '') consoleProfileEnd(previous);
    this.startedAt = performance.now();
  }
}
