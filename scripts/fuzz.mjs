// The collector's fuzzer for longer than `npm test` runs it (packages/collector/test/fuzz.test.ts):
// `npm run fuzz` fuzzes for 10 minutes, `npm run fuzz -- --minutes 30` for 30
// (or LOOPSCOPE_FUZZ_SECONDS). The seed is printed; `--seed N` (LOOPSCOPE_FUZZ_SEED) runs the same
// inputs again, and a failure prints the command that replays it alone.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = 'usage: npm run fuzz [-- --minutes M] [--seed N]';
let values;
try {
  ({ values } = parseArgs({ options: { minutes: { type: 'string' }, seed: { type: 'string' } } }));
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}
const minutes = values.minutes !== undefined ? Number(values.minutes) : undefined;
if (minutes !== undefined && !(minutes > 0)) {
  console.error(`--minutes must be a number above 0, got "${values.minutes}"\n${USAGE}`);
  process.exit(2);
}
const seconds = minutes !== undefined ? minutes * 60 : Number(process.env.LOOPSCOPE_FUZZ_SECONDS ?? 600);
const scratch = mkdtempSync(join(tmpdir(), 'loopscope-fuzz-'));
const env = {
  ...process.env,
  LOOPSCOPE_COLLECTOR: 'off',
  TMPDIR: scratch,
  LOOPSCOPE_FUZZ_SECONDS: String(seconds),
  ...(values.seed !== undefined ? { LOOPSCOPE_FUZZ_SEED: values.seed } : {}),
};
console.log(`fuzzing the collector for ${(seconds / 60).toFixed(1)} minutes`);
process.on('SIGINT', () => {});
const { status } = spawnSync(process.execPath, ['--test', `--test-timeout=${(seconds + 300) * 1000}`, 'packages/collector/dist/test/fuzz.test.js'], { stdio: 'inherit', env });
rmSync(scratch, { recursive: true, force: true });
process.exit(status ?? 1);
