/**
 * What every framework instrumentation tells the transaction: that a router saw the request, which
 * route template matched it, and which error a handler raised. The rules (what a 404 is called,
 * which errors count) live here once; the framework files only find the moments.
 */
import { memoizeNames } from '@loopscope/protocol';
import { currentScope } from '../context.js';
import type { Transaction } from '../transaction.js';

let faults = 0;

/** An exception inside a framework wrapper's own work: counted (Agent#errors), never passed to the app. */
export function agentFault(): void {
  faults++;
}

export function frameworkFaults(): number {
  return faults;
}

/** The transaction of the running code, if any (and still open). */
export function currentTransaction(): Transaction | undefined {
  const tx = currentScope()?.tx;
  return tx !== undefined && tx.open ? tx : undefined;
}

/** `GET` + `/users/:id` → `GET /users/:id`, the same string object every time (no allocation per request). */
export const routeName = memoizeNames(5000, (method, template) => `${method} ${template === '' ? '/' : template}`.slice(0, 512));

/** A route matched: the transaction is named after its template (the last match wins; a name the app set stays). */
export function routeMatched(tx: Transaction, method: string, template: string): void {
  tx.routeMatched(routeName(method, template));
}

/**
 * An error a handler or middleware threw, rejected with or passed to `next(err)`. It counts, whatever
 * the response says, unless it carries a 4xx status (`ctx.throw(404)`, http-errors, a validation
 * error): that is how frameworks answer a client's mistake, not a failure of the app.
 */
export function handlerError(tx: Transaction, error: unknown): void {
  if (error === null || error === undefined) return;
  if (typeof error === 'object') {
    const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
    const code = typeof status === 'number' ? status : statusCode;
    if (typeof code === 'number' && code >= 400 && code < 500) return;
  }
  tx.setError(error);
}

/** `handlerError` for the running transaction. */
export function noteError(error: unknown): void {
  const tx = currentTransaction();
  if (tx !== undefined) handlerError(tx, error);
}
