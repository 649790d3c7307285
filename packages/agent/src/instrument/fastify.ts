/**
 * Fastify 4 and 5, without patching: Fastify publishes every new instance on the
 * `fastify.initialization` diagnostics channel, before the app registers anything, and the agent
 * adds two root hooks there (inherited by every plugin and the not-found handler):
 *
 * - `onRequest`: the route's template (`request.routeOptions.url`, prefixes included) names the
 *   transaction; a request with no route (the 404 handler) is unmatched
 * - `onError`: an error on its way to the error handler (thrown, rejected, from a hook or a
 *   validation) is recorded, even when a custom error handler answers 200
 *
 * Fastify 5 also publishes `tracing:fastify.request.handler:*`; it is not used: it starts only at
 * the handler (not for 404s, nor errors from hooks) and allocates a context per request once
 * subscribed, where a hook costs one call.
 */
import diagnostics from 'node:diagnostics_channel';
import { currentTransaction, handlerError, routeMatched } from './route.js';

interface FastifyRequest {
  method: string;
  /** `url` is the route's template, undefined in the not-found handler */
  routeOptions?: { url?: string };
}
type Done = (err?: Error) => void;
interface FastifyInstance {
  addHook(name: 'onRequest', hook: (request: FastifyRequest, reply: unknown, done: Done) => void): unknown;
  addHook(name: 'onError', hook: (request: FastifyRequest, reply: unknown, error: unknown, done: Done) => void): unknown;
}

export function instrumentFastify(onAgentError: () => void): () => void {
  function onRequest(request: FastifyRequest, _reply: unknown, done: Done): void {
    try {
      const tx = currentTransaction();
      if (tx !== undefined) {
        const url = request.routeOptions?.url;
        if (url === undefined) tx.routeSeen();
        else routeMatched(tx, request.method, url);
      }
    } catch {
      onAgentError();
    }
    done();
  }

  function onError(_request: FastifyRequest, _reply: unknown, error: unknown, done: Done): void {
    try {
      const tx = currentTransaction();
      if (tx !== undefined) handlerError(tx, error);
    } catch {
      onAgentError();
    }
    done();
  }

  const channel = diagnostics.channel('fastify.initialization');
  const subscriber = (message: unknown): void => {
    try {
      const fastify = (message as { fastify?: FastifyInstance }).fastify;
      if (fastify === undefined) return;
      fastify.addHook('onRequest', onRequest);
      fastify.addHook('onError', onError);
    } catch {
      onAgentError();
    }
  };
  channel.subscribe(subscriber);
  return () => channel.unsubscribe(subscriber);
}
