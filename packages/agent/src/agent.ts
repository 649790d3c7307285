/**
 * The agent: starts once per process, installs the instrumentation, and is the one object the
 * public API talks to. With LOOPSCOPE_ENABLED=false nothing is installed and every API call is a
 * pass-through.
 */
import { ContextLoss } from './context-loss.js';
import { setMaxMessage } from './describe-error.js';
import { outside, watchIoRequests } from './context.js';
import { ioStarted, watchIoKinds } from './io.js';
import { Exporter } from './export/exporter.js';
import { readConfig, type AgentConfig, type AgentOptions } from './config.js';
import { instrumentFastify } from './instrument/fastify.js';
import { instrumentFetch } from './instrument/fetch.js';
import { instrumentHttpClient } from './instrument/http-client.js';
import { instrumentHttpServer } from './instrument/http-server.js';
import { libraries } from './instrument/libraries.js';
import { instrumentModules } from './instrument/modules.js';
import { frameworkFaults } from './instrument/route.js';
import { instrumentRedis } from './instrument/redis.js';
import { instrumentTimers } from './instrument/timers.js';
import { LoopHealth } from './loop/health.js';
import { LongTasks } from './loop/long-tasks.js';
import { Profiler } from './loop/profiler.js';
import { callbackSerial, hookErrors, startTiming, stopTiming, watchLongTasks } from './timing.js';
import { Tracker, type TransactionListener } from './tracker.js';

export interface Agent {
  readonly config: AgentConfig;
  readonly tracker: Tracker;
  readonly exporter: Exporter | undefined;
  /** Exceptions caught inside the agent (never passed to the app). */
  errors(): number;
  stop(): void;
}

let agent: Agent | undefined;
/** Set once the configuration said no: later calls of the API do not read it again. */
let disabled = false;
/** Listeners subscribed before the agent started, each attached to the tracker of the next start. */
const waiting = new Set<(tracker: Tracker) => void>();

/** The process's resident memory before the agent was loaded, when register.ts read it. */
let rssBeforeLoad: number | undefined;

/** register.ts: the resident memory before it loaded the agent, so that its start's cost includes the loading. */
export function loadedFrom(rss: number): void {
  rssBeforeLoad = rss;
}

/** Starts the agent (idempotent: a second call returns the running agent). Undefined when disabled. */
export function start(options: AgentOptions = {}): Agent | undefined {
  if (agent !== undefined) return agent;
  if (disabled && Object.keys(options).length === 0) return undefined;
  const config = readConfig(options);
  if (!config.enabled) {
    disabled = true;
    return undefined;
  }
  const rssBefore = rssBeforeLoad ?? process.memoryUsage.rss();
  let caught = 0;
  const onError = (): void => {
    caught++;
  };
  setMaxMessage(config.maxErrorMessage);
  const tracker = new Tracker(config);
  for (const attach of waiting) attach(tracker);
  waiting.clear();
  const undo: Array<() => void> = [];
  tracker.start();
  const exporter = config.collector === 'off' ? undefined : new Exporter({ ...config, schedule: outside });
  let loop: LoopWatch | undefined;
  // where requests lose their context, shipped with the batches
  const losses = exporter === undefined ? undefined : (exporter.contextLoss = new ContextLoss());
  if (exporter !== undefined) {
    tracker.exporter = exporter;
    exporter.start();
    undo.push(() => exporter.stop(), exporter.flushOnExit(() => tracker.flush()));
    if (config.loop) {
      loop = watchLoop(config, exporter);
      undo.push(loop.stop);
    }
  }
  const enabled = (name: string): boolean => !config.disabledInstrumentations.includes(name);
  // the file system's and name resolution's time (io.ts), unless both are left out
  watchIoKinds(config.disabledInstrumentations);
  if (enabled('fs') || enabled('dns')) {
    watchIoRequests((asyncId, type, scope) => ioStarted(asyncId, type, scope, callbackSerial()));
    undo.push(() => watchIoRequests(null));
  }
  undo.push(
    instrumentHttpServer(tracker, onError, losses),
    instrumentHttpClient(onError),
    instrumentFetch(onError),
    instrumentTimers(onError),
    instrumentModules(
      libraries.filter((lib) => enabled(lib.module)),
      tracker,
      onError,
    ),
  );
  if (enabled('fastify')) undo.push(instrumentFastify(onError));
  if (enabled('redis')) undo.push(instrumentRedis(onError));
  // The loop is measured from here on. The agent's own start (above: the module hooks' loader
  // thread, V8's profiler started from nothing; 100 ms and more) is none of the app's time: not a
  // slice, so not a long task; not loop delay either.
  startTiming();
  loop?.start();
  // what the agent costs in memory: what its loading and start added to the process's (shipped
  // with every batch; docs/metrics.md)
  if (exporter !== undefined) exporter.startRss = Math.max(0, process.memoryUsage.rss() - rssBefore);
  agent = {
    config,
    tracker,
    exporter,
    errors: () => caught + hookErrors + frameworkFaults(),
    stop() {
      tracker.closeAll();
      tracker.stop();
      for (const u of undo.reverse()) u();
      stopTiming();
      agent = undefined;
    },
  };
  return agent;
}

interface LoopWatch {
  /** Starts watching the loop (once the agent's own start is over). */
  start(): void;
  stop(): void;
}

/**
 * Event-loop health and long tasks, shipped with the exporter's batches. The profiler starts now
 * (the costly part: V8's profiler started from nothing), the watching when `start` is called.
 */
function watchLoop(config: AgentConfig, exporter: Exporter): LoopWatch {
  const health = new LoopHealth();
  const profiler = config.profiler ? new Profiler(config.longTaskMs) : null;
  const longTasks = new LongTasks(config.longTaskMs, profiler?.start() === true ? profiler : null);
  exporter.loop = { health, longTasks };
  return {
    start() {
      health.start();
      watchLongTasks(config.longTaskMs, longTasks);
    },
    stop() {
      watchLongTasks(Infinity, null);
      exporter.loop = undefined;
      health.stop();
      profiler?.stop();
    },
  };
}

export function running(): Agent | undefined {
  return agent;
}

/**
 * Subscribes to finished transactions: now if the agent runs, else when it starts (so that an app
 * may subscribe before it calls `start()` and lose nothing). Returns the function that unsubscribes.
 */
export function subscribe(listener: TransactionListener): () => void {
  if (agent !== undefined) return agent.tracker.onEnd(listener);
  let off: (() => void) | undefined;
  const attach = (tracker: Tracker): void => {
    off = tracker.onEnd(listener);
  };
  waiting.add(attach);
  return () => {
    waiting.delete(attach);
    off?.();
  };
}
