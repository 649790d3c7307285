/**
 * The loopscope agent API: what the agent cannot see by itself, added by hand ("bake it in").
 * Zero-code use is `node --import loopscope/register app.js`, which starts the agent; without it the
 * app calls `start()`.
 *
 * Until the agent is started (and always when it is disabled) every function only runs the code it
 * was given, as OpenTelemetry's API does until an SDK is registered: no hook, patch or timer is
 * installed by calling it. `onTransactionEnd` before the start is kept and attached at the start.
 */
import type { SegmentKind, TransactionRecord } from '@loopscope/protocol';
import { running, start, subscribe } from './agent.js';
import { currentScope, runIn } from './context.js';
import { callInScope } from './instrument/calls.js';
import { isThenable, runTransaction } from './run.js';
import { formatTraceParent } from './trace-context.js';
import type { TransactionListener } from './tracker.js';

export type { SegmentKind, SegmentRecord, TransactionRecord, ExternalByKind } from '@loopscope/protocol';
export type { AgentOptions, AgentConfig } from './config.js';
export type { TransactionListener } from './tracker.js';
export { start };

/** Runs `fn` (sync or async) as a transaction of its own — a background job, a queue message, a script. */
export function transaction<T>(name: string, fn: () => T): T {
  return runTransaction(running()?.tracker, name, fn);
}

/** Times `fn` (sync or async) as a segment of the current transaction; `kind` says what it waits on. */
export function segment<T>(name: string, kind: SegmentKind, fn: () => T): T {
  const scope = running() === undefined ? undefined : currentScope();
  if (scope === undefined || !scope.tx.open) return fn();
  const seg = scope.tx.startSegment(name, kind, scope.segment);
  let result: T;
  try {
    result = runIn(seg, fn);
  } catch (error) {
    seg.finish(error);
    throw error;
  }
  if (isThenable(result)) result.then(() => seg.finish(), (error: unknown) => seg.finish(error));
  else seg.finish();
  return result;
}

/**
 * Binds a callback to the current transaction, for callback-style APIs the agent does not know
 * (a `feedPuppy(callback)` of a legacy library). The transaction is not done while the callback is pending.
 */
export function wrap<F extends (...args: any[]) => any>(fn: F): F {
  const scope = running() === undefined ? undefined : currentScope();
  if (scope === undefined || typeof fn !== 'function' || !scope.tx.open) return fn;
  const tx = scope.tx;
  tx.hold();
  let pending = true;
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    try {
      return callInScope(scope, fn, this, args);
    } finally {
      if (pending) {
        pending = false;
        tx.release();
      }
    }
  };
  Object.defineProperty(wrapped, 'name', { value: fn.name });
  return wrapped as F;
}

/** The transaction the calling code runs in. */
export interface CurrentTransaction {
  readonly traceId: string;
  /** its W3C span id */
  readonly spanId: string;
  /**
   * A W3C `traceparent` naming this transaction as the caller, for a call over a transport the
   * agent does not see (the callee's agent, or any OpenTelemetry SDK, continues the trace)
   */
  readonly traceparent: string;
  readonly endpoint: string;
  /** Renames the transaction (for example with a route template the agent does not know). */
  setName(name: string): void;
  /** Records an error on the transaction (it counts as an error even with a 2xx response). */
  noticeError(error: unknown): void;
}

export function current(): CurrentTransaction | undefined {
  const tx = running() === undefined ? undefined : currentScope()?.tx;
  if (tx === undefined) return undefined;
  return {
    traceId: tx.traceId,
    spanId: tx.spanId,
    traceparent: formatTraceParent(tx.traceId, tx.spanId, tx.traceFlags),
    get endpoint() {
      return tx.endpoint;
    },
    setName(name: string) {
      if (typeof name !== 'string' || name.length === 0) return;
      tx.rename(name);
    },
    noticeError(error: unknown) {
      tx.setError(error);
    },
  };
}

/**
 * Each finished transaction, in process. Subscribed before the agent started, the listener gets the
 * transactions from the start on. Returns the function that unsubscribes.
 */
export function onTransactionEnd(listener: (record: TransactionRecord) => void): () => void {
  return subscribe(listener as TransactionListener);
}

/** Delivers every transaction that is done now, and ships what is aggregated to the collector. */
export async function flush(): Promise<void> {
  const a = running();
  if (a === undefined) return;
  a.tracker.flush();
  await a.exporter?.flush();
}

/**
 * Closes open transactions (flagged truncated if they still had work), delivers them, ships them
 * (waiting at most 2 s for the collector), and uninstalls.
 */
export async function shutdown(): Promise<void> {
  const a = running();
  if (a === undefined) return;
  a.tracker.closeAll();
  await a.exporter?.flush();
  a.stop();
}
