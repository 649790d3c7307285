/**
 * A transaction for every request of every node:http and node:https server, so any framework on
 * top is covered. The handler runs inside the transaction's context; the response's end is taken
 * when Node hands its last bytes to the socket (no listener per request unless the kernel could not
 * take them at once).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { endpointName } from '@loopscope/protocol';
import type { ContextLoss } from '../context-loss.js';
import { currentScope, runInScope } from '../context.js';
import { enter, enterArrived, ioReadySince, leave, pollCount } from '../timing.js';
import { parseTraceParent } from '../trace-context.js';
import type { Tracker } from '../tracker.js';
import type { Transaction } from '../transaction.js';

// not `import`: an ES module's import of node:http makes Node load its fetch (undici) too, some
// 10 ms of the app's start (docs/benchmarks.md); CommonJS's, and this, do not
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

const TX = Symbol('loopscope.transaction');
/**
 * On a new connection: since when it was ready to be accepted, and in which poll. Its first request,
 * read in the next poll, may have come with it (a busy loop accepts it late and reads it one poll
 * later): then it waited since the connection was ready.
 */
const ACCEPT_READY = Symbol('loopscope.acceptReady');
const ACCEPT_POLL = Symbol('loopscope.acceptPoll');
/**
 * On a kept-alive connection: when the latest response on it was finished. A client that waits for
 * each answer before it asks again (all but pipelining ones) sent the next request after that.
 */
const ANSWERED = Symbol('loopscope.answered');

interface TracedSocket {
  [ACCEPT_READY]?: number | undefined;
  [ACCEPT_POLL]?: number;
  [ANSWERED]?: number;
}

interface TracedResponse extends ServerResponse {
  [TX]?: Transaction;
}

interface TracedRequest extends IncomingMessage {
  [TX]?: Transaction;
}

function finished(res: TracedResponse, tx: Transaction, aborted = false): void {
  tx.finishResponse(res.statusCode, aborted);
  const socket = res.socket as unknown as TracedSocket | null;
  if (socket !== null) socket[ANSWERED] = tx.responseEnd;
}

function onFinish(this: TracedResponse): void {
  const tx = this[TX];
  if (tx !== undefined) finished(this, tx);
}

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean;

export function instrumentHttpServer(tracker: Tracker, onError: () => void, losses?: ContextLoss): () => void {
  const restore: Array<() => void> = [];
  if (losses !== undefined) restore.push(watchEnds(losses, onError));
  // without Node's `_finish` (not in any Node this runs on today), every response waits for `finish`
  const responseProto = http.ServerResponse.prototype as unknown as { _finish?: () => void };
  const originalFinish = responseProto._finish;
  const finishPatched = typeof originalFinish === 'function';
  for (const proto of [http.Server.prototype, https.Server.prototype] as Array<{ emit: Emit }>) {
    const original = proto.emit;
    proto.emit = function emit(this: unknown, event: string | symbol, req?: unknown, res?: unknown): boolean {
      if (event !== 'request') {
        // a connection accepted late (the loop was busy) made its first request wait too
        if (event === 'connection' && req !== null && typeof req === 'object') {
          (req as TracedSocket)[ACCEPT_READY] = ioReadySince();
          (req as TracedSocket)[ACCEPT_POLL] = pollCount();
        }
        return Reflect.apply(original, this, arguments) as boolean;
      }
      let tx: Transaction | undefined;
      try {
        const request = req as IncomingMessage;
        tx = tracker.begin(endpointName(request.method ?? 'GET', request.url ?? '/'), true);
        if (tx !== undefined) {
          const traceparent = request.headers.traceparent;
          if (traceparent !== undefined) {
            const parent = parseTraceParent(traceparent, request.headers.tracestate);
            if (parent !== undefined) tx.continues(parent);
          }
          (res as TracedResponse)[TX] = (req as TracedRequest)[TX] = tx;
          tx.respondsWith(res as ServerResponse);
          if (!finishPatched) (res as TracedResponse).on('finish', onFinish);
          // the transaction owns the loop from here: what the parser does after the handler
          // returns is work for this request too
          const socket = request.socket as unknown as TracedSocket | null;
          let acceptReady = socket?.[ACCEPT_READY];
          if (acceptReady !== undefined) {
            socket![ACCEPT_READY] = undefined;
            if (pollCount() - socket![ACCEPT_POLL]! > 1) acceptReady = undefined;
          }
          // nor before its caller made the call, when the caller's agent said when (trace context)
          const answered = socket?.[ANSWERED];
          const called = tx.calledAt;
          enterArrived(tx, called !== undefined && (answered === undefined || called > answered) ? called : answered, acceptReady);
        }
      } catch {
        onError();
      }
      if (tx === undefined) return Reflect.apply(original, this, arguments) as boolean;
      try {
        return runInScope(tx, original, this, event, req, res);
      } catch (error) {
        tx.setError(error);
        throw error;
      }
    };
    restore.push(() => {
      proto.emit = original;
    });
  }

  // The response is finished for the client when its last byte is handed to the kernel. Node calls
  // `_finish` once all of it is handed to the socket: from end() (the usual case), or, for a
  // pipelined response that waited for the ones before it, when its turn came. When the socket
  // took it all at once that moment is now, and Node's `finish` would come only after the slice is
  // over; otherwise (the kernel's buffer is full) `finish` tells.
  if (finishPatched) {
    responseProto._finish = function _finish(this: TracedResponse): void {
      originalFinish!.call(this);
      try {
        const tx = this[TX];
        if (tx !== undefined && tx.responseEnd < 0) {
          const socket = this.socket;
          // the app answered a client that was gone already: aborted, at this answer
          if (this.destroyed || socket === null || socket.destroyed) finished(this, tx, true);
          else if (socket.writableLength === 0) finished(this, tx);
          else {
            tx.answered(this.statusCode);
            this.on('finish', onFinish);
          }
        }
      } catch {
        onError();
      }
    };
    restore.push(() => {
      responseProto._finish = originalFinish;
    });
  }

  // A connection that closes before the response is finished: the request is aborted now, and what
  // the app's listeners of `close` do (stop a stream, release what it held) is its last work on
  // the request. Node emits those from the socket's callback, outside the request's context.
  for (const proto of [http.IncomingMessage.prototype, http.ServerResponse.prototype] as Array<{ emit: Emit }>) {
    const own = Object.prototype.hasOwnProperty.call(proto, 'emit');
    const original = proto.emit;
    proto.emit = function emit(this: unknown): boolean {
      if (arguments[0] !== 'close') return Reflect.apply(original, this, arguments) as boolean;
      const tx = (this as TracedRequest | TracedResponse)[TX];
      const res = tx?.response as ServerResponse | undefined;
      if (tx === undefined || !tx.open || tx.responseEnd >= 0 || res === undefined || res.writableFinished || !(res.destroyed || res.socket === null || res.socket.destroyed)) {
        return Reflect.apply(original, this, arguments) as boolean;
      }
      const prev = enter(tx);
      try {
        tx.abort(res.writableEnded || res.headersSent ? res.statusCode : undefined);
        return runInScope(tx, Reflect.apply, undefined, original, this, arguments) as boolean;
      } finally {
        leave(prev);
      }
    };
    restore.push(() => {
      if (own) proto.emit = original;
      else delete (proto as { emit?: Emit }).emit;
    });
  }

  return () => {
    for (const undo of restore) undo();
  };
}

/**
 * A response ended by code outside its request (no transaction, or one that is over): the request's
 * context was lost on the way (context-loss.ts). Another open request's code ending it is long
 * polling, and not counted.
 */
function watchEnds(losses: ContextLoss, onError: () => void): () => void {
  const proto = http.ServerResponse.prototype as unknown as { end: (this: TracedResponse, ...args: unknown[]) => unknown };
  const original = proto.end;
  proto.end = function end(this: TracedResponse): unknown {
    const tx = this[TX];
    if (tx !== undefined && !this.writableEnded) {
      try {
        const running = currentScope()?.tx;
        if (running !== tx && (running === undefined || !running.open)) losses.notice();
      } catch {
        onError();
      }
    }
    return Reflect.apply(original, this, arguments);
  };
  return () => {
    proto.end = original;
  };
}
