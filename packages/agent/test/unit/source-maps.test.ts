/**
 * Source maps of long tasks' locations (loop/source-maps.ts): a location the profiler has no line
 * for (`:0:0`, its lineNumber -1) stays as it is, in a file that has a map, instead of throwing
 * inside the batch's cut (which ran in a timer: the app's process ended).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { SourceMaps } from '../../src/loop/source-maps.js';

test('a location without a line is left as it is, a mapped one is mapped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loopscope-maps-'));
  try {
    const file = join(dir, 'app.js');
    // app.js line 1 column 1 comes from app.ts line 3 column 5 (mappings "AAEI": 0, 0, +2, +4)
    const map = { version: 3, sources: ['app.ts'], names: [], mappings: 'AAEI' };
    writeFileSync(file, `run();\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n`);
    const url = pathToFileURL(file).href;
    const maps = new SourceMaps((fn) => fn());
    for (let i = 0; i < 100 && !maps.ready([`${url}:1:1`]); i++) await sleep(10);
    assert.equal(maps.map(`${url}:1:1`), `${pathToFileURL(join(dir, 'app.ts')).href}:3:5`);
    assert.equal(maps.map(`${url}:0:0`), undefined);
    assert.equal(maps.mapFrame(`(anonymous) (${url}:0:0)`), `(anonymous) (${url}:0:0)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
