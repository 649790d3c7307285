/**
 * A batch fitted to the wire format's limits (limits.ts) before it is sent, so that a collector
 * never refuses what a sender of this package built: a text over its limit is cut and ends with
 * CUT_MARK; a list over its limit keeps its first items, the rest counted where the format counts
 * them (a trace's `droppedSegments`, the loop's `droppedLongTasks`) or left out; every value cut
 * or item left out is counted in what `fitBatch` returns (`dropped.cut`). Every sender
 * ships through it (the agent's exporter, which the proxy and the probe use too).
 */
import { CUT_MARK, LIMITS } from './limits.js';
import type { WireBatch, WireLongTask, WireTrace } from './wire.js';

/** Counts what one fitting cut or left out. */
class Fitting {
  cut = 0;

  text(value: string, max: number): string {
    if (value.length <= max) return value;
    this.cut++;
    let end = max - CUT_MARK.length;
    // not half of a surrogate pair
    const last = value.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    return value.slice(0, end) + CUT_MARK;
  }

  /** The first `max` items (the rest are counted as cut, one each). */
  list<T>(items: T[], max: number): T[] {
    if (items.length <= max) return items;
    this.cut += items.length - max;
    return items.slice(0, max);
  }
}

function fitTrace(t: WireTrace, f: Fitting): void {
  t.service = f.text(t.service, LIMITS.service);
  t.endpoint = f.text(t.endpoint, LIMITS.endpoint);
  if (t.errorMessage !== undefined) t.errorMessage = f.text(t.errorMessage, LIMITS.errorMessage);
  if (t.segments.length > LIMITS.segments) {
    // the rest are counted by the format itself; the critical path keeps to the segments kept
    t.droppedSegments += t.segments.length - LIMITS.segments;
    f.cut += t.segments.length - LIMITS.segments;
    t.segments = t.segments.slice(0, LIMITS.segments);
    const kept = new Set(t.segments.map((s) => s.id));
    t.criticalPath = t.criticalPath.filter((id) => kept.has(id));
  }
  for (const s of t.segments) {
    s.name = f.text(s.name, LIMITS.segmentName);
    if (s.error !== undefined) s.error = f.text(s.error, LIMITS.segmentError);
    if (s.operation !== undefined) s.operation = f.text(s.operation, LIMITS.operation);
    if (s.target !== undefined) s.target = f.text(s.target, LIMITS.target);
    if (s.statement !== undefined) s.statement = f.text(s.statement, LIMITS.statement);
  }
  if (t.slices !== undefined) t.slices = f.list(t.slices, LIMITS.timeline);
  if (t.waits !== undefined) t.waits = f.list(t.waits, LIMITS.timeline);
}

function fitLongTask(t: WireLongTask, f: Fitting): void {
  if (t.endpoint !== undefined) t.endpoint = f.text(t.endpoint, LIMITS.endpoint);
  t.function = f.text(t.function, LIMITS.taskFunction);
  if (t.location !== undefined) t.location = f.text(t.location, LIMITS.location);
  if (t.compiledLocation !== undefined) t.compiledLocation = f.text(t.compiledLocation, LIMITS.location);
  if (t.stack !== undefined) t.stack = f.list(t.stack, LIMITS.stackFrames).map((frame) => f.text(frame, LIMITS.stackFrame));
  t.blocked = f.list(t.blocked, LIMITS.blockedEndpoints);
  for (const b of t.blocked) b.endpoint = f.text(b.endpoint, LIMITS.endpoint);
}

/** Fits `batch` in place; returns how many values were cut or left out. */
export function fitBatch(batch: WireBatch): number {
  const f = new Fitting();
  batch.service = f.text(batch.service, LIMITS.service);
  batch.instance = f.text(batch.instance, LIMITS.instance);
  batch.agent.name = f.text(batch.agent.name, LIMITS.senderName);
  batch.agent.version = f.text(batch.agent.version, LIMITS.senderVersion);
  batch.intervals = f.list(batch.intervals, LIMITS.intervals);
  for (const iv of batch.intervals) iv.endpoint = f.text(iv.endpoint, LIMITS.endpoint);
  batch.traces = f.list(batch.traces, LIMITS.traces);
  for (const t of batch.traces) fitTrace(t, f);
  const loop = batch.loop;
  if (loop !== undefined) {
    if (loop.longTasks.length > LIMITS.longTasks) {
      loop.droppedLongTasks = (loop.droppedLongTasks ?? 0) + loop.longTasks.length - LIMITS.longTasks;
      f.cut += loop.longTasks.length - LIMITS.longTasks;
      loop.longTasks = loop.longTasks.slice(0, LIMITS.longTasks);
    }
    for (const t of loop.longTasks) fitLongTask(t, f);
  }
  if (batch.calls !== undefined) {
    batch.calls = f.list(batch.calls, LIMITS.callTargets);
    for (const c of batch.calls) c.target = f.text(c.target, LIMITS.target);
  }
  if (batch.contextLoss !== undefined) {
    batch.contextLoss = f.list(batch.contextLoss, LIMITS.lossSites);
    for (const l of batch.contextLoss) {
      l.module = f.text(l.module, LIMITS.lossModule);
      l.site = f.text(l.site, LIMITS.lossSite);
      l.function = f.text(l.function, LIMITS.lossFunction);
    }
  }
  return f.cut;
}
