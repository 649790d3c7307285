/**
 * Running a function as a transaction of its own: `loopscope.transaction(name, fn)`, and each
 * message a queue consumer receives (instrument/amqplib.ts, nats.ts).
 */
import { runIn } from './context.js';
import { enter, enterArrived, leave } from './timing.js';
import type { RemoteParent } from './trace-context.js';
import type { Tracker } from './tracker.js';

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Runs `fn` (sync or async) as a transaction named `name` and returns its result. `arrived`: it is
 * the work of a message that came in (a consumer's callback), so it starts when that message was
 * ready, and the wait until now is blocking (as for a request). `parent`: the trace the message
 * carried in (its producer's `traceparent`), which the transaction continues.
 */
export function runTransaction<T>(tracker: Tracker | undefined, name: string, fn: () => T, arrived = false, parent?: RemoteParent): T {
  const tx = tracker?.begin(name, false);
  if (tx === undefined) return fn();
  if (parent !== undefined) tx.continues(parent);
  // a message was not ready before its producer sent it, when the producer's agent said when
  const prev = arrived ? enterArrived(tx, tx.calledAt) : enter(tx);
  let result: T;
  try {
    result = runIn(tx, fn);
  } catch (error) {
    tx.setError(error);
    tx.finishResponse();
    throw error;
  } finally {
    leave(prev);
  }
  if (isThenable(result)) {
    tx.hold();
    result.then(
      () => {
        tx.finishResponse();
        tx.release();
      },
      (error: unknown) => {
        tx.setError(error);
        tx.finishResponse();
        tx.release();
      },
    );
  } else tx.finishResponse();
  return result;
}

export { isThenable };
