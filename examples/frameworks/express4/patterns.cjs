// Express 4: the app of real-app patterns (../apps/express-patterns.cjs), served (CommonJS).
'use strict';
require('../apps/listen.cjs')(require('../apps/express-patterns.cjs')(require('express'), 4));
