/**
 * The SQLite storage's request aggregates on ingest: every interval of a batch merged into one row
 * per service, endpoint and bucket at each resolution (second, minute, hour).
 *
 * The per-second rows are written in the transaction of the group of batches that brought them:
 * they are what an acknowledged batch is durable as. The minute and hour rows of the newest two
 * buckets are kept in memory instead, merged there as batches come, and written (`flush`) at most a
 * second later, before any query reads aggregates, when they leave the newest two buckets, before a
 * prune and at close. So a group writes its per-second rows (20 for 20 endpoints), not three times
 * as many.
 *
 * While a full disk stops a flush, queries lay the rows held in memory over the file's (`overlay`).
 * A crash loses nothing: the first group that leaves rows unwritten also writes a marker, and the
 * next open rebuilds the newest two minute buckets from their per-second rows, then the newest two
 * hour buckets from their minute rows (a coarser bucket is exactly the merge of the finer ones it
 * spans), holds them as rows not yet written, and a close that wrote them clears the marker. A
 * resolution is kept in memory only when the finer one is kept long enough for that (`deferred`),
 * and a contribution only when its finer row was written.
 *
 * The minute and hour rows kept in memory are changed only once their group has committed: a group
 * that fails leaves them as they were, and they still match what the file holds with the merges
 * not yet written. The per-second rows kept are merged in place, and forgotten when a group fails.
 */
import type Database from 'better-sqlite3';
import { METRICS, emptyWire, mergeWire, type ExternalByKind, type MetricName, type WireBatch, type WireInterval, type WireSketch } from '@loopscope/protocol';
import { RESOLUTIONS, bucketOf, type Resolution } from './resolution.js';
import { decodeSketch, encodeSketch } from './sketch-codec.js';
import { addByKind } from './totals.js';
import type { Retention } from './storage.js';

/** The most rows of one resolution kept in memory; past it, rows are written with their group. */
const HOT_ROWS = 5000;
/** The longest a merged minute or hour row stays unwritten while batches come. */
const FLUSH_MS = 1000;

export const aggregateTable = (res: Resolution): string => `agg_${res.name}`;

/** One aggregate row, as merged in memory. */
export interface AggregateRow {
  service: string;
  endpoint: string;
  bucket: number;
  count: number;
  errors: number;
  aborted: number;
  sketches: WireSketch[]; // in METRICS order
  externalByKind: ExternalByKind; // sums
}

/** An aggregate row as the file holds it. */
export interface StoredRow {
  count: number;
  errors: number;
  aborted: number;
  response: Buffer;
  duration: Buffer;
  cpu: Buffer;
  external: Buffer;
  blocking: Buffer;
  externalByKind: string;
}

export const SUMMARY_COLUMNS = `count, errors, aborted, ${METRICS.join(', ')}, externalByKind`;

const emptyRow = (service: string, endpoint: string, bucket: number): AggregateRow => ({
  service,
  endpoint,
  bucket,
  count: 0,
  errors: 0,
  aborted: 0,
  sketches: METRICS.map(() => emptyWire()),
  externalByKind: {},
});

function addInterval(row: AggregateRow, iv: WireInterval): void {
  row.count += iv.count;
  row.errors += iv.errors;
  row.aborted += iv.aborted ?? 0;
  METRICS.forEach((m, i) => {
    const sketch = iv[m];
    if (sketch !== null) mergeWire(row.sketches[i]!, sketch); // null, unknown: its sketch stays short of count
  });
  addByKind(row.externalByKind, iv.externalByKind);
}

function addRow(row: AggregateRow, other: AggregateRow): void {
  row.count += other.count;
  row.errors += other.errors;
  row.aborted += other.aborted;
  other.sketches.forEach((s, i) => mergeWire(row.sketches[i]!, s));
  addByKind(row.externalByKind, other.externalByKind);
}

function copyRow(row: AggregateRow): AggregateRow {
  const copy = emptyRow(row.service, row.endpoint, row.bucket);
  addRow(copy, row);
  return copy;
}

const fromStored = (service: string, endpoint: string, bucket: number, stored: StoredRow): AggregateRow => ({
  service,
  endpoint,
  bucket,
  count: stored.count,
  errors: stored.errors,
  aborted: stored.aborted,
  sketches: METRICS.map((m) => decodeSketch(stored[m as MetricName])),
  externalByKind: JSON.parse(stored.externalByKind) as ExternalByKind,
});

const keyOf = (bucket: number, service: string, endpoint: string): string => `${bucket}\n${service}\n${endpoint}`;

export interface Aggregates {
  /**
   * Within the group's transaction: merges the batches' intervals, writes what is due; returns what
   * to do once the transaction has committed (nothing in memory changes before).
   */
  ingest(group: ReadonlyArray<{ batch: WireBatch; receivedAt: number }>): () => void;
  /** After a group's transaction failed: forgets the kept rows that it changed (they are read again when needed). */
  failed(): void;
  /**
   * Before a query reads aggregates: writes every row kept in memory, in a transaction of its own.
   * On a full disk they stay kept, and the query lays them over what it reads (`overlay`).
   */
  flush(): void;
  /** Within a prune's transaction: writes every row kept in memory; returns what to do once committed (forget them all). */
  flushForPrune(): () => void;
  /** At close: writes every row kept in memory and clears the marker (on a full disk, the next open rebuilds them). */
  close(): void;
  /**
   * Rows of `res` read from the file, with the rows held in memory that hold more laid over them
   * (after a `flush` that a full disk stopped; none otherwise): a query's answer includes every
   * acknowledged batch. `rows` are those of `service` (or every service) and `endpoint` (or every
   * endpoint) whose buckets are in [from, to); each has its bucket, and the service or endpoint
   * that the query did not fix.
   */
  overlay<R extends { bucket: number; service?: string; endpoint?: string }>(
    res: Resolution,
    rows: R[],
    match: { service?: string; endpoint?: string; from: number; to: number },
  ): Array<R | HeldRow>;
}

/** A row held in memory as the file would hold it, with its key. */
export type HeldRow = StoredRow & { service: string; endpoint: string; bucket: number };

const storedOf = (row: AggregateRow): HeldRow => ({
  service: row.service,
  endpoint: row.endpoint,
  bucket: row.bucket,
  count: row.count,
  errors: row.errors,
  aborted: row.aborted,
  ...(Object.fromEntries(METRICS.map((m, i) => [m, encodeSketch(row.sketches[i]!)])) as Record<MetricName, Buffer>),
  externalByKind: JSON.stringify(row.externalByKind),
});

/** `canWait`: whether a write's error may wait for a later write (a full disk) rather than fail the open, a query or the close. */
export function sqliteAggregates(db: Database.Database, retention: Retention, canWait: (err: unknown) => boolean): Aggregates {
  db.exec('CREATE TABLE IF NOT EXISTS aggregates_behind (id INTEGER PRIMARY KEY CHECK (id = 1))');
  const markBehind = db.prepare('INSERT OR IGNORE INTO aggregates_behind (id) VALUES (1)');
  const clearBehind = db.prepare('DELETE FROM aggregates_behind');
  /** the marker is in the file (a close that wrote every row clears it) */
  let behind = db.prepare('SELECT COUNT(*) FROM aggregates_behind').pluck().get() !== 0;

  const perResolution = RESOLUTIONS.map((res, i) => {
    const finer = RESOLUTIONS[i - 1];
    return {
      res,
      finer,
      /** kept in memory between writes: the finer resolution is kept long enough to rebuild its newest two buckets */
      deferred: finer !== undefined && retention[finer.retention] >= 3 * res.ms,
      select: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM ${aggregateTable(res)} WHERE service = ? AND endpoint = ? AND bucket = ?`),
      upsert: db.prepare(
        `INSERT INTO ${aggregateTable(res)} (service, endpoint, bucket, count, errors, aborted, ${METRICS.join(', ')}, externalByKind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (service, endpoint, bucket) DO UPDATE SET count = excluded.count, errors = excluded.errors, aborted = excluded.aborted,
         ${METRICS.map((m) => `${m} = excluded.${m}`).join(', ')}, externalByKind = excluded.externalByKind`,
      ),
      /** the rows of the newest two buckets as merged so far, by key: the next merge needs no read */
      hot: new Map<string, AggregateRow>(),
      /** the keys of `hot` whose rows hold more than the file (deferred resolutions only) */
      dirty: new Set<string>(),
      newest: 0,
    };
  });
  type PerResolution = (typeof perResolution)[number];
  let flushedAt = Date.now();

  const write = (r: PerResolution, row: AggregateRow): void => {
    r.upsert.run(row.service, row.endpoint, row.bucket, row.count, row.errors, row.aborted, ...row.sketches.map(encodeSketch), JSON.stringify(row.externalByKind));
  };
  const read = (r: PerResolution, service: string, endpoint: string, bucket: number): AggregateRow => {
    const stored = r.select.get(service, endpoint, bucket) as StoredRow | undefined;
    return stored ? fromStored(service, endpoint, bucket, stored) : emptyRow(service, endpoint, bucket);
  };

  function ingestResolution(r: PerResolution, group: ReadonlyArray<{ batch: WireBatch; receivedAt: number }>, flushAll: boolean): () => void {
    const { res, hot, dirty } = r;
    const contributions: Array<{ key: string; service: string; iv: WireInterval; bucket: number }> = [];
    let newest = r.newest;
    let latest = 0;
    for (const { batch, receivedAt } of group) {
      const oldest = receivedAt - retention[res.retention];
      latest = Math.max(latest, receivedAt);
      for (const iv of batch.intervals) {
        const bucket = bucketOf(iv.start, res);
        if (bucket < oldest) continue; // prune would delete it at once
        newest = Math.max(newest, bucket);
        contributions.push({ key: keyOf(bucket, batch.service, iv.endpoint), service: batch.service, iv, bucket });
      }
    }
    // the window kept in memory: the newest two buckets; of a deferred resolution, only buckets
    // whose finer rows every batch of the group wrote (so that they can be rebuilt from them)
    const from = newest - res.ms;
    const deferFrom = r.finer === undefined ? Infinity : Math.max(from, latest - retention[r.finer.retention]);
    // rows held in memory that leave the window (or all, when due) are written now
    const flushed = [...dirty].filter((key) => flushAll || hot.get(key)!.bucket < from);
    for (const key of flushed) write(r, hot.get(key)!);
    const written = new Map<string, AggregateRow>(); // merged into copies, written now
    const merged = new Map<string, AggregateRow>(); // merged in memory once committed: added to the hot row, or the new hot row
    let room = HOT_ROWS - hot.size;
    for (const { key, service, iv, bucket } of contributions) {
      let row = written.get(key) ?? merged.get(key);
      if (row === undefined) {
        const kept = hot.get(key);
        if (r.deferred && bucket >= deferFrom && (kept !== undefined || room-- > 0)) merged.set(key, (row = kept === undefined ? read(r, service, iv.endpoint, bucket) : emptyRow(service, iv.endpoint, bucket)));
        // (a resolution written with its group merges into its kept row in place: `failed` forgets them)
        else written.set(key, (row = kept === undefined ? read(r, service, iv.endpoint, bucket) : r.deferred ? copyRow(kept) : kept));
      }
      addInterval(row, iv);
    }
    for (const row of written.values()) write(r, row);
    if (merged.size > 0 && !behind) markBehind.run();
    return () => {
      if (merged.size > 0) behind = true;
      for (const key of flushed) dirty.delete(key);
      r.newest = newest;
      for (const [key, row] of hot) if (row.bucket < from) hot.delete(key); // (none of them is dirty: written above)
      for (const [key, row] of merged) {
        const kept = hot.get(key);
        if (kept === undefined) hot.set(key, row);
        else addRow(kept, row);
        dirty.add(key);
      }
      for (const [key, row] of written) {
        // a copy of the kept row with this group's intervals added, as the file now holds it
        if (row.bucket < from || (!hot.has(key) && hot.size >= HOT_ROWS)) continue;
        hot.set(key, row);
        dirty.delete(key);
      }
    };
  }

  /** `rows` of `r` read from the file, with the rows held in memory that hold more laid over them. */
  function overlay<R extends { bucket: number; service?: string; endpoint?: string }>(
    r: PerResolution,
    rows: R[],
    { service, endpoint, from, to }: { service?: string; endpoint?: string; from: number; to: number },
  ): Array<R | HeldRow> {
    const held: HeldRow[] = [];
    for (const key of r.dirty) {
      const row = r.hot.get(key)!;
      if ((service === undefined || row.service === service) && (endpoint === undefined || row.endpoint === endpoint) && row.bucket >= from && row.bucket < to) held.push(storedOf(row));
    }
    if (held.length === 0) return rows;
    const keys = new Set(held.map((h) => keyOf(h.bucket, h.service, h.endpoint)));
    return [...rows.filter((row) => !keys.has(keyOf(row.bucket, row.service ?? service!, row.endpoint ?? endpoint!))), ...held];
  }

  /**
   * At open, when the marker says that rows merged in memory may not have been written (a crash, or
   * a close on a full disk): the newest two buckets of each deferred resolution are rebuilt from the
   * finer one (as the file holds it, with the finer rows rebuilt just before), finest first, and held
   * as rows not yet written: the next flush writes them. Nothing is written here, so a collector
   * opens on a full disk and answers with them all the same.
   */
  function recover(): void {
    for (const [i, r] of perResolution.entries()) {
      const finer = perResolution[i - 1];
      if (!r.deferred || finer === undefined) continue;
      const top = Math.max((db.prepare(`SELECT MAX(bucket) FROM ${aggregateTable(finer.res)}`).pluck().get() as number | null) ?? -Infinity, finer.newest || -Infinity);
      if (top === -Infinity) continue;
      r.newest = bucketOf(top, r.res);
      const from = r.newest - r.res.ms;
      const stored = db.prepare(`SELECT service, endpoint, bucket, ${SUMMARY_COLUMNS} FROM ${aggregateTable(finer.res)} WHERE bucket >= ?`).all(from) as HeldRow[];
      for (const s of overlay(finer, stored, { from, to: Infinity }) as HeldRow[]) {
        const bucket = bucketOf(s.bucket, r.res);
        const key = keyOf(bucket, s.service, s.endpoint);
        let row = r.hot.get(key);
        if (row === undefined) r.hot.set(key, (row = emptyRow(s.service, s.endpoint, bucket)));
        addRow(row, fromStored(s.service, s.endpoint, bucket, s));
        r.dirty.add(key);
      }
    }
  }
  if (behind) recover();
  /** A write that may wait for a later one (a full disk): what `canWait` says is left for then. */
  const orLater = (attempt: () => void): void => {
    try {
      attempt();
    } catch (err) {
      if (!canWait(err)) throw err;
    }
  };

  /** Writes every row held in memory; returns what to do once committed. */
  const flushRows = (): (() => void) => {
    for (const r of perResolution) for (const key of r.dirty) write(r, r.hot.get(key)!);
    return () => {
      for (const r of perResolution) r.dirty.clear();
      flushedAt = Date.now();
    };
  };
  const flush = db.transaction(flushRows);
  const finish = db.transaction(() => {
    const done = flushRows();
    clearBehind.run();
    return done;
  });

  return {
    ingest(group) {
      const flushAll = Date.now() - flushedAt >= FLUSH_MS;
      const done = perResolution.map((r) => ingestResolution(r, group, flushAll));
      return () => {
        done.forEach((f) => f());
        if (flushAll) flushedAt = Date.now();
      };
    },
    failed() {
      for (const r of perResolution) if (!r.deferred) r.hot.clear();
    },
    flush() {
      if (perResolution.some((r) => r.dirty.size > 0)) orLater(() => flush()());
    },
    flushForPrune() {
      const done = flushRows();
      return () => {
        done();
        for (const r of perResolution) r.hot.clear();
      };
    },
    overlay(res, rows, match) {
      return overlay(perResolution.find((r) => r.res.name === res.name)!, rows, match);
    },
    close() {
      if (!behind) return;
      orLater(() => {
        finish()();
        behind = false;
      });
    },
  };
}
