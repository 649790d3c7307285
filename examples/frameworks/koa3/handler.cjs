// Koa 3: the example app's request listener, required (CommonJS).
'use strict';
module.exports = require('../apps/koa.cjs')(require('koa'), require('@koa/router'));
