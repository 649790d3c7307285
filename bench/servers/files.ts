// Scenario "files": a request that reads 20 small files one after the other (fs.promises) and
// stats one, then answers: the cost of watching the file system (io.ts) on a storage-bound app.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'loopscope-bench-files-'));
const files = Array.from({ length: 20 }, (_, i) => {
  const file = join(dir, `f${i}.json`);
  writeFileSync(file, JSON.stringify({ i, text: 'x'.repeat(200) }));
  return file;
});

serve(async (_req, res) => {
  try {
    let bytes = (await stat(dir)).size;
    for (const file of files) bytes += (await readFile(file)).length;
    res.end(`${bytes}\n`);
  } catch (err) {
    res.writeHead(500).end(String(err));
  }
});
