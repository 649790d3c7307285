/**
 * Event-loop health of the process, per flush interval: loop delay (how late a 10 ms timer of the
 * agent's runs, into a mergeable sketch), utilization (busy and idle time from
 * performance.eventLoopUtilization), GC pauses by kind, process CPU time and memory. Nothing runs
 * per request: one timer tick every 10 ms, and Node's own counters read once per interval.
 *
 * Not perf_hooks.monitorEventLoopDelay: resetting its histogram (once per interval) forgets when
 * it last ticked, so a stall that spans the reset — the flush timer runs right after a long task —
 * is not recorded at all.
 */
import { constants, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import { addValue, newSketch, roundMs, toWire, type Sketch, type WireLoop } from '@loopscope/protocol';
import { outside } from '../context.js';

/** The probe's period (ms): its timer is unref'd. */
const DELAY_RESOLUTION_MS = 10;
const realSetInterval = globalThis.setInterval;

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * One late tick of `delay` ms, and the ticks it swallowed: a stall of 120 ms is one late tick, but
 * the ticks it kept from running would have seen 110, 100, ... 10 ms; those are added too
 * (HdrHistogram's correction for coordinated omission), so the percentiles are those of the delay
 * an event arriving at any moment would have met.
 */
function addDelay(sketch: Sketch, delay: number): void {
  addValue(sketch, delay);
  for (let d = delay - DELAY_RESOLUTION_MS; d > 0; d -= DELAY_RESOLUTION_MS) addValue(sketch, d);
}

export type LoopSample = Omit<WireLoop, 'start' | 'ms' | 'longTasks' | 'droppedLongTasks'>;

export class LoopHealth {
  private delay = newSketch();
  private probe: NodeJS.Timeout | null = null;
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private cpu = process.cpuUsage();
  private gc: Record<string, { count: number; ms: number }> = {};
  private observer: PerformanceObserver | null = null;

  start(): void {
    let last = performance.now();
    this.probe = outside(() =>
      realSetInterval(() => {
        const t = performance.now();
        // the next tick is due DELAY_RESOLUTION_MS after this one ran: what is beyond is delay
        addDelay(this.delay, Math.max(t - last - DELAY_RESOLUTION_MS, 0));
        last = t;
      }, DELAY_RESOLUTION_MS),
    );
    this.probe.unref();
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
    if (this.probe !== null) clearInterval(this.probe);
    this.observer?.disconnect();
    this.probe = this.observer = null;
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
    const delay = toWire(this.delay);
    this.delay = newSketch();
    return {
      delay,
      busyMs: roundMs(elu.active),
      idleMs: roundMs(elu.idle),
      gc,
      cpu: { user: roundMs(cpu.user / 1000), system: roundMs(cpu.system / 1000) },
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal },
    };
  }
}
