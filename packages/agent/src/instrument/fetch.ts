/**
 * Global fetch (undici) as segments of kind `http`. The call is wrapped so that the segment starts
 * in the caller's context and a rejected fetch ends it; undici's own channels say when the body
 * has arrived (`undici:request:trailers`) or failed (`undici:request:error`). The request carries
 * the segment's W3C `traceparent` (and the transaction's `tracestate`) unless the app set its own.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { currentScope, runIn } from '../context.js';
import { Segment } from '../transaction.js';
import { httpSegmentName } from './http-client.js';

const SEG = Symbol('loopscope.segment');

interface UndiciRequest {
  [SEG]?: Segment;
  statusCode?: number;
  /** undici's: name, value, name, value (a string of header lines in older undici) */
  headers?: unknown;
  addHeader?(name: string, value: string): unknown;
}

/** A header's value on undici's request (its headers are an array of name, value, or raw text). */
function headerOf(headers: unknown, name: string): string | undefined {
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    return undefined;
  }
  if (typeof headers !== 'string') return undefined;
  const at = `\r\n${headers.toLowerCase()}`.indexOf(`\r\n${name}:`);
  if (at < 0) return undefined;
  const from = at + name.length + 1;
  const end = headers.indexOf('\r\n', from);
  return headers.slice(from, end < 0 ? undefined : end).trim();
}

/**
 * The W3C trace headers of `seg` on undici's request. Those already on it (the app's own, or
 * another tracer's) win, and the segment takes the span they name.
 */
function propagate(request: UndiciRequest, seg: Segment): void {
  if (typeof request.addHeader !== 'function') return;
  const given = headerOf(request.headers, 'traceparent');
  if (given !== undefined) return seg.carries(given);
  request.addHeader('traceparent', seg.traceParent);
  if (headerOf(request.headers, 'tracestate') === undefined) request.addHeader('tracestate', seg.traceState);
}

function describeTarget(input: unknown, init: unknown): { method: string; origin: string; path: string } {
  let url: URL | undefined;
  let method = (init as { method?: string } | undefined)?.method;
  if (typeof input === 'string') url = new URL(input);
  else if (input instanceof URL) url = input;
  else if (input !== null && typeof input === 'object' && 'url' in input) {
    url = new URL(String((input as { url: unknown }).url));
    method ??= (input as { method?: string }).method;
  }
  return { method: (method ?? 'GET').toUpperCase(), origin: url?.host ?? 'unknown', path: url?.pathname ?? '/' };
}

/** A promise that notes when someone waits for it. */
class ObservedPromise<T> extends Promise<T> {
  segment: Segment | undefined;
  static override get [Symbol.species]() {
    return Promise;
  }

  override then<A = T, B = never>(onFulfilled?: ((value: T) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    if (this.segment !== undefined) this.segment.awaited = true;
    return super.then(onFulfilled, onRejected);
  }
}

export function instrumentFetch(onError: () => void): () => void {
  const original = globalThis.fetch;
  if (typeof original !== 'function') return () => {};

  globalThis.fetch = function fetch(input: Parameters<typeof original>[0], init?: Parameters<typeof original>[1]): Promise<Response> {
    let seg: Segment | undefined;
    try {
      const scope = currentScope();
      if (scope !== undefined && scope.tx.open) {
        const { method, origin, path } = describeTarget(input, init);
        seg = scope.tx.startSegment(httpSegmentName(method, origin, path), 'http', scope.segment);
      }
    } catch {
      onError();
    }
    if (seg === undefined) return original(input, init);
    const segment = seg;
    // on the critical path only if the caller waits for it: awaiting a promise that is not a plain
    // Promise calls its `then`, and so do Promise.all and friends
    segment.awaited = false;
    const pending = runIn(segment, original, input, init);
    const observed = new ObservedPromise<Response>((resolve, reject) => pending.then(resolve, reject));
    observed.segment = segment;
    pending.then(
      (res) => {
        if (res.status >= 500) segment.error ??= `HTTP ${res.status}`;
        // a body-less response has no trailers event
        if (res.body === null) segment.finish();
      },
      (error: unknown) => segment.finish(error),
    );
    return observed;
  } as typeof fetch;

  const link = (message: unknown): void => {
    try {
      const scope = currentScope();
      if (scope instanceof Segment && scope.end < 0) {
        const { request } = message as { request: UndiciRequest };
        request[SEG] = scope;
        propagate(request, scope);
      }
    } catch {
      onError();
    }
  };
  const done = (message: unknown): void => {
    try {
      const { request, error } = message as { request: UndiciRequest; error?: unknown };
      request[SEG]?.finish(error);
    } catch {
      onError();
    }
  };
  subscribe('undici:request:create', link);
  subscribe('undici:request:trailers', done);
  subscribe('undici:request:error', done);
  return () => {
    globalThis.fetch = original;
    unsubscribe('undici:request:create', link);
    unsubscribe('undici:request:trailers', done);
    unsubscribe('undici:request:error', done);
  };
}
