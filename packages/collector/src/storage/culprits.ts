/**
 * Long tasks grouped by culprit (`GET /api/loop?group=culprit`, GUIDE §3.7): per function and
 * location, how many, their total and longest time, the endpoints that ran them, the requests they
 * kept waiting, and when (a timeline over the range). Both storages group their rows in SQL, each
 * in its dialect, and hand the groups here, where they are finished alike.
 */
import type { LongTaskGroup } from '@loopscope/protocol';
import { round } from './totals.js';

/** The parts of the range a group's timeline has; a task's part is ⌊(at − from) · N / (to − from)⌋. */
export const TIMELINE_PARTS = 30;

/**
 * One group as a storage's SQL gives it: its compiled location the largest of the group's (as both
 * storages pick it), its endpoints as stored (null for a task outside requests), the requests kept
 * waiting as two sums.
 */
export type CulpritRow = Pick<LongTaskGroup, 'function' | 'location' | 'compiledLocation' | 'count' | 'totalMs' | 'maxMs'> & {
  endpoints: Array<string | null>;
  blockedCount: number;
  blockedMs: number;
};

/** The ms of one group's tasks in one part of the range. */
export interface CulpritPart {
  function: string;
  location: string | null;
  part: number;
  ms: number;
}

const keyOf = (r: { function: string; location: string | null }): string => JSON.stringify([r.function, r.location]);
const byText = (a: string | null, b: string | null): number => (a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1);

/** The groups, most total time first (then most tasks, then by function and location), at most `limit`. */
export function culpritGroups(rows: readonly CulpritRow[], parts: readonly CulpritPart[], limit: number): LongTaskGroup[] {
  const timelines = new Map<string, number[]>();
  for (const p of parts) {
    const key = keyOf(p);
    let line = timelines.get(key);
    if (line === undefined) timelines.set(key, (line = new Array<number>(TIMELINE_PARTS).fill(0)));
    const i = Math.min(TIMELINE_PARTS - 1, Math.max(0, p.part));
    line[i] = line[i]! + p.ms;
  }
  return rows
    .map(
      (r): LongTaskGroup => ({
        function: r.function,
        location: r.location,
        compiledLocation: r.compiledLocation,
        count: r.count,
        totalMs: round(r.totalMs),
        maxMs: round(r.maxMs),
        endpoints: [...new Set(r.endpoints.filter((e): e is string => e !== null))].sort(),
        blocked: { count: Math.round(r.blockedCount), ms: round(r.blockedMs) },
        timeline: (timelines.get(keyOf(r)) ?? new Array<number>(TIMELINE_PARTS).fill(0)).map(round),
      }),
    )
    .sort((a, b) => b.totalMs - a.totalMs || b.count - a.count || byText(a.function, b.function) || byText(a.location, b.location))
    .slice(0, limit);
}
