/**
 * Event-loop health of the process, per flush interval: loop delay (perf_hooks'
 * monitorEventLoopDelay, turned into a mergeable sketch), utilization (busy and idle time from
 * performance.eventLoopUtilization), GC pauses by kind, process CPU time and memory. All of it is
 * read from Node's own counters once per interval; nothing runs per request.
 */
import { constants, monitorEventLoopDelay, PerformanceObserver, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { addValue, newSketch, roundMs, toWire, type Sketch, type WireLoop } from '@loopscope/protocol';

/** The histogram's sampling period (ms): its timer is unref'd and cheap. */
const DELAY_RESOLUTION_MS = 10;

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

const delayMs = (ns: number): number => Math.max(ns / 1e6 - DELAY_RESOLUTION_MS, 0);

/** One late tick of `delay` ms, and the ticks it swallowed. */
function addDelay(sketch: Sketch, delay: number, count: number): void {
  addValue(sketch, delay, count);
  for (let d = delay - DELAY_RESOLUTION_MS; d > 0; d -= DELAY_RESOLUTION_MS) addValue(sketch, d, count);
}

export type LoopSample = Omit<WireLoop, 'start' | 'ms' | 'longTasks' | 'droppedLongTasks'>;

export class LoopHealth {
  private delay: IntervalHistogram | null = null;
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private cpu = process.cpuUsage();
  private gc: Record<string, { count: number; ms: number }> = {};
  private observer: PerformanceObserver | null = null;

  start(): void {
    this.delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
    this.delay.enable();
    this.elu = performance.eventLoopUtilization();
    this.cpu = process.cpuUsage();
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = GC_KINDS[(entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
        const g = (this.gc[kind] ??= { count: 0, ms: 0 });
        g.count++;
        g.ms += entry.duration;
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    this.delay?.disable();
    this.observer?.disconnect();
    this.delay = this.observer = null;
  }

  /** What happened since the last call. */
  collect(): LoopSample {
    const elu = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage(this.cpu);
    this.cpu = process.cpuUsage();
    const gc = this.gc;
    this.gc = {};
    for (const g of Object.values(gc)) g.ms = roundMs(g.ms);
    const mem = process.memoryUsage();
    return {
      delay: this.delaySketch(),
      busyMs: roundMs(elu.active),
      idleMs: roundMs(elu.idle),
      gc,
      cpu: { user: roundMs(cpu.user / 1000), system: roundMs(cpu.system / 1000) },
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal },
    };
  }

  /**
   * The histogram's samples as a sketch: its percentile table gives, for each recorded value, the
   * share of samples up to it; the differences are the counts of each value. A sample is the time
   * between two ticks of a timer of DELAY_RESOLUTION_MS: the delay is what exceeds the resolution.
   * A stall of 120 ms is one late tick, but the ticks it swallowed would have seen 110, 100, ...
   * 10 ms: those are added too (HdrHistogram's correction for coordinated omission), so the
   * percentiles are those of the delay an event arriving at any moment would have met.
   */
  private delaySketch(): WireLoop['delay'] {
    const sketch = newSketch();
    const h = this.delay;
    if (h !== null && h.count > 0) {
      let seen = 0;
      for (const [percentile, ns] of h.percentiles) {
        const upTo = Math.round((percentile / 100) * h.count);
        if (upTo > seen) addDelay(sketch, delayMs(ns), upTo - seen);
        seen = Math.max(seen, upTo);
      }
      if (seen < h.count) addDelay(sketch, delayMs(h.max), h.count - seen);
      h.reset();
    }
    return toWire(sketch);
  }
}
