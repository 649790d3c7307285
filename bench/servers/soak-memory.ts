// What the soak benchmark's processes report of their memory when the driver asks ('memory' over
// IPC): the heap in use after a full collection (what the process keeps), and its resident set.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface MemoryMessage {
  type: 'memory';
  /** bytes in use on the V8 heap after a full GC */
  heapUsed: number;
  heapTotal: number;
  /** resident set size right after that GC */
  rss: number;
  /** memory of C++ objects bound to JavaScript ones, and of ArrayBuffers among them */
  external: number;
  arrayBuffers: number;
}

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** Answers each 'memory' message of the driver with a MemoryMessage. */
export function answerMemory(): void {
  process.on('message', (message) => {
    if (message !== 'memory') return;
    collect();
    const { heapUsed, heapTotal, rss, external, arrayBuffers } = process.memoryUsage();
    process.send?.({ type: 'memory', heapUsed, heapTotal, rss, external, arrayBuffers } satisfies MemoryMessage);
  });
}
