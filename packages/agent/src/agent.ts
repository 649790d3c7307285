/**
 * The agent: starts once per process, installs the instrumentation, and is the one object the
 * public API talks to. With LOOPSCOPE_ENABLED=false nothing is installed and every API call is a
 * pass-through.
 */
import { outside } from './context.js';
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
import { hookErrors, startTiming, stopTiming, watchLongTasks } from './timing.js';
import { Tracker } from './tracker.js';

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

/** Starts the agent (idempotent: a second call returns the running agent). Undefined when disabled. */
export function start(options: AgentOptions = {}): Agent | undefined {
  if (agent !== undefined) return agent;
  if (disabled && Object.keys(options).length === 0) return undefined;
  const config = readConfig(options);
  if (!config.enabled) {
    disabled = true;
    return undefined;
  }
  let caught = 0;
  const onError = (): void => {
    caught++;
  };
  const tracker = new Tracker(config);
  const undo: Array<() => void> = [];
  startTiming();
  tracker.start();
  const exporter = config.collector === 'off' ? undefined : new Exporter({ ...config, schedule: outside });
  if (exporter !== undefined) {
    tracker.exporter = exporter;
    exporter.start();
    undo.push(() => exporter.stop(), exporter.flushOnExit(() => tracker.flush()));
    if (config.loop) undo.push(watchLoop(config, exporter));
  }
  const enabled = (name: string): boolean => !config.disabledInstrumentations.includes(name);
  undo.push(
    instrumentHttpServer(tracker, onError),
    instrumentHttpClient(onError),
    instrumentFetch(onError),
    instrumentTimers(onError),
    instrumentModules(
      libraries.filter((lib) => enabled(lib.module)),
      onError,
    ),
  );
  if (enabled('fastify')) undo.push(instrumentFastify(onError));
  if (enabled('redis')) undo.push(instrumentRedis(onError));
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

/** Event-loop health and long tasks, shipped with the exporter's batches. Returns the uninstaller. */
function watchLoop(config: AgentConfig, exporter: Exporter): () => void {
  const health = new LoopHealth();
  const profiler = config.profiler ? new Profiler(config.longTaskMs) : null;
  const longTasks = new LongTasks(profiler?.start() === true ? profiler : null);
  health.start();
  watchLongTasks(config.longTaskMs, longTasks);
  exporter.loop = { health, longTasks };
  return () => {
    watchLongTasks(Infinity, null);
    exporter.loop = undefined;
    health.stop();
    profiler?.stop();
  };
}

export function running(): Agent | undefined {
  return agent;
}
