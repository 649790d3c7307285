// The soak benchmark's collector: startCollector(), what `loopscope up` runs, in a process of its
// own, with its SQLite file in a temp directory, the retention of argv[2] (JSON, ms per kind: short,
// so that pruning runs within the soak) and pruning every argv[3] ms. Tells the driver its port and
// data directory, answers 'memory', and closes (and deletes the directory) when the driver
// disconnects.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCollector, type Retention } from '@loopscope/collector';
import { answerMemory } from './soak-memory.js';

export type SoakCollectorMessage = { type: 'listening'; port: number; dataDir: string };

const retention = JSON.parse(process.argv[2] ?? '{}') as Partial<Retention>;
const pruneEveryMs = Number(process.argv[3] ?? 60_000);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'loopscope-soak-'));
const collector = await startCollector({ port: 0, dataDir, retention, pruneEveryMs });
answerMemory();
process.once('disconnect', () => {
  void collector.close().then(() => rmSync(dataDir, { recursive: true, force: true }));
});
process.send?.({ type: 'listening', port: Number(new URL(collector.url).port), dataDir } satisfies SoakCollectorMessage);
