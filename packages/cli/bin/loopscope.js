#!/usr/bin/env node
// The `loopscope` command; the code is compiled TypeScript in dist/ (npm run build). The Node.js is
// checked first: on one the collector does not run on, its SQLite library would crash Node as it
// loads (Node 20: a segfault, no message), so the command says what it needs instead.
import { SUPPORTED_NODE, supportedNode } from '@loopscope/protocol';

if (!supportedNode(process.version)) {
  console.error(`loopscope: Node.js ${process.version} is not supported; use one of ${SUPPORTED_NODE} (22.22.0 or later on 22, 24.13.0 or later on 24, or 26 and later)`);
  process.exit(1);
}
await import('../dist/src/main.js');
