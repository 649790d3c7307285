// The Koa app of the framework examples (Koa 2 and 3 with @koa/router): nested routers with
// prefixes, errors thrown and rejected, one recovered by an error-handling middleware, a 404.
'use strict';

const later = () => new Promise((resolve) => setTimeout(resolve, 2));

/** @param Koa the `koa` module; @param Router @koa/router's Router */
module.exports = function build(Koa, Router) {
  const app = new Koa();
  // error-handling middleware: answers 200 for a recoverable error, Koa's usual answer otherwise
  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!err.recover) throw err;
      ctx.status = 200;
      ctx.body = { recovered: true };
    }
  });
  app.silent = true;

  const posts = new Router();
  posts.get('/:postId', (ctx) => {
    ctx.body = { user: ctx.params.id, post: ctx.params.postId };
  });

  const users = new Router();
  users.get('/:id', (ctx) => {
    ctx.body = { id: ctx.params.id };
  });
  users.use('/:id/posts', posts.routes());
  users.get('/missing/:id', (ctx) => ctx.throw(404, 'no such user'));

  const api = new Router({ prefix: '/api' });
  api.use(async (ctx, next) => next()); // a middleware every /api request passes
  api.use('/users', users.routes());
  api.get('/recovered', () => {
    throw Object.assign(new Error('recovered boom'), { recover: true });
  });

  const root = new Router();
  root.get('/health', (ctx) => {
    ctx.body = 'ok';
  });
  root.get('/fail/sync', () => {
    throw new Error('sync boom');
  });
  root.get('/fail/async', async () => {
    await later();
    throw new Error('async boom');
  });

  app.use(root.routes());
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app.callback();
};
