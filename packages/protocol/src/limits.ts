/**
 * Every bound of the wire format, once: the collector's schema (wire.ts) refuses what is over them,
 * and every sender fits its batches to them before it sends (fit.ts), so the two never disagree.
 * Texts are in UTF-16 code units (a string's `length`), lists in items. docs/protocol.md lists them.
 */
export const LIMITS = {
  // a batch
  service: 256,
  instance: 256,
  senderName: 64,
  senderVersion: 64,
  intervals: 5000,
  traces: 1000,
  // an interval, and a trace
  endpoint: 512,
  errorMessage: 2048,
  segments: 1000,
  /** slices and waits, each */
  timeline: 200,
  // a segment
  segmentName: 1024,
  segmentError: 1024,
  operation: 64,
  target: 256,
  statement: 2048,
  // a long task
  longTasks: 100,
  taskFunction: 512,
  location: 2048,
  stackFrames: 32,
  stackFrame: 2048,
  blockedEndpoints: 100,
  // outbound calls, per target
  callTargets: 500,
  // where requests lost their context, per call site
  lossSites: 50,
  lossModule: 214,
  lossSite: 1024,
  lossFunction: 256,
} as const;

/** What ends a text cut to its limit. */
export const CUT_MARK = '…';
