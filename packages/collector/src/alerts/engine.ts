/**
 * Alert rules evaluated by the collector (docs/alerts.md). Every interval, each rule's value over
 * its window; an alert goes inactive → pending (the condition holds) → firing (it held for `for`)
 * → resolved (the value came back past the threshold by the rule's hysteresis, or there is no data
 * left to judge by). State changes go to every receiver (receivers.ts); a firing alert is sent to
 * Alertmanager again now and then, as Prometheus does, so that Alertmanager does not time it out.
 *
 * Once, not once per collector: each round's state is saved in the storage with the collector that
 * ran it (its holder). Collectors that share a storage (ClickHouse) take the rounds of the holder as
 * theirs (their /api/alerts answers the same) and evaluate nothing while it keeps evaluating; when it
 * has missed STANDBY_ROUNDS rounds, one claims the next round and carries on from the saved state,
 * so a firing alert stays firing and is not announced again. A collector on SQLite is always the
 * holder, and a restart carries on where it stopped.
 */
import { METRICS, fromWire, quantile, type Alert, type AlertRule, type MetricName } from '@loopscope/protocol';
import type { AlertRound, Storage } from '../storage/storage.js';
import type { Rule, RulesFile } from './rules.js';
import type { ReceiverStats, Receivers } from './receivers.js';

/** How many resolved alerts the collector remembers for the API (the most recent). */
const RECENT_RESOLVED = 100;
/** Rounds a holder may miss before another collector takes over. */
export const STANDBY_ROUNDS = 3;

/** The alerts' state as saved with each round. */
interface SavedState {
  active: Alert[];
  resolved: Alert[];
}

const REQUEST_METRICS: ReadonlySet<string> = new Set(METRICS);

/** The value of `rule` over [now - window, now); null when there is nothing to judge by. */
export async function ruleValue(rule: Rule, storage: Storage, now: number): Promise<number | null> {
  const range = { from: now - rule.windowMs, to: now };
  if (rule.metric === 'loop_delay' || rule.metric === 'long_tasks') {
    const loop = await storage.loop({ service: rule.service, from: range.from, to: range.to, sort: 'recent', limit: 0 });
    if (rule.metric === 'long_tasks') return loop.longTaskCount / (rule.windowMs / 60_000);
    if (loop.loopMs === 0) return null;
    const q = rule.quantile!;
    return q === 1 ? loop.delay.max : q === 0.99 ? loop.delay.p99 : q === 0.95 ? loop.delay.p95 : loop.delay.p50;
  }
  const totals = await storage.summary(rule.service, rule.endpoint, range);
  if (rule.metric === 'throughput') return totals.count / (rule.windowMs / 1000);
  if (rule.metric === 'error_rate') return totals.count === 0 ? null : totals.errors / totals.count;
  if (!REQUEST_METRICS.has(rule.metric)) return null;
  const sketch = totals.sketches[rule.metric as MetricName];
  // n 0: no request in the window, or a metric the senders cannot know (cpu seen from outside)
  return sketch.n === 0 ? null : quantile(fromWire(sketch), rule.quantile!);
}

interface Tracked {
  rule: Rule;
  alert: Alert | undefined;
}

export class AlertEngine {
  private readonly tracked: Tracked[];
  private resolved: Alert[] = [];
  /** the latest saved round this collector has taken in (by `at`), so a state is taken once */
  private adoptedAt = -1;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** evaluations that failed (the storage threw): logged, counted, the next one tries again */
  failures = 0;

  constructor(
    private readonly file: RulesFile,
    private readonly storage: Storage,
    private readonly receivers: Receivers,
    private readonly warn: (message: string) => void,
    /** this collector, in the saved rounds: unique per process where collectors share a storage */
    private readonly holder: string,
  ) {
    this.tracked = file.rules.map((rule) => ({ rule, alert: undefined }));
  }

  start(): void {
    this.timer = setInterval(() => void this.evaluate(), this.file.intervalMs);
    this.timer.unref();
    this.receivers.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.receivers.stop();
  }

  get ruleCount(): number {
    return this.tracked.length;
  }

  get receiverStats(): ReceiverStats[] {
    return this.receivers.stats;
  }

  /** Every rule, with the state of its alert. */
  rules(): AlertRule[] {
    return this.tracked.map(({ rule, alert }) => ({
      name: rule.name,
      service: rule.service,
      endpoint: rule.endpoint ?? null,
      metric: rule.metric,
      quantile: rule.quantile ?? null,
      direction: rule.direction,
      threshold: rule.threshold,
      forMs: rule.forMs,
      windowMs: rule.windowMs,
      state: alert?.state === 'firing' ? 'firing' : alert?.state === 'pending' ? 'pending' : 'ok',
    }));
  }

  /** Active alerts (firing first, then pending), then the recently resolved, newest first. */
  list(): Alert[] {
    const active = this.tracked.flatMap((t) => (t.alert ? [t.alert] : []));
    active.sort((a, b) => (a.state === b.state ? a.since - b.since : a.state === 'firing' ? -1 : 1));
    return [...active, ...this.resolved];
  }

  /** One round over every rule, as of `now`. */
  evaluate(now = Date.now()): Promise<void> {
    this.running ??= this.round(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async round(now: number): Promise<void> {
    let last: AlertRound | null;
    try {
      last = await this.storage.lastAlertRound();
    } catch (err) {
      this.failures++;
      this.warn(`alert evaluation: reading the last round failed: ${(err as Error).message}`);
      return;
    }
    if (last !== null) this.adopt(last);
    if (last !== null && last.holder !== this.holder) {
      // another collector evaluates; once it has stopped, claim the next round (the latest claim wins)
      if (last.at < now - STANDBY_ROUNDS * this.file.intervalMs) await this.save(now);
      return;
    }
    for (const t of this.tracked) {
      let value: number | null;
      try {
        value = await ruleValue(t.rule, this.storage, now);
      } catch (err) {
        this.failures++;
        this.warn(`alert rule ${t.rule.name}: evaluation failed: ${(err as Error).message}`);
        continue;
      }
      this.step(t, value, now);
    }
    this.receivers.resend(this.list().filter((a) => a.state === 'firing'), now);
    await this.save(now);
  }

  /** Saves this round's state as this collector's. */
  private async save(now: number): Promise<void> {
    const state: SavedState = { active: this.tracked.flatMap((t) => (t.alert ? [t.alert] : [])), resolved: this.resolved };
    const round = { holder: this.holder, at: now, state: JSON.stringify(state) };
    try {
      await this.storage.saveAlertRound(round);
      this.adoptedAt = now;
    } catch (err) {
      this.failures++;
      this.warn(`alert evaluation: saving the round failed: ${(err as Error).message}`);
    }
  }

  /** Takes in a saved round's alerts (of the rules this collector has). */
  private adopt(round: AlertRound): void {
    if (round.at <= this.adoptedAt) return;
    this.adoptedAt = round.at;
    const state = JSON.parse(round.state) as SavedState;
    for (const t of this.tracked) t.alert = state.active.find((a) => a.name === t.rule.name);
    this.resolved = state.resolved;
  }

  private step(t: Tracked, value: number | null, now: number): void {
    const { rule } = t;
    const above = rule.direction === 'above';
    const breach = value !== null && (above ? value > rule.threshold : value < rule.threshold);
    const margin = rule.threshold * rule.hysteresis;
    const clear = value === null || (above ? value <= rule.threshold - margin : value >= rule.threshold + margin);
    const alert = t.alert;
    if (alert === undefined) {
      if (!breach) return;
      t.alert = {
        name: rule.name,
        state: 'pending',
        service: rule.service,
        endpoint: rule.endpoint ?? null,
        metric: rule.metric,
        quantile: rule.quantile ?? null,
        value,
        threshold: rule.threshold,
        direction: rule.direction,
        since: now,
        firedAt: null,
        resolvedAt: null,
        labels: rule.labels,
        annotations: rule.annotations,
      };
      if (rule.forMs === 0) this.fire(t.alert, now);
      return;
    }
    alert.value = value;
    if (alert.state === 'pending') {
      if (!breach) t.alert = undefined; // never fired: nothing to tell
      else if (now - alert.since >= rule.forMs) this.fire(alert, now);
      return;
    }
    // firing: only a value past the threshold by the hysteresis, or no data, resolves it
    if (clear) {
      alert.state = 'resolved';
      alert.since = now;
      alert.resolvedAt = now;
      t.alert = undefined;
      this.resolved.unshift(alert);
      this.resolved.length = Math.min(this.resolved.length, RECENT_RESOLVED);
      this.receivers.notify(alert, now);
    }
  }

  private fire(alert: Alert, now: number): void {
    alert.state = 'firing';
    alert.since = now;
    alert.firedAt = now;
    this.receivers.notify(alert, now);
  }
}
