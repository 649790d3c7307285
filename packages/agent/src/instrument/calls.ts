/**
 * What every database, cache and queue instrumentation does with a call: a segment started in the
 * caller's context when the call is made, and its completion (a callback or a promise) finishing
 * the segment and brought back to that context — never the context of whoever happened to own the
 * pooled connection or socket the answer came in on.
 */
import { SEGMENT_TEXT_LIMITS, type SegmentKind } from '@loopscope/protocol';
import { currentScope, runInScope } from '../context.js';
import { enter, leave } from '../timing.js';
import type { Segment, Scope } from '../transaction.js';

/** The scope of the calling code, when it is inside an open transaction. */
export function activeScope(): Scope | undefined {
  const scope = currentScope();
  return scope === undefined || !scope.tx.open ? undefined : scope;
}

const cut = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** A segment for a call made now in `scope`: `name` is what the waterfall shows (`postgres SELECT`). */
export function startCall(scope: Scope, name: string, kind: SegmentKind, operation: string, target: string, statement: string | undefined): Segment {
  const seg = scope.tx.startSegment(name, kind, scope.segment);
  seg.operation = cut(operation, SEGMENT_TEXT_LIMITS.operation);
  if (target.length > 0) seg.target = cut(target, SEGMENT_TEXT_LIMITS.target);
  if (statement !== undefined && statement.length > 0) seg.statement = statement;
  return seg;
}

/** Calls `fn` with `self` and `args` inside `scope`, its CPU counted to the scope's transaction. */
export function callInScope(scope: Scope, fn: (...args: any[]) => unknown, self: unknown, args: unknown[]): unknown {
  const prev = enter(scope.tx);
  try {
    return runInScope(scope, Reflect.apply, undefined, fn, self, args);
  } finally {
    leave(prev);
  }
}

/**
 * Calls `fn` outside of any transaction: for a library's own bookkeeping that happens to run in a
 * request (a pool's idle timer armed when a client is released must not keep that request open).
 */
export function callOutside(fn: (...args: any[]) => unknown, self: unknown, args: unknown[]): unknown {
  return runInScope(undefined, Reflect.apply, undefined, fn, self, args);
}

/** An error-first callback that finishes `seg` (failed when called with an error), then runs `callback` in `scope`. */
export function finishThenCall(seg: Segment, scope: Scope, callback: (...args: any[]) => unknown): (...args: unknown[]) => unknown {
  return function (this: unknown, ...args: unknown[]): unknown {
    seg.finish(args[0]);
    return callInScope(scope, callback, this, args);
  };
}

/** Runs a call that is over when it returns (a publish that only buffers): `seg` ends with it, failed if it throws. */
export function finishWhenReturned(seg: Segment, fn: (...args: any[]) => unknown, self: unknown, args: unknown[]): unknown {
  try {
    const result = Reflect.apply(fn, self, args);
    seg.finish();
    return result;
  } catch (error) {
    seg.finish(error);
    throw error;
  }
}

/** Finishes `seg` at the `end` or `error` event of a library's query object (the style without callback or promise). */
export function finishOnEnd(emitter: { once(event: string, listener: (...args: any[]) => unknown): unknown }, seg: Segment): void {
  emitter.once('end', () => seg.finish());
  emitter.once('error', (error: unknown) => seg.finish(error));
}

/** Finishes `seg` when `promise` settles; returns `promise` itself (the caller's, untouched). */
export function finishOnSettle<P>(promise: P, seg: Segment): P {
  if (promise !== null && typeof (promise as { then?: unknown }).then === 'function') {
    (promise as PromiseLike<unknown>).then(
      () => seg.finish(),
      (error: unknown) => seg.finish(error ?? 'rejected'),
    );
  } else seg.finish();
  return promise;
}
