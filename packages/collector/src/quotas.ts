/**
 * What one collector takes from senders that send too much (docs/collector.md#limits): services,
 * endpoints and instances active within an hour, and traces and long tasks per service and minute.
 * A batch over a limit is never refused whole for it, but one of a service past the service limit:
 * its endpoints and instances past their limits are folded into one name each (`OTHER (… limit
 * reached)`), its traces and long tasks past the minute's are left out; every one is counted per
 * service and limit (`/metrics`, `/api/health`). The counts are this collector's: several
 * collectors on one ClickHouse each keep their own.
 */
import { OVERFLOW_ENDPOINT, type WireBatch } from '@loopscope/protocol';
import { HttpError } from './http-error.js';

export interface Quotas {
  /** services active within an hour */
  services: number;
  /** endpoints of a service active within an hour */
  endpoints: number;
  /** instances (processes) of a service active within an hour */
  instances: number;
  /** traces stored per service and minute */
  tracesPerMinute: number;
  /** long tasks stored per service and minute */
  longTasksPerMinute: number;
}

export const DEFAULT_QUOTAS: Quotas = { services: 1000, endpoints: 1000, instances: 1000, tracesPerMinute: 6000, longTasksPerMinute: 600 };
export const QUOTA_NAMES = Object.keys(DEFAULT_QUOTAS) as Array<keyof Quotas>;
export const OVERFLOW_INSTANCE = 'OTHER (instance limit reached)';

/** A name is active while it was seen within this long; past a limit, names idle longer make room. */
const ACTIVE_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** Names seen, each with when it was last; bounded by `limit` active ones. */
class ActiveNames {
  private readonly seen = new Map<string, number>();

  /** Whether `name` is taken (seen before, or room made for it) at `now`. */
  take(name: string, limit: number, now: number): boolean {
    if (this.seen.has(name)) {
      this.seen.delete(name); // (kept in order of last use: the idlest first)
      this.seen.set(name, now);
      return true;
    }
    if (this.seen.size >= limit) {
      for (const [old, at] of this.seen) {
        if (now - at < ACTIVE_MS) break;
        this.seen.delete(old);
      }
      if (this.seen.size >= limit) return false;
    }
    this.seen.set(name, now);
    return true;
  }
}

interface ServiceState {
  endpoints: ActiveNames;
  instances: ActiveNames;
  /** the minute whose traces and long tasks are counted, and their counts */
  minute: number;
  traces: number;
  longTasks: number;
}

export class QuotaKeeper {
  readonly limits: Quotas;
  /** what went over each limit, per service: `service` → limit → count */
  readonly over = new Map<string, Partial<Record<keyof Quotas, number>>>();
  private readonly services = new ActiveNames();
  private readonly state = new Map<string, ServiceState>();

  constructor(limits: Partial<Quotas> = {}) {
    this.limits = { ...DEFAULT_QUOTAS, ...limits };
  }

  /** The batch as it may be stored (a copy where anything was over), or a 403 for a service past the service limit. */
  admit(batch: WireBatch, now: number): WireBatch {
    const { limits } = this;
    if (!this.services.take(batch.service, limits.services, now)) {
      this.count(batch.service, 'services', 1);
      throw new HttpError(403, `the collector takes at most ${limits.services} services active within an hour, and ${JSON.stringify(batch.service)} is not one of them: the batch is not stored (raise it with --limit services=N)`);
    }
    let s = this.state.get(batch.service);
    if (s === undefined) this.state.set(batch.service, (s = { endpoints: new ActiveNames(), instances: new ActiveNames(), minute: 0, traces: 0, longTasks: 0 }));
    const minute = Math.floor(now / MINUTE_MS);
    if (minute !== s.minute) Object.assign(s, { minute, traces: 0, longTasks: 0 });

    let out = batch;
    const copy = (): WireBatch => (out === batch ? (out = { ...batch }) : out);
    if (!s.instances.take(batch.instance, limits.instances, now)) {
      this.count(batch.service, 'instances', 1);
      copy().instance = OVERFLOW_INSTANCE;
    }
    let folded = 0;
    const intervals = batch.intervals.map((iv) => {
      if (iv.endpoint === OVERFLOW_ENDPOINT || s.endpoints.take(iv.endpoint, limits.endpoints, now)) return iv;
      folded += 1;
      return { ...iv, endpoint: OVERFLOW_ENDPOINT };
    });
    if (folded > 0) copy().intervals = intervals;
    const traces = Math.max(0, Math.min(batch.traces.length, limits.tracesPerMinute - s.traces));
    s.traces += traces;
    if (traces < batch.traces.length) this.count(batch.service, 'tracesPerMinute', batch.traces.length - traces);
    // a trace of an endpoint past the limit is kept under the folded name, as its intervals are
    const kept = batch.traces.slice(0, traces).map((t) => {
      if (t.endpoint === OVERFLOW_ENDPOINT || s.endpoints.take(t.endpoint, limits.endpoints, now)) return t;
      folded += 1;
      return { ...t, endpoint: OVERFLOW_ENDPOINT };
    });
    if (traces < batch.traces.length || kept.some((t, i) => t !== batch.traces[i])) copy().traces = kept;
    // (intervals and traces of endpoints past the limit)
    if (folded > 0) this.count(batch.service, 'endpoints', folded);
    const loop = batch.loop;
    if (loop !== undefined) {
      const tasks = Math.max(0, Math.min(loop.longTasks.length, limits.longTasksPerMinute - s.longTasks));
      s.longTasks += tasks;
      if (tasks < loop.longTasks.length) {
        this.count(batch.service, 'longTasksPerMinute', loop.longTasks.length - tasks);
        copy().loop = { ...loop, longTasks: loop.longTasks.slice(0, tasks) };
      }
    }
    return out;
  }

  private count(service: string, limit: keyof Quotas, n: number): void {
    // (a service past the service limit is counted under the overflow name: the map stays bounded)
    const key = limit === 'services' ? 'OTHER (service limit reached)' : service;
    const counts = this.over.get(key) ?? {};
    counts[limit] = (counts[limit] ?? 0) + n;
    this.over.set(key, counts);
  }
}
