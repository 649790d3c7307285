// A test reporter (node --test --test-reporter=./scripts/failed-files.mjs): the files that had a
// failing test or hook, or that failed to run, one path per line, written when the run ends.
// scripts/test.mjs reads it to run those files once more.
export default async function * failedFiles(source) {
  const files = new Set();
  for await (const { type, data } of source) {
    if (type === 'test:fail' && data.file) files.add(data.file);
  }
  for (const file of files) yield `${file}\n`;
}
