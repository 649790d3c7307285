/**
 * Express: the endpoint is the matched route's template, mount prefixes included
 * (`app.use('/api', users)` + `users.get('/:id')` → `GET /api/:id`); errors raised in handlers and
 * middleware are recorded. Express 4 keeps its router in `express/lib/router`; Express 5 uses the
 * `router` package (2.x), so both are listed. See docs/instrumentation.md for why router 2.3's
 * `express.router.request` tracing channel is not used.
 *
 * Nothing the agent adds is on the stack while the app's handlers run (their errors' stacks hold
 * no frame of the agent): the patched methods are ones Express calls and that return before it
 * calls the app, except the error path.
 *
 * - `Router#use`: the layers it adds for a router or sub-app mounted under a path are marked with
 *   the mount's template (setup time, nothing per request)
 * - `Layer#match`: a router is looking at the request (an unmatched 4xx is `GET (unmatched)`); a
 *   marked layer that matches records, for the `req.baseUrl` it is about to set, the mount
 *   templates joined (`/api/users/:id/posts`)
 * - `Route#_handles_method` / `_handlesMethod`: a route is about to be dispatched; the template is
 *   the one recorded for the request's `req.baseUrl` plus the route's path
 * - `Layer#handle_error` / `handleError`: an error is on its way through the middleware (its frame
 *   is on the stack while an error-handling middleware runs)
 */
import type { Exports, ModuleInstrumentation } from './modules.js';
import { wrapMethod } from './modules.js';
import type { Transaction } from '../transaction.js';
import { agentFault, currentTransaction, handlerError, routeMatched } from './route.js';

/** On a layer that holds a mounted router or sub-app: its mount template (`/api`, `/:id/posts`). */
const MOUNT = Symbol('loopscope.mountTemplate');
/** On a request: for each `req.baseUrl` a mounted layer set, the mount templates that lead to it. */
const MOUNTS = Symbol('loopscope.mounts');

interface Request {
  method?: string;
  url?: string;
  originalUrl?: string;
  baseUrl?: string;
  [MOUNTS]?: Map<string, string>;
}

interface Layer {
  handle?: unknown;
  /** Express 4: the part of the path the last match took */
  path?: unknown;
  [MOUNT]?: string;
}

/** `/api/` → `/api`, `/` → `` (mounting at the root adds nothing). */
function mountTemplate(path: unknown): string {
  const text = typeof path === 'string' ? path : Array.isArray(path) ? path.map(String).join(',') : String(path);
  return text.endsWith('/') ? text.slice(0, -1) : text;
}

/** A router (it has a stack of layers) or Express's wrapper around a mounted sub-app. */
function isMountable(fn: unknown): boolean {
  return typeof fn === 'function' && (Array.isArray((fn as { stack?: unknown }).stack) || fn.name === 'mounted_app');
}

function isRoutingSignal(err: unknown): boolean {
  return err === 'route' || err === 'router';
}

/** The request of an HTTP transaction: the server's own object, which Express extends in place. */
function requestOf(tx: Transaction): Request | undefined {
  return tx.response?.req as Request | undefined;
}

/**
 * The mount templates of the routers the request is in now. None when the app has set `req.url`
 * back to the whole URL (`req.url = req.originalUrl`): what is matched from there is matched
 * against the whole path, whatever routers it is mounted in (and a request handed to the app again
 * from the top starts from no prefix).
 */
function prefixOf(req: Request): string {
  if (req.url === req.originalUrl) return '';
  const base = req.baseUrl;
  return base === undefined || base === '' ? '' : (req[MOUNTS]?.get(base) ?? '');
}

/** A marked layer matched: Express sets `req.baseUrl` to its parent's plus the path it took. */
function enterMount(tx: Transaction, layer: Layer, matched: unknown): void {
  const req = requestOf(tx);
  if (req === undefined) return;
  const taken = typeof matched === 'object' && matched !== null ? (matched as { path?: unknown }).path : layer.path;
  if (typeof taken !== 'string') return;
  const base = (req.baseUrl ?? '') + (taken.endsWith('/') ? taken.slice(0, -1) : taken);
  let mounts = req[MOUNTS];
  if (mounts === undefined) req[MOUNTS] = mounts = new Map();
  mounts.set(base, prefixOf(req) + layer[MOUNT]!);
}

/** Marks the mount layers `use` adds, and names the transaction when a route is about to be dispatched. */
function patchRouter(router: object, route: object): void {
  wrapMethod(router as { use: unknown }, 'use', (original) =>
    function use(this: unknown, ...args: unknown[]) {
      const stack = (this as { stack?: unknown }).stack;
      const before = Array.isArray(stack) ? stack.length : 0;
      const result: unknown = original.apply(this, args);
      try {
        let first = args[0];
        while (Array.isArray(first) && first.length > 0) first = first[0];
        if (typeof first !== 'function' && args.length > 1 && Array.isArray(stack)) {
          const template = mountTemplate(args[0]);
          if (template !== '') {
            for (let i = before; i < stack.length; i++) {
              const layer = stack[i] as Layer;
              if (isMountable(layer.handle)) layer[MOUNT] = template;
            }
          }
        }
      } catch {
        agentFault();
      }
      return result;
    },
  );

  const handlesMethod = '_handlesMethod' in route ? '_handlesMethod' : '_handles_method';
  wrapMethod(route as Record<string, unknown>, handlesMethod, (original) =>
    function handles(this: unknown, method: unknown) {
      const yes: unknown = original.call(this, method);
      if (yes === true) {
        try {
          const tx = currentTransaction();
          if (tx !== undefined) {
            const req = requestOf(tx);
            const template = (this as { path?: unknown }).path;
            const path = typeof template === 'string' ? template : String(template);
            routeMatched(tx, req?.method ?? String(method).toUpperCase(), req === undefined ? path : prefixOf(req) + path);
          }
        } catch {
          agentFault();
        }
      }
      return yes;
    },
  );
}

/** `Layer#match`, and `Layer#handle_error` (Express 4) or `Layer#handleError` (router 2), which runs only while an error is pending. */
function patchLayer(layer: Exports, method: 'handle_error' | 'handleError'): void {
  const proto = (layer as { prototype?: object }).prototype;
  if (proto === undefined) return;
  wrapMethod(proto as Record<string, unknown>, 'match', (original) =>
    function match(this: unknown, path: unknown) {
      const matched: unknown = original.call(this, path);
      const layer = this as Layer;
      try {
        const tx = currentTransaction();
        if (tx !== undefined) {
          tx.routeSeen();
          if (matched && layer[MOUNT] !== undefined) enterMount(tx, layer, matched);
        }
      } catch {
        agentFault();
      }
      return matched;
    },
  );
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
