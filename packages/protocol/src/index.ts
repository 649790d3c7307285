export * from './types.js';
export { criticalPath, type PathSegment } from './critical-path.js';
export { normalizePath, endpointName } from './endpoint.js';
