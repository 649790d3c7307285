/**
 * What every framework instrumentation tells the transaction: that a router saw the request, which
 * route template matched it, and which error a handler raised. The rules (what a 404 is called,
 * which errors count) live here once; the framework files only find the moments.
 */
import { types } from 'node:util';
import { LIMITS, memoizeNames } from '@loopscope/protocol';
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
export const routeName = memoizeNames(5000, (method, template) => `${method} ${template === '' ? '/' : template}`.slice(0, LIMITS.endpoint));

/**
 * A template that ends in a wildcard, a catch-all: `*`, `/api*`, `/api/*`, `/:rest*`, `/:rest(.*)`
 * (Express 4), `*splat`, `/api*path`, `{/*path}` (path-to-regexp 8: Express 5, @koa/router), a
 * RegExp ending in `.*`.
 */
const CATCH_ALL = /(?:\*\w*\}?|\(\.?\*\)|\.\*\$?\/[dgimsuvy]*)$/;

export function isCatchAll(template: string): boolean {
  return CATCH_ALL.test(template);
}

/**
 * A route matched: the transaction is named after its template (the last match wins; a name the
 * app set stays). A catch-all takes any URL the client chooses, so when it is the last match and
 * the answer is a 4xx (a global prefix's middleware route, a catch-all that answers 404) the
 * request is unmatched, like one no route took (docs/instrumentation.md).
 */
export function routeMatched(tx: Transaction, method: string, template: string): void {
  tx.routeMatched(routeName(method, template), isCatchAll(template));
}

/** An Error, also one made in another realm (a vm context, a worker's structured clone). */
function isError(value: unknown): value is Error {
  return value instanceof Error || types.isNativeError(value);
}

/**
 * A framework's answer to a client's mistake: a 4xx in `status`, `statusCode` or `getStatus()`
 * (`ctx.throw(404)`, http-errors, Fastify's validation errors, NestJS's HttpException).
 */
function isClientError(value: object): boolean {
  const { status, statusCode, getStatus } = value as { status?: unknown; statusCode?: unknown; getStatus?: unknown };
  let code = typeof status === 'number' ? status : statusCode;
  if (typeof code !== 'number' && typeof getStatus === 'function') {
    try {
      code = (getStatus as () => unknown).call(value);
    } catch {
      return false;
    }
  }
  return typeof code === 'number' && code >= 400 && code < 500;
}

/**
 * What a handler or middleware threw, rejected with or passed to `next(value)`. An Error counts,
 * whatever the response says, unless it carries a 4xx status: that is how frameworks answer a
 * client's mistake, not a failure of the app. Any other value (a response body, `{ error: 'not
 * found' }`) is not an error by itself: Express hands it to the error middleware like an Error, but
 * apps use that to pass bodies on; if the answer is a 5xx, the 5xx makes the error and the value's
 * text is its message. docs/instrumentation.md, "What counts as an error".
 */
export function handlerError(tx: Transaction, error: unknown): void {
  if (error === null || error === undefined) return;
  if (typeof error === 'object' && isClientError(error)) return;
  if (isError(error)) tx.setError(error);
  else tx.noteFailure(error);
}

/** `handlerError` for the running transaction. */
export function noteError(error: unknown): void {
  const tx = currentTransaction();
  if (tx !== undefined) handlerError(tx, error);
}
