/** Numbers as people read them, always with their unit. */

const trim = (n: number, digits: number): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Milliseconds: more decimals for small values, seconds from 10 s on. */
export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs === 0) return '0 ms';
  if (abs >= 10_000) return `${trim(value / 1000, 1)} s`;
  if (abs >= 100) return `${trim(value, 0)} ms`;
  if (abs >= 10) return `${trim(value, 1)} ms`;
  return `${trim(value, 2)} ms`;
}

/**
 * cpu, external and blocking of a service seen from outside its process (`loopscope proxy`,
 * `loopscope probe`) are unknown: the API says null, the page says so — never 0.
 */
export const UNKNOWN = 'unknown';
export const UNKNOWN_WHY = 'unknown: seen from outside the process (a proxy or a probe), where cpu, external and blocking cannot be measured';

/** A number that may be unknown (null): "unknown", else as `ms`. */
export const insideMs = (value: number | null | undefined): string => (value === null ? UNKNOWN : ms(value));

/** Who reported a service, as people say it. */
export function sender(agents: readonly string[]): string {
  const names: Record<string, string> = { loopscope: 'agent', 'loopscope-proxy': 'proxy', 'loopscope-probe': 'probe' };
  return agents.map((a) => names[a] ?? a).join(' + ') || '–';
}

export type RateUnit = 's' | 'min' | 'h';

/** The unit in which a rate (or the largest of a column of rates) reads better than 0.00. */
export const rateUnit = (perSecond: number): RateUnit => (perSecond === 0 || perSecond >= 0.1 ? 's' : perSecond * 60 >= 0.1 ? 'min' : 'h');

/** Requests per second, or per minute or hour when that reads better than 0.00 req/s. */
export function rate(perSecond: number, unit: RateUnit = rateUnit(perSecond)): string {
  if (!Number.isFinite(perSecond)) return '–';
  const value = perSecond * { s: 1, min: 60, h: 3600 }[unit];
  return `${trim(value, value >= 100 || value === 0 ? 0 : value >= 10 ? 1 : 2)} req/${unit}`;
}

/** A ratio in [0, 1] as a percentage. */
export function percent(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '–';
  const p = ratio * 100;
  return `${trim(p, p === 0 || p >= 10 ? (p === 0 ? 0 : 1) : 2)} %`;
}

export const count = (n: number): string => n.toLocaleString('en-US');

/** `1 request`, `2 requests`: a count with its noun, singular or plural. */
export const counted = (n: number, one: string, many = `${one}s`): string => `${count(n)} ${n === 1 ? one : many}`;

/** A size in bytes, in MB (10⁶) or kB. */
export function bytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
  return `${Math.round(n / 1e3)} kB`;
}

/** A time in µs, as short as its size allows. */
export const micros = (us: number): string => `${us >= 100 ? Math.round(us) : us.toFixed(1)} µs`;

/** "12 s ago", "3 min ago"... */
export function ago(timestamp: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - timestamp) / 1000));
  if (s < 2) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** A timestamp in the viewer's time zone, to the millisecond. */
export function clock(timestamp: number): string {
  const d = new Date(timestamp);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/**
 * A tick of the time axis, in 24-hour time like every time of the dashboard: with seconds when the
 * ticks are less than a minute apart, the day when they are a day apart or more.
 */
export function timeTick(seconds: number, increment: number): string {
  const d = new Date(seconds * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (increment >= 86_400) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return increment < 60 ? `${hm}:${pad(d.getSeconds())}` : hm;
}

/** The moment under the cursor (s since the epoch), to the second, in 24-hour time. */
export const momentLabel = (seconds: number): string => clock(seconds * 1000).slice(0, 19);
