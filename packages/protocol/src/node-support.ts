/**
 * The Node.js lines loopscope runs on, as every package.json's `engines` says: each from its first
 * release with the fix for the async_hooks stack-overflow crash (CVE-2025-59466). Odd lines and 20
 * (end of life) are not supported. One definition for the agent (which stays off elsewhere) and
 * the `loopscope` command (which says so, where the collector's SQLite library would crash Node).
 */
export const SUPPORTED_NODE = '^22.22.0 || ^24.13.0 || >=26';

/** Whether `version` (`process.version`, e.g. `v24.13.0`) is one SUPPORTED_NODE covers. */
export function supportedNode(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (m === null) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major === 22) return minor >= 22;
  if (major === 24) return minor >= 13;
  return major >= 26;
}
