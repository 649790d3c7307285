// Patterns of real Express apps that the agent must read as the app meant them (issue 19), for the
// agent's tests: bodies and failures passed to next() as plain values, an HttpException-style 4xx,
// a router that restores req.url to the whole URL, an app that hands a request back to itself, a
// global prefix with a catch-all, outbound calls with word-like ids, and a handler's error stack.
'use strict';
const http = require('node:http');

/** @param express the `express` module; @param major its major version */
module.exports = function build(express, major) {
  const app = express();

  // handlers that pass the response body (or a failure) to next(), answered by a final 4-arg middleware
  app.get('/body/:id', (req, res, next) => next({ id: req.params.id, name: 'puppy' }));
  app.get('/missing/:id', (req, res, next) => next({ error: 'not found' }));
  app.get('/broken/:id', (req, res, next) => next({ error: 'database unavailable' }));
  app.get('/opaque', (req, res, next) => {
    const value = { code: 7n, detail: 'x'.repeat(1000) };
    value.self = value;
    next(value);
  });
  // NestJS's HttpException keeps its status private and answers it through getStatus()
  class HttpException extends Error {
    #status;
    constructor(message, status) {
      super(message);
      this.#status = status;
    }

    getStatus() {
      return this.#status;
    }
  }
  app.get('/forbidden', () => {
    throw new HttpException('Forbidden resource', 403);
  });

  // a router mounted at /legacy whose routes are written with the whole path: it restores req.url
  const legacy = express.Router();
  legacy.use((req, res, next) => {
    req.url = req.originalUrl;
    next();
  });
  legacy.get('/legacy/data/items', (req, res) => res.json({ legacy: true }));
  app.use('/legacy', legacy);

  // a gate at /store that restores req.url and hands the request to the whole app again
  const gate = express.Router();
  gate.use((req, res, next) => {
    if (req.rerouted) return next();
    req.rerouted = true;
    req.url = req.originalUrl;
    app.handle(req, res, next);
  });
  const store = express.Router();
  store.get('/data/items', (req, res) => res.json({ store: true }));
  app.use('/store', gate);
  app.use('/store', store);

  // a global prefix: a catch-all route every /api request passes (as frameworks register their
  // prefix middleware), then the API's router
  app.all(major >= 5 ? '/api*path' : '/api*', (req, res, next) => next());
  const api = express.Router();
  api.get('/things/:id', (req, res) => res.json({ thing: req.params.id }));
  app.use('/api', api);
  // a catch-all that answers (a single-page app): it names its requests
  app.get(major >= 5 ? '/app/*splat' : '/app/*', (req, res) => res.send('page'));

  // outbound calls whose paths hold word-like ids
  app.get('/outbound', (req, res, next) => {
    const paths = ['/posts/u2329ad', '/profile/abort1', '/v2/oauth2/token', '/users/42/avatar'];
    let left = paths.length;
    for (const path of paths) {
      http
        .get(process.env.UPSTREAM + path, (r) => {
          r.resume();
          r.on('end', () => --left === 0 && res.send('ok'));
        })
        .on('error', next);
    }
  });

  // the stack of an error thrown in a handler, deep in mounted routers, as the app sees it
  const inner = express.Router();
  inner.get('/throw', () => {
    throw new Error('stack boom');
  });
  const outer = express.Router();
  outer.use('/inner', inner);
  app.use('/deep', outer);
  app.get('/stack/full', (req, res, next) => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = Infinity;
    try {
      throw new Error('full stack');
    } catch (err) {
      next(err);
    } finally {
      Error.stackTraceLimit = limit;
    }
  });

  app.use((value, req, res, next) => {
    if (value instanceof Error) {
      if (typeof value.getStatus === 'function') return res.status(value.getStatus()).json({ message: value.message });
      return res.status(500).json({ message: value.message, stack: value.stack });
    }
    if (value.error === 'not found') return res.status(404).json(value);
    if (value.error !== undefined || value.code !== undefined) return res.status(500).json({ failed: true });
    res.status(200).json(value);
  });
  return app;
};
