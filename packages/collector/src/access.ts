/**
 * Who may send and who may read (docs/collector.md#access): the ingest token guards
 * `POST /v1/ingest` and `POST /v1/traces`, the read token the query API and `/metrics` (the
 * dashboard's data). Tokens are compared in constant time (their SHA-256 digests), and an address
 * that keeps sending wrong ones is refused for a while (429) without its tokens being checked: a
 * guess then costs a minute, not a round trip.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HttpError } from './http-error.js';

export type TokenKind = 'ingest' | 'read';
export type RefusalReason = 'missing' | 'wrong' | 'throttled';

export interface ThrottleOptions {
  /** wrong or missing tokens an address may send per window before it is refused; default 10 */
  failures: number;
  /** default one minute */
  windowMs: number;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { failures: 10, windowMs: 60_000 };
/** Addresses remembered at most (the oldest are forgotten first): an attacker's many addresses cost bounded memory. */
const MAX_ADDRESSES = 10_000;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The failed attempts of each address and token in its current window, and every refusal counted (`/metrics`). */
export class Access {
  readonly refused = new Map<`${TokenKind} ${RefusalReason}`, number>();
  private readonly failures = new Map<string, { since: number; count: number }>();
  private readonly throttle: ThrottleOptions;
  private readonly expected: Partial<Record<TokenKind, Buffer>> = {};

  constructor(tokens: Partial<Record<TokenKind, string | undefined>>, throttle: Partial<ThrottleOptions> = {}) {
    this.throttle = { ...DEFAULT_THROTTLE, ...throttle };
    for (const kind of ['ingest', 'read'] as const) {
      const token = tokens[kind];
      if (token !== undefined) this.expected[kind] = digest(`Bearer ${token}`);
    }
  }

  /** Whether `kind` needs a token at all. */
  guards(kind: TokenKind): boolean {
    return this.expected[kind] !== undefined;
  }

  /** Whether the request carries the right token for `kind` (or none is needed); counts nothing. */
  allows(kind: TokenKind, request: FastifyRequest): boolean {
    const expected = this.expected[kind];
    const given = request.headers.authorization;
    return expected === undefined || (given !== undefined && timingSafeEqual(digest(given), expected));
  }

  /** Throws the 401 or 429 the request gets when it may not do what `kind` guards. */
  check(kind: TokenKind, request: FastifyRequest, now = Date.now()): void {
    if (this.expected[kind] === undefined) return;
    const address = request.ip;
    // per token: a reader's typos do not hold up the agents on the same machine
    const key = `${kind} ${address}`;
    const seen = this.failures.get(key);
    if (seen !== undefined && now - seen.since >= this.throttle.windowMs) this.failures.delete(key);
    else if (seen !== undefined && seen.count >= this.throttle.failures) {
      const wait = Math.max(1, Math.ceil((seen.since + this.throttle.windowMs - now) / 1000));
      this.count(kind, 'throttled');
      throw new HttpError(429, `too many missing or wrong ${kind} tokens from ${address}: try again in ${wait} s`, { 'retry-after': String(wait) });
    }
    if (this.allows(kind, request)) return;
    const reason = request.headers.authorization === undefined ? 'missing' : 'wrong';
    this.count(kind, reason);
    this.fail(key, now);
    throw new HttpError(401, refusal(kind, reason), { 'www-authenticate': `Bearer realm="loopscope ${kind}"` });
  }

  private count(kind: TokenKind, reason: RefusalReason): void {
    const key = `${kind} ${reason}` as const;
    this.refused.set(key, (this.refused.get(key) ?? 0) + 1);
  }

  private fail(key: string, now: number): void {
    const seen = this.failures.get(key);
    if (seen !== undefined) {
      seen.count += 1;
      return;
    }
    if (this.failures.size >= MAX_ADDRESSES) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(key, { since: now, count: 1 });
  }
}

function refusal(kind: TokenKind, reason: 'missing' | 'wrong'): string {
  if (kind === 'ingest') return `${reason} ingest token: send Authorization: Bearer <ingest token> (the collector was started with --token)`;
  return `${reason} read token: the query API, /metrics and the dashboard's data need Authorization: Bearer <read token> (the collector was started with --read-token; the ingest token does not give read access)`;
}
