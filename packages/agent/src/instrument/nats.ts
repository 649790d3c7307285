/**
 * NATS through the `nats` package (2.x, the Node client of nats.js before it was split into
 * `@nats-io/*` 3.x modules, which this does not patch): `publish` is a segment of kind `queue` (it
 * only buffers the message), `request` one that lasts until the reply; a subscription with a
 * `callback` runs each message as a transaction of its own, named `NATS subscribe <subject>`
 * (iterator subscriptions run in the subscriber's own loop and are not transactions). On a server
 * that takes headers, a published message and a request carry the segment's W3C `traceparent`
 * (and `tracestate`), and the subscriber's transaction continues that trace.
 */
import { runTransaction } from '../run.js';
import { parseTraceParent } from '../trace-context.js';
import type { Tracker } from '../tracker.js';
import type { Segment } from '../transaction.js';
import { activeScope, finishOnSettle, finishWhenReturned, startCall } from './calls.js';
import { wrapMethod, type Exports, type ModuleInstrumentation } from './modules.js';

type Fn = (...args: any[]) => unknown;

interface Connection {
  getServer(): string;
  /** the server's INFO: `headers` when it takes message headers */
  readonly info?: { headers?: boolean };
}

/** nats' message headers (`headers()` of lib/nats-base-client/headers.js). */
interface MsgHdrs {
  has(k: string): boolean;
  get(k: string): string;
  set(k: string, v: string): void;
  append(k: string, v: string): void;
  keys(): string[];
  values(k: string): string[];
}

/** nats' own `headers()`, taken when its file loads. */
let makeHeaders: (() => MsgHdrs) | undefined;

/**
 * publish's or request's options with the trace headers of `seg` added: a copy, with a copy of the
 * app's headers (an app may reuse one headers object for every message).
 */
function withTraceHeaders(nc: Connection, options: unknown, seg: Segment): unknown {
  if (makeHeaders === undefined || nc.info?.headers !== true) return options;
  const given = options !== null && typeof options === 'object' ? (options as { headers?: MsgHdrs }) : {};
  if (given.headers?.has('traceparent') === true) return options;
  const headers = makeHeaders();
  if (given.headers !== undefined) for (const k of given.headers.keys()) for (const v of given.headers.values(k)) headers.append(k, v);
  headers.set('traceparent', seg.traceParent);
  if (given.headers?.has('tracestate') !== true) headers.set('tracestate', seg.traceState);
  return { ...given, headers };
}

/** The trace a delivered message carries (its producer's), if any. */
function parentOf(msg: unknown) {
  const headers = (msg as { headers?: MsgHdrs } | null)?.headers;
  return headers === undefined ? undefined : parseTraceParent(headers.get('traceparent') || undefined, headers.get('tracestate') || undefined);
}

/** Set while a request runs its own publish: that is part of the request's segment. */
let inRequest = false;

const target = (nc: Connection, subject: unknown): string => `${nc.getServer() || 'localhost:4222'}/${String(subject)}`;

function wrapPublish(original: Fn): Fn {
  return function publish(this: Connection, ...args: unknown[]): unknown {
    const scope = inRequest ? undefined : activeScope();
    if (scope === undefined) return Reflect.apply(original, this, args);
    const seg = startCall(scope, 'nats publish', 'queue', 'publish', target(this, args[0]), undefined);
    args[2] = withTraceHeaders(this, args[2], seg);
    return finishWhenReturned(seg, original, this, args);
  };
}

function wrapRequest(original: Fn): Fn {
  return function request(this: Connection, subject: unknown, data?: unknown, opts?: unknown): unknown {
    const scope = activeScope();
    if (scope === undefined) return Reflect.apply(original, this, arguments);
    const seg = startCall(scope, 'nats request', 'queue', 'request', target(this, subject), undefined);
    // nats' own default when no options are given
    const traced = withTraceHeaders(this, opts ?? { timeout: 1000, noMux: false }, seg);
    inRequest = true;
    try {
      return finishOnSettle(original.call(this, subject, data, traced), seg);
    } finally {
      inRequest = false;
    }
  };
}

function wrapSubscribe(tracker: Tracker): (original: Fn) => Fn {
  return (original) =>
    function subscribe(this: Connection, subject: unknown, opts?: { callback?: Fn }): unknown {
      const callback = opts?.callback;
      if (typeof callback !== 'function') return original.call(this, subject, opts);
      const name = `NATS subscribe ${String(subject)}`;
      const onMessage = function (this: unknown, err: unknown, msg: unknown): unknown {
        return runTransaction(tracker, name, () => callback.call(this, err, msg), true, parentOf(msg));
      };
      return original.call(this, subject, { ...opts, callback: onMessage });
    };
}

export const nats: ModuleInstrumentation = {
  module: 'nats',
  majors: [2],
  files: {
    'lib/nats-base-client/nats.js'(exports: Exports, _version: string, tracker: Tracker) {
      const proto = (exports.NatsConnectionImpl as { prototype: { publish: Fn; request: Fn; subscribe: Fn } }).prototype;
      wrapMethod(proto, 'publish', wrapPublish);
      wrapMethod(proto, 'request', wrapRequest);
      wrapMethod(proto, 'subscribe', wrapSubscribe(tracker));
    },
    'lib/nats-base-client/headers.js'(exports: Exports) {
      if (typeof exports.headers === 'function') makeHeaders = exports.headers as () => MsgHdrs;
    },
  },
};
