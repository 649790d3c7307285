// Fastify 4: the example app's request listener (a promise of it), required (CommonJS).
'use strict';
module.exports = require('../apps/fastify.cjs')(require('fastify'));
