/**
 * Which function made a long task long: V8's sampling CPU profiler runs at a coarse interval
 * (10 ms: a sample costs a few microseconds, so about 0.05 % of one core), and when long tasks
 * happened, the samples inside each task's window name the function that ran most and its stack.
 * The profile is taken (stopped and started again) only when there are long tasks to explain, and
 * otherwise every minute so that its samples do not pile up.
 */
import { Session } from 'node:inspector';

export interface Culprit {
  function: string;
  location: string | undefined;
  /** innermost first: "name (file:line:column)" */
  stack: string[];
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const SAMPLING_INTERVAL_US = 10_000;
const RESTART_EVERY_MS = 60_000;
const MAX_STACK = 32;

/** Frames that are the app's (or its libraries') code, not the runtime's. */
function isAppFrame(f: CallFrame): boolean {
  return f.url !== '' && !f.url.startsWith('node:');
}

function locationOf(f: CallFrame): string {
  return `${f.url}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
}

function nameOf(f: CallFrame): string {
  return f.functionName === '' ? '(anonymous)' : f.functionName;
}

export class Profiler {
  private session: Session | null = null;
  private startedAt = 0;
  /** hrtime (µs, the profile's clock) minus performance.now() (ms) × 1000 */
  private readonly clockOffsetUs: number;

  constructor() {
    this.clockOffsetUs = Number(process.hrtime.bigint() / 1000n) - performance.now() * 1000;
  }

  /** Starts sampling; false when the inspector is not available in this process. */
  start(): boolean {
    try {
      const session = new Session();
      session.connect();
      session.post('Profiler.enable');
      session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
      session.post('Profiler.start');
      this.session = session;
      this.startedAt = performance.now();
      return true;
    } catch {
      this.session = null;
      return false;
    }
  }

  stop(): void {
    try {
      this.session?.disconnect();
    } catch {
      // already gone
    }
    this.session = null;
  }

  /** Called every flush: nothing to explain, but the profile is restarted now and then. */
  maintain(): void {
    if (this.session !== null && performance.now() - this.startedAt > RESTART_EVERY_MS) this.take();
  }

  /** For each window [start, start + ms] (now() clock), the function sampled most in it. */
  explain(windows: Array<{ start: number; ms: number }>): Array<Culprit | undefined> {
    const profile = this.take();
    if (profile === undefined) return windows.map(() => undefined);
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
    return windows.map(({ start, ms }) => {
      const from = start * 1000 + this.clockOffsetUs;
      const to = from + ms * 1000;
      const hits = new Map<ProfileNode, number>();
      for (let i = 0; i < samples.length; i++) {
        if (times[i]! < from || times[i]! > to) continue;
        const node = appFrame(byId.get(samples[i]!));
        if (node !== undefined) hits.set(node, (hits.get(node) ?? 0) + 1);
      }
      let best: ProfileNode | undefined;
      for (const [node, n] of hits) if (best === undefined || n > hits.get(best)!) best = node;
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

  /** Stops the profiler, returns its profile and starts it again. */
  private take(): Profile | undefined {
    const session = this.session;
    if (session === null) return undefined;
    let profile: Profile | undefined;
    try {
      // a session of this thread answers synchronously
      session.post('Profiler.stop', (error, result) => {
        if (error === null) profile = (result as { profile: Profile }).profile;
      });
      session.post('Profiler.start');
      this.startedAt = performance.now();
    } catch {
      this.stop();
    }
    return profile;
  }
}
