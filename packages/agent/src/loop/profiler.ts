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
 * are long tasks to explain, and otherwise every ten seconds, so that samples do not pile up and the
 * agent's own time (`cost`: the samples in its code) is known as it goes.
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
/** A profile is taken at least this often: the agent's own time is read from it (`ownTime`). */
const RESTART_EVERY_MS = 10_000;
const MAX_STACK = 32;

/**
 * The agent's own code: its compiled files and the module hooks it installs. Never named as what
 * made a task long: a sample in it (a wrapper of the agent's around the app's handler, a `require`
 * the agent's hook passes on) counts for the app function that called it, and one with no app
 * function above it for none (see `without`). The module-hook libraries are known by their
 * package's folder wherever they are installed (HOOK_LIBRARY): an app that also uses OpenTelemetry
 * or Sentry brings its own copy, which wraps `require` too.
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

const HOOK_LIBRARY = /\/node_modules\/(?:require|import)-in-the-middle\//;

/** Whether the script at `url` (a file: URL) is the agent's own (or its module hooks'). */
export function isAgentUrl(url: string): boolean {
  return AGENT_CODE.some((dir) => url.startsWith(dir)) || HOOK_LIBRARY.test(url);
}

/** The agent's own frames (and its module hooks'). */
function isAgentFrame(f: CallFrame): boolean {
  return isAgentUrl(f.url);
}

/** Frames that are the app's (or its libraries') code, not the runtime's or the agent's. */
function isAppFrame(f: CallFrame): boolean {
  return f.url !== '' && !f.url.startsWith('node:') && !isAgentFrame(f);
}

/** Node's async_hooks (the public module and its internals). */
const HOOKS = /^node:(?:internal\/)?async_hooks$/;
/** Node's modules the agent's hooks call for themselves: its clocks and its context. */
const AGENT_TOOLS = /^node:(?:internal\/)?(?:perf|async_hooks|async_local_storage|async_context_frame)\b/;

/**
 * Whether a sample (its innermost frame `leaf`) is the agent's own time:
 * - its stack holds the agent's `agentWork` (long-tasks.ts: a flush, reading a profile or a source
 *   map), whatever that called;
 * - or its innermost frame that is not a builtin is the agent's code (a builtin, `now()` or a Map's,
 *   counts for its caller), or Node's async_hooks, which run only because the agent's hook is on
 *   (the dispatch of the hook, the tracking of every promise), but for `callbackTrampoline`, which
 *   every callback from C++ goes through, hooks or none.
 * Not when Node's code ran below the agent's (but for its clocks and its context, AGENT_TOOLS): that
 * is one of its wrappers passing the app's call on (an outbound request, a `require` through a
 * module hook). Frames are told by their file, not by name, but for `agentWork`: the agent may run
 * bundled, its modules in chunks of one file.
 */
function isOwnSample(leaf: ProfileNode, parent: Map<number, ProfileNode>): boolean {
  let throughNode = false;
  let own: boolean | undefined;
  for (let node: ProfileNode | undefined = leaf; node !== undefined; node = parent.get(node.id)) {
    const f = node.callFrame;
    if (f.functionName === 'agentWork' && isAgentFrame(f)) return true;
    if (own !== undefined) continue;
    if (isAgentFrame(f)) own = !throughNode;
    // the hooks' dispatch, innermost; not the trampoline every native callback goes through
    else if (HOOKS.test(f.url) && !throughNode && f.functionName !== 'callbackTrampoline') own = true;
    else if (f.url.startsWith('node:')) throughNode ||= !AGENT_TOOLS.test(f.url);
    else if (f.url !== '' || f.functionName.startsWith('(')) own = false;
  }
  return own === true;
}

/** The time (µs) of a profile's samples, and of those that were the agent's own (`isOwnSample`). */
export function ownTime(profile: Profile): { sampledUs: number; ownUs: number } {
  const parent = new Map<number, ProfileNode>();
  const own = new Map<number, boolean>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
  for (const node of profile.nodes) own.set(node.id, isOwnSample(node, parent));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let sampledUs = 0;
  let ownUs = 0;
  // a sample stands for the time since the one before it
  for (let i = 0; i < samples.length; i++) {
    const d = deltas[i] ?? 0;
    sampledUs += d;
    if (own.get(samples[i]!) === true) ownUs += d;
  }
  return { sampledUs, ownUs };
}

/**
 * What a sample with no app frame was, by the frames V8 gave it (a frame of V8's own has no url
 * and a name in parentheses: `(garbage collector)`, `(program)`, `(idle)`, `(root)`):
 * - `(garbage collection)`: V8's garbage collector, with no JavaScript on the stack;
 * - `(native code)`: V8's `(program)`: no JavaScript on the stack (V8 parsing or compiling, or C++
 *   code of Node's or of an addon that no JavaScript called);
 * - `(idle)`: V8's `(idle)`, the embedder said it was waiting;
 * - `(module loading)`: only Node's module loader and the module hooks (an ES module graph being
 *   resolved, compiled and linked, with no module body of the app's running yet);
 * - `(Node.js internals)`: only Node's own JavaScript (and the agent's).
 * Ties go to the first in this order.
 */
const WITHOUT_APP = ['(garbage collection)', '(native code)', '(idle)', '(module loading)', '(Node.js internals)'] as const;
type WithoutApp = (typeof WITHOUT_APP)[number];

function withoutApp(leaf: ProfileNode, parent: Map<number, ProfileNode>): WithoutApp {
  let js = false;
  for (let node: ProfileNode | undefined = leaf; node !== undefined; node = parent.get(node.id)) {
    const url = node.callFrame.url;
    if (url.startsWith('node:internal/modules/') || HOOK_LIBRARY.test(url)) return '(module loading)';
    if (url !== '') js = true;
  }
  if (js) return '(Node.js internals)';
  const name = leaf.callFrame.functionName;
  return name === '(garbage collector)' ? '(garbage collection)' : name === '(idle)' ? '(idle)' : '(native code)';
}

function locationOf(f: CallFrame): string {
  return `${scriptUrl(f.url)}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
}

/**
 * A script's URL as the agent ships it (long tasks, lost context): a URL without its query and
 * fragment (`import('./m.mjs?token=…')`), a `data:` URL without its content (the code).
 */
export function scriptUrl(url: string): string {
  if (url.startsWith('data:')) return url.slice(0, url.indexOf(',') + 1 || undefined);
  if (!url.includes('://')) return url; // a path: `?` and `#` are part of its name
  const end = url.search(/[?#]/);
  return end < 0 ? url : url.slice(0, end);
}

function nameOf(f: CallFrame): string {
  return f.functionName === '' ? '(anonymous)' : f.functionName;
}

/**
 * For each window [from, to] (µs, the profile's clock), the innermost app function that was on the
 * stack in at least half of the samples inside it, with its stack. Not the function sampled most by
 * itself: V8 now and then loses the innermost frames of a sample (seen in the loop tests: a sample
 * 100 ms into a busy loop in `crunchNumbers` that showed only its caller), and of the two samples
 * of a task twice the threshold, that one would tie with the true one. A window none of whose
 * samples holds an app frame is named after what most of them were (`withoutApp`); one with no
 * sample at all has no culprit.
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
    /** samples with no app frame, by what they were, and the first of each */
    const others = new Map<WithoutApp, { count: number; first: ProfileNode }>();
    for (let i = 0; i < samples.length; i++) {
      if (times[i]! < from || times[i]! > to) continue;
      const leaf = byId.get(samples[i]!);
      const chain: ProfileNode[] = [];
      for (let node = appFrame(leaf); node !== undefined; node = appFrame(parent.get(node.id))) chain.push(node);
      if (chain.length === 0) {
        if (leaf === undefined) continue;
        const kind = withoutApp(leaf, parent);
        const seen = others.get(kind);
        if (seen === undefined) others.set(kind, { count: 1, first: leaf });
        else seen.count++;
        continue;
      }
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
    if (best === undefined) {
      // no app function: what most of the samples were instead, named as such (no location)
      let kind: WithoutApp | undefined;
      for (const k of WITHOUT_APP) if (others.has(k) && (kind === undefined || others.get(k)!.count > others.get(kind)!.count)) kind = k;
      if (kind === undefined) return undefined;
      const first = others.get(kind)!.first;
      return { function: kind, location: undefined, stack: first.callFrame.url === '' ? [] : stackOf(first, parent) };
    }
    return { function: nameOf(best.callFrame), location: locationOf(best.callFrame), stack: stackOf(best, parent) };
  });
}

/** `node` and its callers, innermost first, up to MAX_STACK frames, without the agent's own (its wrappers and hooks are not the app's code). */
function stackOf(node: ProfileNode, parent: Map<number, ProfileNode>): string[] {
  const stack: string[] = [];
  for (let at: ProfileNode | undefined = node; at !== undefined && stack.length < MAX_STACK; at = parent.get(at.id)) {
    const f = at.callFrame;
    if (f.functionName === '(root)') break;
    if (isAgentFrame(f)) continue;
    stack.push(f.url === '' ? nameOf(f) : `${nameOf(f)} (${locationOf(f)})`);
  }
  return stack;
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
  /** the process's CPU time when the running profile started */
  private cpuAtStart = process.cpuUsage();
  /** the agent's own time in the profiles taken since `cost()` was last called, and the process's CPU time over them (µs); null: none taken */
  private taken: { ownUs: number; processUs: number } | null = null;

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

  /**
   * The agent's own time on the loop (ms, from the samples: see `isOwnSample`) in the profiles
   * taken since the last call, and the process's CPU time (user and system, every thread) over the
   * same time; undefined when no profile was taken since.
   */
  cost(): { ownMs: number; processMs: number } | undefined {
    const taken = this.taken;
    this.taken = null;
    return taken === null ? undefined : { ownMs: taken.ownUs / 1000, processMs: taken.processUs / 1000 };
  }

  /** The samples since the last rotation: a new profile is started, then the running one ended. */
  private take(): Profile | undefined {
    if (this.session === null) return undefined;
    try {
      this.finished = undefined;
      const cpu = process.cpuUsage(this.cpuAtStart);
      this.cpuAtStart = process.cpuUsage();
      this.rotate();
      // the session of this thread delivers the ended profile at once
      const profile = this.finished as Profile | undefined;
      if (profile !== undefined) {
        const { ownUs } = ownTime(profile);
        this.taken ??= { ownUs: 0, processUs: 0 };
        this.taken.ownUs += ownUs;
        this.taken.processUs += cpu.user + cpu.system;
      }
      return profile;
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
