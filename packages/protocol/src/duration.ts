const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "90s", "15m", "2h", "7d" → ms; undefined for anything else, 0 included. */
export function durationMs(raw: string): number | undefined {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(raw.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2]!]! : NaN;
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}
