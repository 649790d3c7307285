/**
 * The three resolutions aggregates are kept at, and which one answers a query. Every resolution is
 * written on ingest (see sqlite.ts), so a coarser one holds exactly the merge of the finer ones for
 * the same span; choosing between them changes the cost of a query, never its answer, as long as
 * the chosen buckets tile the requested points.
 */
import type { Retention } from './storage.js';

export interface Resolution {
  name: 'second' | 'minute' | 'hour';
  /** bucket length in ms */
  ms: number;
  retention: keyof Retention;
}

/** Finest first. */
export const RESOLUTIONS: readonly Resolution[] = [
  { name: 'second', ms: 1000, retention: 'seconds' },
  { name: 'minute', ms: 60_000, retention: 'minutes' },
  { name: 'hour', ms: 3_600_000, retention: 'hours' },
];

/** Whether rows of `res` starting at `from` are still kept at `now`. */
export function covers(res: Resolution, retention: Retention, from: number, now: number): boolean {
  return from >= now - retention[res.retention];
}

/**
 * The resolution that answers a query starting at `from` with points `step` ms apart (`step`
 * undefined: one answer for the whole range). Among the resolutions whose retention still covers
 * `from`, the coarsest whose buckets tile every step exactly (bucket divides step) — that reads the
 * fewest rows for the same merged result; without a step, the finest one, so the range's edges are
 * as exact as the data allows. When none covers `from`, the coarsest one (it is kept the longest).
 */
export function chooseResolution(retention: Retention, from: number, now: number, step?: number): Resolution {
  const kept = RESOLUTIONS.filter((r) => covers(r, retention, from, now));
  if (kept.length === 0) return RESOLUTIONS[RESOLUTIONS.length - 1]!;
  if (step === undefined) return kept[0]!;
  const tiling = kept.filter((r) => step % r.ms === 0);
  return tiling[tiling.length - 1] ?? kept[0]!;
}

export const bucketOf = (t: number, res: Resolution): number => Math.floor(t / res.ms) * res.ms;

/**
 * The points of a time series over [from, to) read from `res`: a step finer than its buckets would
 * leave most points empty, so it is widened to whole buckets; the first point starts on a step.
 */
export function seriesGrid(query: { from: number; to: number; step: number }, res: Resolution): { step: number; t0: number; points: number } {
  const step = Math.ceil(query.step / res.ms) * res.ms;
  const t0 = Math.floor(query.from / step) * step;
  return { step, t0, points: Math.ceil((query.to - t0) / step) };
}

/** A span of bucket starts, [from, to) (both on the resolution's bucket edges), and the resolution that answers it. */
export interface Tile {
  res: Resolution;
  from: number;
  to: number;
}

/**
 * The spans that answer [from, to) as a whole (no step): the buckets chooseResolution() would read
 * (the finest resolution that covers `from`, buckets starting in [from, to)), each stretch that a
 * coarser resolution kept over the range can cover with whole buckets answered by that one instead.
 * A coarser bucket holds exactly the merge of the finer ones it spans, so the answer is the same,
 * read from far fewer rows: a day is 24 hour rows and the minutes at its edges, not 1 440 minutes.
 */
export function tiles(retention: Retention, from: number, to: number, now: number): Tile[] {
  const kept = RESOLUTIONS.filter((r) => covers(r, retention, from, now));
  const fine = kept[0] ?? RESOLUTIONS[RESOLUTIONS.length - 1]!;
  const out: Tile[] = [];
  const split = (i: number, a: number, b: number): void => {
    const res = kept[i] ?? fine;
    const coarser = kept[i + 1];
    const inner = coarser && { from: Math.ceil(a / coarser.ms) * coarser.ms, to: Math.floor(b / coarser.ms) * coarser.ms };
    if (inner === undefined || inner.from >= inner.to) {
      out.push({ res, from: a, to: b });
      return;
    }
    if (a < inner.from) out.push({ res, from: a, to: inner.from });
    split(i + 1, inner.from, inner.to);
    if (inner.to < b) out.push({ res, from: inner.to, to: b });
  };
  split(0, bucketOf(from, fine), Math.ceil(to / fine.ms) * fine.ms);
  return out;
}
