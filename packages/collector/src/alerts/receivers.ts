/**
 * Where alerts go (docs/alerts.md): an Alertmanager (`POST /api/v2/alerts`, its own format) or a
 * plain webhook (JSON, signed with HMAC-SHA256 when the rule file gives a secret). Each receiver has
 * an outbox (../outbox.ts): bounded, retried with backoff, never in the way of ingest or of the
 * rules' evaluation.
 */
import { createHmac } from 'node:crypto';
import { Outbox, type OutboxStats } from '../outbox.js';
import { describeAlert, type Alert } from '@loopscope/protocol';
import type { Receiver } from './rules.js';

/** Firing alerts are sent to Alertmanager again this often; each says it ends RESEND_ENDS_AFTER later unless sent again. */
export const RESEND_MS = 60_000;
const RESEND_ENDS_AFTER = 4 * RESEND_MS;
const TICK_MS = 1000;
export const SIGNATURE_HEADER = 'x-loopscope-signature';

/** One alert as Alertmanager's API v2 takes it. */
interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function postable(alert: Alert, now: number, generatorURL: string | undefined): PostableAlert {
  const labels: Record<string, string> = { alertname: alert.name, service: alert.service, metric: alert.metric, ...alert.labels };
  if (alert.endpoint !== null) labels.endpoint = alert.endpoint;
  return {
    labels,
    annotations: {
      summary: describeAlert(alert),
      ...(alert.value !== null ? { value: String(alert.value) } : {}),
      threshold: String(alert.threshold),
      ...alert.annotations,
    },
    startsAt: iso(alert.firedAt ?? alert.since),
    endsAt: iso(alert.resolvedAt ?? now + RESEND_ENDS_AFTER),
    ...(generatorURL !== undefined ? { generatorURL } : {}),
  };
}

interface Sink {
  receiver: Receiver;
  outbox: Outbox<unknown>;
}

export interface ReceiverStats extends OutboxStats {
  kind: Receiver['kind'];
  url: string;
}

export class Receivers {
  private readonly sinks: Sink[];
  private timer: NodeJS.Timeout | undefined;
  private lastResend = 0;

  /** `dashboardUrl`: the collector's own address, for links back from an alert (unknown until it listens). */
  constructor(
    receivers: Receiver[],
    warn: (message: string) => void,
    private readonly dashboardUrl: () => string | undefined,
  ) {
    this.sinks = receivers.map((receiver) => {
      if (receiver.kind === 'alertmanager') {
        const outbox = new Outbox<PostableAlert>({
          url: `${receiver.url}/api/v2/alerts`,
          encode: (alerts) => ({ body: JSON.stringify(alerts), headers: { 'content-type': 'application/json' } }),
          maxQueued: 10_000,
          perRequest: 100,
          warn,
          what: 'alerts',
        });
        return { receiver, outbox: outbox as Outbox<unknown> };
      }
      const outbox = new Outbox<Alert>({
        url: receiver.url,
        encode: (alerts) => {
          const body = JSON.stringify({ version: 1, sentAt: iso(Date.now()), alerts: alerts.map((a) => ({ ...a, summary: describeAlert(a) })) });
          const headers: Record<string, string> = { ...receiver.headers, 'content-type': 'application/json' };
          if (receiver.secret !== undefined) headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', receiver.secret).update(body).digest('hex')}`;
          return { body, headers };
        },
        maxQueued: 10_000,
        perRequest: 100,
        warn,
        what: 'alerts',
      });
      return { receiver, outbox: outbox as Outbox<unknown> };
    });
  }

  /** Per receiver, its origin only: a webhook's path often holds its secret (`/services/T0/B0/XXXX`). */
  get stats(): ReceiverStats[] {
    return this.sinks.map(({ receiver, outbox }) => ({ kind: receiver.kind, url: new URL(receiver.url).origin, ...outbox.stats }));
  }

  private link(alert: Alert): string | undefined {
    const base = this.dashboardUrl();
    return base === undefined ? undefined : `${base}/service?service=${encodeURIComponent(alert.service)}`;
  }

  /** An alert that fired or resolved: to every receiver. */
  notify(alert: Alert, now: number): void {
    const snapshot = { ...alert };
    for (const { receiver, outbox } of this.sinks) outbox.offer([receiver.kind === 'alertmanager' ? postable(snapshot, now, this.link(snapshot)) : snapshot]);
    this.tick();
  }

  /** The alerts firing now, again to Alertmanager once a RESEND_MS, so that it keeps them active. */
  resend(firing: Alert[], now: number): void {
    if (firing.length === 0 || now - this.lastResend < RESEND_MS) return;
    this.lastResend = now;
    for (const { receiver, outbox } of this.sinks) if (receiver.kind === 'alertmanager') outbox.offer(firing.map((a) => postable(a, now, this.link(a))));
    this.tick();
  }

  private tick(): void {
    for (const { outbox } of this.sinks) void outbox.tick();
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  /** Stops, sending what is queued for at most 2 s. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.sinks.map(({ outbox }) => outbox.flush(2000)));
  }
}
