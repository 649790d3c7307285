/**
 * Express: the endpoint is the matched route's template, mount prefixes included
 * (`app.use('/api', users)` + `users.get('/:id')` → `GET /api/:id`); errors raised in handlers and
 * middleware are recorded. Express 4 keeps its router in `express/lib/router`; Express 5 uses the
 * `router` package (2.x), so both are listed. Patched (see docs/instrumentation.md for why router
 * 2.3's `express.router.request` tracing channel is not used):
 *
 * - `Router#use`: a router or sub-app mounted under a path is wrapped so that, while the request is
 *   inside it, the request carries the mount template (plain middleware is left as it is: no cost)
 * - `Router#handle`: a router saw the request (an unmatched 4xx is named `GET (unmatched)`)
 * - `Route#dispatch`: a route matched; the template is the mount prefixes plus the route's path
 * - `Layer#handle_error` / `handleError`: an error is on its way through the middleware
 */
import type { Exports, ModuleInstrumentation } from './modules.js';
import { wrapMethod } from './modules.js';
import { agentFault, currentTransaction, handlerError, routeMatched } from './route.js';

/** The mount templates the request is inside of, joined: `/api/users`. */
const PREFIX = Symbol('loopscope.routePrefix');

interface Request {
  method?: string;
  [PREFIX]?: string;
}
type Next = (err?: unknown) => unknown;
type Handler = (this: unknown, req: Request, res: unknown, next: Next) => unknown;

/** `/api/` → `/api`, `/` → `` (mounting at the root adds nothing). */
function mountTemplate(path: unknown): string {
  const text = typeof path === 'string' ? path : Array.isArray(path) ? path.map(String).join(',') : String(path);
  return text.endsWith('/') ? text.slice(0, -1) : text;
}

/** A router (it has a stack of layers) or Express's wrapper around a mounted sub-app. */
function isMountable(fn: unknown): fn is Handler {
  return typeof fn === 'function' && (Array.isArray((fn as { stack?: unknown }).stack) || fn.name === 'mounted_app');
}

/** Runs `fn` with `template` added to the request's prefix, and takes it off when `fn` passes the request on. */
function mount(template: string, fn: Handler): Handler {
  const mounted = function (this: unknown, req: Request, res: unknown, next: Next): unknown {
    const outer = req[PREFIX];
    req[PREFIX] = outer === undefined ? template : outer + template;
    return fn.call(this, req, res, (err?: unknown) => {
      req[PREFIX] = outer;
      return next(err);
    });
  };
  // what Express and tools that list routes read from a mounted router: its name (`router`, the
  // layer's name) and its `stack`
  Object.defineProperty(mounted, 'name', { value: fn.name });
  Object.defineProperty(mounted, 'stack', { get: () => (fn as { stack?: unknown }).stack });
  return mounted;
}

function isRoutingSignal(err: unknown): boolean {
  return err === 'route' || err === 'router';
}

/** Wraps the `use`, `handle` and `Route#dispatch` of one router implementation. */
function patchRouter(router: object, route: object): void {
  wrapMethod(router as { use: unknown }, 'use', (original) =>
    function use(this: unknown, ...args: unknown[]) {
      let first = args[0];
      while (Array.isArray(first) && first.length > 0) first = first[0];
      if (typeof first !== 'function' && args.length > 1) {
        const template = mountTemplate(args[0]);
        if (template !== '') {
          for (let i = 1; i < args.length; i++) {
            const fn = args[i];
            if (isMountable(fn)) args[i] = mount(template, fn);
            else if (Array.isArray(fn)) args[i] = fn.flat(Infinity).map((f: unknown) => (isMountable(f) ? mount(template, f) : f));
          }
        }
      }
      return original.apply(this, args);
    },
  );

  wrapMethod(router as { handle: unknown }, 'handle', (original) =>
    function handle(this: unknown, req: unknown, res: unknown, out: unknown) {
      try {
        const tx = currentTransaction();
        if (tx !== undefined) tx.routeSeen();
      } catch {
        agentFault();
      }
      return original.call(this, req, res, out);
    },
  );

  wrapMethod(route as { dispatch: unknown }, 'dispatch', (original) =>
    function dispatch(this: unknown, req: unknown, res: unknown, done: unknown) {
      const tx = currentTransaction();
      if (tx === undefined || typeof done !== 'function') return original.call(this, req, res, done);
      try {
        const request = req as Request;
        const template = (this as { path?: unknown }).path;
        const path = typeof template === 'string' ? template : String(template);
        const prefix = request[PREFIX];
        routeMatched(tx, request.method ?? 'GET', prefix === undefined ? path : prefix + path);
      } catch {
        agentFault();
      }
      // the route's handlers are done: an error they raised (thrown, rejected, next(err)) comes out here
      return original.call(this, req, res, (err?: unknown) => {
        if (err && !isRoutingSignal(err)) handlerError(tx, err);
        return (done as Next)(err);
      });
    },
  );
}

/** `Layer#handle_error` (Express 4) or `Layer#handleError` (router 2): runs only while an error is pending. */
function patchLayer(layer: Exports, method: 'handle_error' | 'handleError'): void {
  const proto = (layer as { prototype?: object }).prototype;
  if (proto === undefined) return;
  wrapMethod(proto as Record<string, unknown>, method, (original) =>
    function handleError(this: unknown, ...args: unknown[]) {
      try {
        const tx = currentTransaction();
        if (tx !== undefined && !isRoutingSignal(args[0])) handlerError(tx, args[0]);
      } catch {
        agentFault();
      }
      return original.apply(this, args);
    },
  );
}

interface ExpressExports {
  Router?: object;
  Route?: { prototype: object };
}

/** Express 4: its router lives in `express/lib/router`, exported as `express.Router` and `express.Route`. */
export const express4: ModuleInstrumentation = {
  module: 'express',
  majors: [4],
  patch(exports) {
    const { Router, Route } = exports as ExpressExports;
    // Express 4's Router is the prototype object every router function inherits from
    if (Router !== undefined && Route !== undefined) patchRouter(Router, Route.prototype);
  },
  files: { 'lib/router/layer.js': (layer) => patchLayer(layer, 'handle_error') },
};

/** Express 5's router (the `router` package, 2.x): also covers apps that use `router` on its own. */
export const router2: ModuleInstrumentation = {
  module: 'router',
  majors: [2],
  patch(exports) {
    const Router = exports as { prototype?: object; Route?: { prototype: object } };
    if (Router.prototype !== undefined && Router.Route !== undefined) patchRouter(Router.prototype, Router.Route.prototype);
  },
  files: { 'lib/layer.js': (layer) => patchLayer(layer, 'handleError') },
};
