/**
 * Outbound node:http / node:https requests as segments of kind `http`, from Node's own
 * diagnostics channels: `http.client.request.created` (in the caller's context, while the request's
 * headers can still be set: the segment's W3C `traceparent` and the transaction's `tracestate` go out
 * with it, unless the app set its own), the response's `end` (the body is in: the wait is over),
 * `http.client.request.error`, or `close` for anything else.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { normalizePath } from '@loopscope/protocol';
import { currentScope } from '../context.js';
import type { Segment } from '../transaction.js';

const SEG = Symbol('loopscope.segment');

/**
 * The W3C trace headers of `seg` on a request whose headers are not written yet. Those already on
 * it (the app's own, or OpenTelemetry's, set first) win, and the segment takes the span they name.
 */
function propagate(request: ClientRequest, seg: Segment): void {
  if (request.headersSent) return;
  const given = request.getHeader('traceparent');
  if (given !== undefined) return seg.carries(String(given));
  request.setHeader('traceparent', seg.traceParent);
  if (!request.hasHeader('tracestate')) request.setHeader('tracestate', seg.traceState);
}

interface TracedRequest extends ClientRequest {
  [SEG]?: Segment;
  res?: IncomingMessage | null;
}

interface TracedResponse extends IncomingMessage {
  req?: TracedRequest;
}

// shared listeners (no closure per call): the segment rides on the request and the response
function onRequestClose(this: TracedRequest): void {
  const seg = this[SEG];
  if (seg !== undefined && seg.end < 0) seg.finish(this.res?.complete === true ? undefined : 'request closed before the response ended');
}

function onResponseEnd(this: TracedResponse): void {
  const seg = this.req?.[SEG];
  if (seg !== undefined) seg.finish(this.statusCode !== undefined && this.statusCode >= 500 ? `HTTP ${this.statusCode}` : undefined);
}

const names = new Map<string, string>();

/** `GET host:port/path/:id`, memoized (bounded) so that a repeated call allocates nothing. */
export function httpSegmentName(method: string, origin: string, path: string): string {
  const key = method + origin + path;
  let name = names.get(key);
  if (name === undefined) {
    name = `${method} ${origin}${normalizePath(path)}`;
    if (names.size >= 2000) names.clear();
    names.set(key, name);
  }
  return name;
}

export function instrumentHttpClient(onError: () => void): () => void {
  const guard =
    <M>(fn: (message: M) => void) =>
      (message: unknown): void => {
        try {
          fn(message as M);
        } catch {
          onError();
        }
      };

  const onCreated = guard<{ request: TracedRequest }>(({ request }) => {
    const scope = currentScope();
    if (scope === undefined || !scope.tx.open) return;
    const host = request.getHeader('host') ?? request.host ?? 'localhost';
    const seg = scope.tx.startSegment(httpSegmentName(request.method, String(host), request.path), 'http', scope.segment);
    request[SEG] = seg;
    request.on('close', onRequestClose);
    propagate(request, seg);
  });
  const onResponse = guard<{ request: TracedRequest; response: TracedResponse }>(({ request, response }) => {
    const seg = request[SEG];
    if (seg === undefined) return;
    // nobody listening for the response: Node discards it, the caller never waited for it
    if (request.listenerCount('response') === 0) seg.awaited = false;
    response.prependListener('end', onResponseEnd);
  });
  const onRequestError = guard<{ request: TracedRequest; error: unknown }>(({ request, error }) => {
    request[SEG]?.finish(error);
  });

  subscribe('http.client.request.created', onCreated);
  subscribe('http.client.response.finish', onResponse);
  subscribe('http.client.request.error', onRequestError);
  return () => {
    unsubscribe('http.client.request.created', onCreated);
    unsubscribe('http.client.response.finish', onResponse);
    unsubscribe('http.client.request.error', onRequestError);
  };
}
