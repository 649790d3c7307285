'use strict';
require('./handler.cjs').then(require('../apps/listen.cjs'));
