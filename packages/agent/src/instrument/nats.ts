/**
 * NATS through the `nats` package (2.x, the Node client of nats.js before it was split into
 * `@nats-io/*` 3.x modules, which this does not patch): `publish` is a segment of kind `queue` (it
 * only buffers the message), `request` one that lasts until the reply; a subscription with a
 * `callback` runs each message as a transaction of its own, named `NATS subscribe <subject>`
 * (iterator subscriptions run in the subscriber's own loop and are not transactions).
 */
import { runTransaction } from '../run.js';
import type { Tracker } from '../tracker.js';
import { activeScope, finishOnSettle, finishWhenReturned, startCall } from './calls.js';
import { wrapMethod, type Exports, type ModuleInstrumentation } from './modules.js';

type Fn = (...args: any[]) => unknown;

interface Connection {
  getServer(): string;
}

/** Set while a request runs its own publish: that is part of the request's segment. */
let inRequest = false;

const target = (nc: Connection, subject: unknown): string => `${nc.getServer() || 'localhost:4222'}/${String(subject)}`;

function wrapPublish(original: Fn): Fn {
  return function publish(this: Connection, ...args: unknown[]): unknown {
    const scope = inRequest ? undefined : activeScope();
    if (scope === undefined) return Reflect.apply(original, this, args);
    const seg = startCall(scope, 'nats publish', 'queue', 'publish', target(this, args[0]), undefined);
    return finishWhenReturned(seg, original, this, args);
  };
}

function wrapRequest(original: Fn): Fn {
  return function request(this: Connection, subject: unknown, ...rest: unknown[]): unknown {
    const scope = activeScope();
    if (scope === undefined) return original.call(this, subject, ...rest);
    const seg = startCall(scope, 'nats request', 'queue', 'request', target(this, subject), undefined);
    inRequest = true;
    try {
      return finishOnSettle(original.call(this, subject, ...rest), seg);
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
        return runTransaction(tracker, name, () => callback.call(this, err, msg), true);
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
  },
};
