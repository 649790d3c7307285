/**
 * Merging sketches in their wire form: bins are counts per key of one fixed logarithmic mapping,
 * so two sketches merge exactly by adding counts key by key (docs/protocol.md). Storage merges
 * rows this way and builds a DDSketch only to read quantiles from the result.
 *
 * Why not DDSketch's own merge (protocol's mergeSketch): @datadog/sketches-js 2.1 extends the
 * store's range with `secondKey || key`, so when the merged sketch's highest key is 0 (values just
 * under 1 ms) and the target's highest key is below 0, the range is not extended and counts are
 * lost; the stored sketch then fails its own consistency check. Adding wire bins has no such case.
 */
import type { WireSketch } from '@loopscope/protocol';

export function emptySketch(): WireSketch {
  return { n: 0, sum: 0, min: 0, max: 0, zero: 0, k0: 0, bins: [] };
}

/** Adds `from` into `into` (never modifies `from`). */
export function mergeInto(into: WireSketch, from: WireSketch): void {
  if (from.n === 0) return;
  if (into.n === 0) {
    Object.assign(into, from, { bins: [...from.bins] });
    return;
  }
  if (from.bins.length > 0) {
    if (into.bins.length === 0) {
      into.k0 = from.k0;
      into.bins = [...from.bins];
    } else {
      const lo = Math.min(into.k0, from.k0);
      const hi = Math.max(into.k0 + into.bins.length, from.k0 + from.bins.length);
      if (lo < into.k0) into.bins = new Array<number>(into.k0 - lo).fill(0).concat(into.bins);
      into.k0 = lo;
      while (into.bins.length < hi - lo) into.bins.push(0);
      const shift = from.k0 - lo;
      for (let i = 0; i < from.bins.length; i++) into.bins[shift + i]! += from.bins[i]!;
    }
  }
  into.n += from.n;
  into.zero += from.zero;
  into.sum += from.sum;
  into.min = Math.min(into.min, from.min);
  into.max = Math.max(into.max, from.max);
}
