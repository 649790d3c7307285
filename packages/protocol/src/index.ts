export * from './types.js';
export { LIMITS, CUT_MARK } from './limits.js';
export { fitBatch } from './fit.js';
export { criticalPath, type PathSegment } from './critical-path.js';
export { normalizePath, endpointName, memoizeNames, callHost } from './endpoint.js';
export * from './sketch.js';
export * from './aggregate.js';
export { unionLength, unionLengthOutside } from './union.js';
// the schema itself is `@loopscope/protocol/wire` (the collector's); the agent needs only the types
export type { WireBatch, WireCalls, WireContextLoss, WireInterval, WireLoop, WireLongTask, WireTrace } from './wire.js';
export * from './api.js';
export { SUPPORTED_NODE, supportedNode } from './node-support.js';
export { durationMs } from './duration.js';
export { describeAlert } from './alert-text.js';
export { redactSecrets, REDACTED } from './redact.js';
