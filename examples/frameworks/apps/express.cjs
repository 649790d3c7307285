// The Express app of the framework examples (Express 4 and 5): mounted routers and a sub-app, nested params,
// errors thrown, rejected and passed to next(err), one recovered by a custom error handler, a 404.
'use strict';

const later = () => new Promise((resolve) => setTimeout(resolve, 2));

/** @param express the `express` module; @param major its major version (Express 4 does not catch rejections) */
module.exports = function build(express, major) {
  const app = express();
  const async = (fn) => (major >= 5 ? fn : (req, res, next) => fn(req, res, next).catch(next));

  const posts = express.Router({ mergeParams: true });
  posts.get('/:postId', (req, res) => res.json({ user: req.params.id, post: req.params.postId }));

  const users = express.Router();
  users.get('/:id', (req, res) => res.json({ id: req.params.id }));
  users.use('/:id/posts', posts);
  users.get('/missing/:id', (req, res, next) => next(Object.assign(new Error('no such user'), { status: 404 })));

  const api = express.Router();
  api.use((req, res, next) => next()); // a middleware every /api request passes
  api.use('/users', users);
  api.get('/recovered', () => {
    throw Object.assign(new Error('recovered boom'), { recover: true });
  });

  const admin = express(); // a sub-app
  admin.get('/stats/:id', (req, res) => res.json({ stats: req.params.id }));

  app.get('/health', (req, res) => res.send('ok'));
  app.use('/api', api);
  app.use('/admin', admin);
  app.get('/fail/sync', () => {
    throw new Error('sync boom');
  });
  app.get(
    '/fail/async',
    async(async () => {
      await later();
      throw new Error('async boom');
    }),
  );
  app.get('/fail/next', (req, res, next) => next(new Error('next boom')));
  app.use((err, req, res, next) => {
    if (err.recover) res.status(200).json({ recovered: true });
    else next(err);
  });
  return app;
};
