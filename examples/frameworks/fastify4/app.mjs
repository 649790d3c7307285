// The same app, with Fastify imported (ESM).
import fastify from 'fastify';
import build from '../apps/fastify.cjs';
import listen from '../apps/listen.cjs';

listen(await build(fastify));
