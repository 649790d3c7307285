#!/usr/bin/env node
// The `loopscope` command; the code is compiled TypeScript in dist/ (npm run build).
import '../dist/src/main.js';
