// The same app, with Koa and @koa/router imported (ESM).
import Koa from 'koa';
import Router from '@koa/router';
import build from '../apps/koa.cjs';
import listen from '../apps/listen.cjs';

listen(build(Koa, Router));
