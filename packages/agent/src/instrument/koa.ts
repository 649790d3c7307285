/**
 * Koa 2 and 3 with @koa/router 15. Koa has no routes of its own: the router names the transaction.
 *
 * - `@koa/router` `Router#middleware` (what `routes()` returns): the router saw the request; an
 *   error rejected by the route's handlers is recorded on its way out, before an error-handling
 *   middleware upstream can turn it into a 200
 * - `@koa/router` `Router#_setMatchedRouteInfo`: the route that matched (its path has the prefixes
 *   of nested routers and `prefix` in it) names the transaction
 * - Koa's `ctx.onerror` (lib/context.js): errors from any middleware that reached Koa itself
 *
 * @koa/router 15 ships two builds (dist/index.js for `require`, dist/index.mjs for `import`):
 * each is its own copy, and each is patched when loaded. Koa's ESM entry loads its CommonJS build.
 */
import type { ModuleInstrumentation } from './modules.js';
import { wrapMethod } from './modules.js';
import { agentFault, currentTransaction, handlerError, noteError, routeMatched } from './route.js';

interface KoaContext {
  method: string;
  _matchedRoute?: unknown;
}
type Middleware = (this: unknown, ctx: KoaContext, next: unknown) => unknown;

/** Runs where the rejection is handled, in the request's context: records and passes the error on. */
function rejected(error: unknown): never {
  try {
    noteError(error);
  } catch {
    agentFault();
  }
  throw error;
}

function patchRouter(Router: { prototype: object }): void {
  const proto = Router.prototype as Record<string, unknown>;
  wrapMethod(proto, 'middleware', (original) =>
    function middleware(this: unknown, ...args: unknown[]) {
      const dispatch = original.apply(this, args) as Middleware;
      if (typeof dispatch !== 'function') return dispatch;
      const traced = function (this: unknown, ctx: KoaContext, next: unknown): unknown {
        const tx = currentTransaction();
        if (tx === undefined) return dispatch.call(this, ctx, next);
        tx.routeSeen();
        const result = dispatch.call(this, ctx, next);
        return result instanceof Promise ? result.then(undefined, rejected) : result;
      };
      // what @koa/router reads back from a router's middleware (nesting with router.use)
      return Object.assign(traced, dispatch);
    },
  );
  wrapMethod(proto, '_setMatchedRouteInfo', (original) =>
    function setMatchedRouteInfo(this: unknown, context: unknown, layers: unknown) {
      const result = original.call(this, context, layers);
      try {
        const ctx = context as KoaContext;
        const tx = currentTransaction();
        if (tx !== undefined && typeof ctx._matchedRoute === 'string') routeMatched(tx, ctx.method, ctx._matchedRoute);
      } catch {
        agentFault();
      }
      return result;
    },
  );
}

export const koaRouter: ModuleInstrumentation = {
  module: '@koa/router',
  majors: [15],
  patch(exports) {
    // CommonJS: module.exports is the Router (with .Router on it); ESM: the namespace has Router
    const Router = exports.Router ?? exports.default;
    if (typeof Router === 'function') patchRouter(Router as { prototype: object });
  },
};

export const koa: ModuleInstrumentation = {
  module: 'koa',
  majors: [2, 3],
  files: {
    // the prototype of every app's ctx
    'lib/context.js'(context) {
      wrapMethod(context, 'onerror', (original) =>
        function onerror(this: unknown, ...args: unknown[]) {
          try {
            const tx = currentTransaction();
            if (tx !== undefined) handlerError(tx, args[0]);
          } catch {
            agentFault();
          }
          return original.apply(this, args);
        },
      );
    },
  },
};
