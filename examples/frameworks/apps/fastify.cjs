// The Fastify app of the framework examples (Fastify 4 and 5): prefixed plugins, nested params,
// errors thrown, rejected and sent, one recovered by a custom error handler, a 404.
'use strict';
const http = require('node:http');

const later = () => new Promise((resolve) => setTimeout(resolve, 2));

/** @param fastify the `fastify` module. Resolves to the app's request listener. */
module.exports = async function build(fastify) {
  let handler;
  const app = fastify({
    serverFactory(h) {
      handler = h;
      return http.createServer(h);
    },
  });
  app.setErrorHandler((err, request, reply) => {
    if (err.recover) reply.code(200).send({ recovered: true });
    else reply.code(err.statusCode ?? 500).send({ error: err.message });
  });

  app.get('/health', async () => 'ok');
  app.get('/fail/sync', () => {
    throw new Error('sync boom');
  });
  app.get('/fail/async', async () => {
    await later();
    throw new Error('async boom');
  });
  app.get('/fail/next', (request, reply) => reply.send(new Error('next boom')));

  await app.register(
    async (api) => {
      api.addHook('onRequest', (request, reply, done) => done()); // a hook every /api request passes
      await api.register(
        async (users) => {
          users.get('/:id', async (request) => ({ id: request.params.id }));
          users.get('/:id/posts/:postId', async (request) => ({ user: request.params.id, post: request.params.postId }));
          users.get('/missing/:id', async () => {
            throw Object.assign(new Error('no such user'), { statusCode: 404 });
          });
        },
        { prefix: '/users' },
      );
      api.get('/recovered', async () => {
        throw Object.assign(new Error('recovered boom'), { recover: true });
      });
    },
    { prefix: '/api' },
  );
  await app.ready();
  return handler;
};
