/**
 * The file system's and name resolution's time, as external time of kinds `fs` and `dns`: the
 * operations Node runs on libuv's thread pool (`fs.*`, `fs.promises`, streams of files) and
 * `dns.lookup`/`dns.resolve*`, seen by the async hook when the request for one is made inside a
 * transaction (context.ts) and when its callback runs (timing.ts). No patch, no stack: an operation
 * costs a map entry and two clock reads.
 *
 * So that a request making 200 small reads costs little and shows as one thing, operations form
 * bursts: one segment per burst (`fs ×200`), which an operation joins when others of its burst are
 * in flight (made together) or the latest one's callback ran less than JOIN_MS before (made one
 * after the other, each from the previous one's callback: Node's own steps between them take
 * microseconds). The segment spans the burst; its external time is the union of its operations'
 * own times, not the span (measure.ts). docs/metrics.md#file-system-and-dns.
 */
import type { SegmentKind } from '@loopscope/protocol';
import { now } from './clock.js';
import type { Scope, Segment, Transaction } from './transaction.js';

/** The async-resource types watched, with the kind and name of their segment. */
const WATCHED: Record<string, { kind: SegmentKind; name: string }> = {
  FSREQCALLBACK: { kind: 'fs', name: 'fs' },
  FSREQPROMISE: { kind: 'fs', name: 'fs' },
  // (a FileHandle's close, the end of fs.promises.readFile on Node 22 and 24)
  FILEHANDLECLOSEREQ: { kind: 'fs', name: 'fs' },
  GETADDRINFOREQWRAP: { kind: 'dns', name: 'dns lookup' },
  QUERYWRAP: { kind: 'dns', name: 'dns query' },
};

/** An operation made this soon (ms) after the latest of a burst called back joins it. */
const JOIN_MS = 1;

/** The kinds left out (LOOPSCOPE_DISABLED_INSTRUMENTATIONS=fs,dns). */
let off: ReadonlySet<SegmentKind> = new Set();

export function watchIoKinds(disabled: readonly string[]): void {
  off = new Set(disabled.filter((k): k is SegmentKind => k === 'fs' || k === 'dns'));
}

/** Whether a resource of `type` is an operation watched here. */
export function isWatchedIo(type: string): boolean {
  const w = WATCHED[type];
  return w !== undefined && !off.has(w.kind);
}

/** The request for an operation (async id `asyncId`, of `type`) was made in `scope`, in macrotask `serial`. */
export function ioStarted(asyncId: number, type: string, scope: Scope, serial: number): void {
  const { tx } = scope;
  if (!tx.open) return;
  const { kind, name } = WATCHED[type]!;
  const start = now();
  const last = tx.lastIo;
  let seg: Segment;
  if (last !== null && last.kind === kind && last.name === name && last.parentId === (scope.segment?.id ?? null) && (last.io!.inFlight > 0 || start - last.io!.calledBack <= JOIN_MS)) {
    seg = last;
    // a burst that had ended goes on: the transaction waits for it again
    if (seg.io!.inFlight === 0) {
      seg.end = -1;
      tx.hold();
    }
  } else {
    seg = tx.startSegment(name, kind, scope.segment);
    seg.io = { parts: [], ops: 0, inFlight: 0, calledBack: -Infinity, end: -1 };
    tx.lastIo = seg;
  }
  seg.io!.ops++;
  seg.io!.inFlight++;
  // a burst's first operation starts with its segment: the segment read the clock a moment after
  // `start`, and an operation whose answer was ready at once ends at its own start, which must not
  // fall before the segment's (a trace with a segment that ends before it starts is refused)
  (tx.ioOps ??= new Map()).set(asyncId, { seg, start: seg.io!.ops === 1 ? seg.start : start, serial });
}

/**
 * The callback of operation `asyncId` of `tx` is about to run: it ended when its answer was ready
 * (`completedAt`, as for every external call).
 */
export function ioEnded(tx: Transaction, asyncId: number, completedAt: (start: number, serial: number) => number): void {
  const op = tx.ioOps!.get(asyncId);
  if (op === undefined) return;
  tx.ioOps!.delete(asyncId);
  const io = op.seg.io!;
  const end = completedAt(op.start, op.serial);
  io.parts.push(op.start, end);
  io.calledBack = now();
  if (end > io.end) io.end = end;
  if (--io.inFlight > 0) return;
  op.seg.end = io.end;
  tx.release();
}
