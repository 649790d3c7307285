/**
 * The length of a union of intervals: external time is the union of a transaction's calls, not
 * their sum (docs/metrics.md), whoever derives it (the agent from its segments, the collector from
 * OTLP client spans).
 */
/** Total length of the union of [start, end) intervals; sorts `spans` in place. */
export function unionLength(spans: Array<[number, number]>): number {
  return unionLengthOutside(spans, null);
}

/**
 * Length of the union of the [start, end) intervals `spans` less the part of it inside `holes`
 * (flat start, end pairs in time order, not overlapping each other); sorts `spans` in place.
 */
export function unionLengthOutside(spans: Array<[number, number]>, holes: readonly number[] | null): number {
  spans.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let h = 0;
  // adds one interval of the union, less what the holes cover of it
  const add = (from: number, to: number): void => {
    if (to <= from) return;
    total += to - from;
    if (holes === null) return;
    while (h < holes.length && holes[h + 1]! <= from) h += 2;
    for (let i = h; i < holes.length && holes[i]! < to; i += 2) total -= Math.max(0, Math.min(to, holes[i + 1]!) - Math.max(from, holes[i]!));
  };
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const [s, e] of spans) {
    if (s > curEnd) {
      add(curStart, curEnd);
      curStart = s;
      curEnd = e;
    } else if (e > curEnd) curEnd = e;
  }
  add(curStart, curEnd);
  return total;
}
