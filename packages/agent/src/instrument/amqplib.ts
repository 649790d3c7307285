/**
 * RabbitMQ (AMQP 0-9-1) through `amqplib`, promise and callback APIs alike: `publish` and
 * `sendToQueue` are segments of kind `queue` (on a plain channel the call only hands the message to
 * the socket, so the segment is as short as that; on a confirm channel with a callback it lasts until
 * the broker confirms); each message a consumer receives runs as a transaction of its own, named
 * `AMQP consume <queue>`. A published message carries the segment's W3C `traceparent` (and
 * `tracestate`) in its headers, and the consumer's transaction continues that trace.
 */
import { runTransaction } from '../run.js';
import { parseTraceParent } from '../trace-context.js';
import type { Tracker } from '../tracker.js';
import type { Segment } from '../transaction.js';
import { activeScope, finishThenCall, finishWhenReturned, startCall } from './calls.js';
import { wrapMethod, type Exports, type ModuleInstrumentation } from './modules.js';

type Fn = (...args: any[]) => unknown;

interface AmqpChannel {
  connection?: { stream?: { remoteAddress?: string; remotePort?: number } };
}

interface ChannelClass {
  prototype: { publish: Fn; consume: Fn };
}

function targetOf(channel: AmqpChannel, exchange: unknown, routingKey: unknown): string {
  const s = channel.connection?.stream;
  const address = s?.remoteAddress === undefined ? 'localhost:5672' : `${s.remoteAddress}:${s.remotePort ?? 5672}`;
  // the default exchange routes by queue name
  return `${address}/${exchange === '' || exchange === undefined ? String(routingKey) : String(exchange)}`;
}

/** publish's options with the trace headers of `seg` added (a copy: the app's object is left alone). */
function withTraceHeaders(options: unknown, seg: Segment): unknown {
  const given = options !== null && typeof options === 'object' ? (options as { headers?: unknown }) : {};
  const headers = given.headers !== null && typeof given.headers === 'object' ? (given.headers as Record<string, unknown>) : {};
  if (headers.traceparent !== undefined) return options;
  return { ...given, headers: { ...headers, traceparent: seg.traceParent, ...(headers.tracestate === undefined ? { tracestate: seg.traceState } : {}) } };
}

/** The trace a delivered message carries (its producer's), if any. */
function parentOf(message: unknown) {
  const headers = (message as { properties?: { headers?: Record<string, unknown> } }).properties?.headers;
  return headers === undefined || headers === null ? undefined : parseTraceParent(headers.traceparent, headers.tracestate);
}

/** Plain channel: the message is written to the socket buffer, nothing is awaited. */
function wrapPublish(confirmClass: unknown): (original: Fn) => Fn {
  return (original) =>
    function publish(this: AmqpChannel, ...args: unknown[]): unknown {
      const scope = activeScope();
      // a confirm channel's publish comes through here too: it has its own segment
      if (scope === undefined || this instanceof (confirmClass as new () => object)) return Reflect.apply(original, this, args);
      const seg = startCall(scope, 'amqp publish', 'queue', 'publish', targetOf(this, args[0], args[1]), undefined);
      args[3] = withTraceHeaders(args[3], seg);
      return finishWhenReturned(seg, original, this, args);
    };
}

/** Confirm channel: with a callback, the segment lasts until the broker confirms (or rejects). */
function wrapConfirmPublish(original: Fn): Fn {
  return function publish(this: AmqpChannel, exchange: unknown, routingKey: unknown, content: unknown, options: unknown, cb?: unknown): unknown {
    const scope = activeScope();
    if (scope === undefined) return original.call(this, exchange, routingKey, content, options, cb);
    const seg = startCall(scope, 'amqp publish', 'queue', 'publish', targetOf(this, exchange, routingKey), undefined);
    const traced = withTraceHeaders(options, seg);
    if (typeof cb !== 'function') return finishWhenReturned(seg, original, this, [exchange, routingKey, content, traced]);
    return original.call(this, exchange, routingKey, content, traced, finishThenCall(seg, scope, cb as Fn));
  };
}

/** Each delivered message runs `callback` as a transaction of its own (one wrapper per consumer). */
function wrapConsume(tracker: Tracker): (original: Fn) => Fn {
  return (original) =>
    function consume(this: unknown, queue: unknown, callback: unknown, ...rest: unknown[]): unknown {
      if (typeof callback !== 'function') return original.call(this, queue, callback, ...rest);
      const name = `AMQP consume ${String(queue)}`;
      const onMessage = function (this: unknown, message: unknown): unknown {
      // null: the broker cancelled the consumer; no message, no transaction
        if (message === null) return (callback as Fn).call(this, message);
        return runTransaction(tracker, name, () => (callback as Fn).call(this, message), true, parentOf(message));
      };
      return original.call(this, queue, onMessage, ...rest);
    };
}

function patchModel(exports: Exports, _version: string, tracker: Tracker): void {
  const channel = exports.Channel as ChannelClass;
  const confirm = exports.ConfirmChannel as ChannelClass;
  wrapMethod(channel.prototype, 'publish', wrapPublish(confirm));
  wrapMethod(channel.prototype, 'consume', wrapConsume(tracker));
  wrapMethod(confirm.prototype, 'publish', wrapConfirmPublish);
}

export const amqplib: ModuleInstrumentation = {
  module: 'amqplib',
  majors: [2],
  files: {
    'lib/channel_model.js': patchModel,
    'lib/callback_model.js': patchModel,
  },
};
