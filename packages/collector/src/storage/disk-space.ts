/**
 * A full disk under the embedded storage (docs/collector.md#a-full-disk). SQLite says so with
 * SQLITE_FULL (a write that got ENOSPC); a write, fsync or growth of the shared-memory file that
 * failed otherwise is an SQLITE_IOERR_* whose errno better-sqlite3 does not pass on, so one of those
 * counts as a full disk when the filesystem of the data directory has (almost) nothing left, or a
 * small write of a test file there fails with ENOSPC or EDQUOT (a quota). The transaction that met
 * it is rolled back whole (its batch ids with it), so the batch is refused with a 503 and stored
 * when it comes again. An episode (from the first such failure to the next write that goes through)
 * is said once when it starts and once when it ends, and counted.
 */
import { closeSync, fsyncSync, openSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { RetryLater, type DiskFullStats } from './storage.js';

/** The IOERR codes a lack of space can cause (a write, an fsync on a filesystem that allocates late, the -shm file's growth). */
const SPACE_IOERRS = new Set(['SQLITE_IOERR', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_DIR_FSYNC', 'SQLITE_IOERR_SHMSIZE', 'SQLITE_IOERR_TRUNCATE']);
/** Below this many bytes available, the filesystem counts as full. */
const NEARLY_FULL_BYTES = 1024 * 1024;
/** The size of the test file written to tell a lack of space (or quota) from another I/O error. */
const PROBE_BYTES = 64 * 1024;

/** A batch refused because the disk is full: a 503 with Retry-After, the agent sends it again. */
export class DiskFull extends RetryLater {}

/** The SQLite error code of an error, if it is one. */
const sqliteCode = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
};

/** ENOSPC or EDQUOT when the filesystem of `dir` has no room for a small file, else undefined. */
function probe(dir: string): string | undefined {
  try {
    const { bavail, bsize } = statfsSync(dir);
    if (bavail * bsize < NEARLY_FULL_BYTES) return 'ENOSPC';
  } catch {
    // (no statfs here: the test write decides)
  }
  const file = path.join(dir, `.space-probe-${process.pid}`);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'w');
    writeSync(fd, Buffer.alloc(PROBE_BYTES));
    fsyncSync(fd);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOSPC' || code === 'EDQUOT' ? code : undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(file);
    } catch {
      // (never created)
    }
  }
}

/** Why a failed write of the database in `dir` failed for lack of space ("SQLITE_FULL, database or disk is full"), or undefined when not. */
export function lackOfSpace(err: unknown, dir: string): string | undefined {
  const code = sqliteCode(err);
  if (code === undefined) return undefined;
  const message = (err as Error).message;
  if (code === 'SQLITE_FULL') return `${code}, ${message}`;
  if (!SPACE_IOERRS.has(code)) return undefined;
  const errno = probe(dir);
  return errno === undefined ? undefined : `${code} (${errno}), ${message}`;
}

export class DiskSpace {
  readonly stats: DiskFullStats = { full: false, since: null, episodes: 0, refusedBatches: 0, failedPrunes: 0, lastError: null };

  constructor(
    private readonly dir: string,
    private readonly warn: (message: string) => void,
  ) {}

  /**
   * The error of a write that refused `batches` batches, as a DiskFull (answered 503) when it was for
   * lack of space; undefined when it was not (the caller throws it as it was).
   */
  refuse(err: unknown, batches: number): DiskFull | undefined {
    const reason = this.lacking(err);
    if (reason === undefined) return undefined;
    this.stats.refusedBatches += batches;
    return new DiskFull(`the collector's disk is full (${this.dir}: ${reason}): the batch is not stored; send it again later`);
  }

  /** Whether a prune (or another write of no sender's) failed for lack of space: counted, and the episode said. */
  skipped(err: unknown, prune: boolean): boolean {
    if (this.lacking(err) === undefined) return false;
    if (prune) this.stats.failedPrunes++;
    return true;
  }

  /** A write went through: the episode, if one was on, ends. */
  wrote(): void {
    if (!this.stats.full) return;
    const seconds = Math.round((Date.now() - this.stats.since!) / 1000);
    this.warn(`there is space again for ${this.dir}: batches are stored again (the disk was full for ${seconds} s; ${this.stats.refusedBatches} batches refused since the collector started, which their agents send again)`);
    this.stats.full = false;
    this.stats.since = null;
  }

  /** The reason when `err` is a lack of space; the episode starts (said) with the first. */
  private lacking(err: unknown): string | undefined {
    const reason = lackOfSpace(err, this.dir);
    if (reason === undefined) return undefined;
    this.stats.lastError = reason;
    if (!this.stats.full) {
      this.stats.full = true;
      this.stats.since = Date.now();
      this.stats.episodes++;
      this.warn(
        `the disk of ${this.dir} is full (${reason}): ingest answers 503 with Retry-After, and agents keep their batches (up to their queue's bound) and send them again; queries still answer. Free space on that filesystem: batches are stored again at once, with no restart`,
      );
    }
    return reason;
  }
}
