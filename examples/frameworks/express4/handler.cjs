// Express 4: the example app's request listener, required (CommonJS).
'use strict';
module.exports = require('../apps/express.cjs')(require('express'), 4);
