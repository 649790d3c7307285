'use strict';
require('../apps/listen.cjs')(require('./handler.cjs'));
