/**
 * The embedded storage: one SQLite file (better-sqlite3) in WAL mode with synchronous = FULL, so a
 * committed batch survives `kill -9` and a power cut; ingest resolves only after the commit.
 *
 * Aggregates live in three tables, one per resolution (agg_second, agg_minute, agg_hour), keyed by
 * (service, endpoint, bucket start) with count, errors and the five sketches in the compact form of
 * sketch-codec.ts. There is no rollup job: ingest merges each interval into its row of every
 * resolution (read, merge, write) in the batch's one transaction, so the three tables always agree
 * and percentiles are only ever merged, never averaged. An interval is filed entirely under the
 * bucket of its `start`: one longer than a second (the agent's flush interval is 1 s by default, but
 * may be set longer) lands in that second's row, and in the minute and hour rows of its start.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  MAX_TRACE_PARTS,
  METRICS,
  emptyWire,
  fromWire,
  isLoopSeries,
  mergeWire,
  quantile,
  summarize,
  type ExternalByKind,
  type MetricName,
  type TraceRecord,
  type WireBatch,
  type WireLoop,
  type WireSketch,
} from '@loopscope/protocol';
import { RESOLUTIONS, bucketOf, chooseResolution, seriesGrid, tiles, type Resolution } from './resolution.js';
import { decodeSketch, encodeSketch } from './sketch-codec.js';
import { DiskSpace } from './disk-space.js';
import { SUMMARY_COLUMNS, aggregateTable, sqliteAggregates, type StoredRow } from './sqlite-aggregates.js';
import { TIMELINE_PARTS, culpritGroups, type CulpritPart, type CulpritRow } from './culprits.js';
import { AGENT_MAXES, AGENT_SUMS, addAgentSums, addGc, addTotals, agentCostOf, agentSumsOf, batchSpan, emptyAgentSums, emptyLoopPoint, emptyTotals, foldTotals, loopPointValue, round, sliceTimes, toSummary, utilizationOf, type AgentSums, type GcTotals } from './totals.js';
import {
  DEFAULT_RETENTION,
  type AlertRound,
  type ContextLossSite,
  type EndpointSummary,
  type EndpointView,
  type LongTaskGroup,
  type LongTaskRow,
  type LoopQuery,
  type RecordsQuery,
  type LoopSummary,
  type Range,
  type RangeTotals,
  type Retention,
  type ServiceSummary,
  type Storage,
  type TimeseriesQuery,
  type TimeseriesResult,
  type TraceSummary,
  type TracesQuery,
  type LoopWork,
  type LoopWorkQuery,
} from './storage.js';

export interface SqliteOptions {
  /** directory of the database file, created if missing */
  dataDir: string;
  retention?: Partial<Retention>;
  /** where the storage says that its disk is full, and that space returned (once each per episode) */
  warn?: (message: string) => void;
}

export const DB_FILE = 'loopscope.db';
/** The longest a batch waits for the others of its group (see `enqueue`), and the most batches a group holds. */
const GROUP_WAIT_MS = 10;
const MAX_GROUP = 64;
/** How many of the last groups the expected size is taken from (their largest). */
const GROUP_MEMORY = 8;
/**
 * 2: aggregates carry externalByKind (sums of ms per kind, JSON); event-loop rows and long tasks.
 * 3: a trace's cpu, external and blocking may be NULL (unknown: seen from outside the process);
 *    instances remember their sender (`agent`: loopscope, loopscope-proxy, loopscope-probe).
 * 4: a trace remembers the instance (process) that sent it (NULL for traces stored before).
 * 5: aggregates count the aborted requests (0 in rows stored before).
 * 6: a trace is stored as its parts, one per transaction (W3C span), keyed by trace and span id
 *    (span id '' for parts stored before, and from senders that have none); instances count the
 *    parts not kept past a trace's limit; outbound calls per minute and target (`calls`), and which
 *    service a target is (`call_targets`), for the service map.
 * 7: a long task keeps its compiled location beside the one a source map gave (`compiledLocation`,
 *    NULL for tasks stored before).
 * 8: the loop tables keep what the agents said they cost (`agentReports`, `agentMs`,
 *    `agentProcessMs`, `agentTransactions`, `agentRss`; 0 in rows stored before).
 * 9: where requests lost their context, per minute and call site (`context_loss`); instances count
 *    the values their sender cut to the wire format's limits (`cutValues`, 0 in rows stored before).
 */
export const SCHEMA_VERSION = 9;

/** The columns of the traces table up to schema 3. */
const TRACES_V3_COLUMNS = 'traceId, service, endpoint, start, status, error, response, duration, cpu, external, blocking, record';

/**
 * The traces table; its cpu, external and blocking are NULL for senders outside the process, its
 * instance NULL for traces stored before schema 4.
 */
const TRACES_TABLE = (name: string): string => `
    CREATE TABLE IF NOT EXISTS ${name} (
      traceId TEXT NOT NULL, service TEXT NOT NULL, endpoint TEXT NOT NULL, start REAL NOT NULL,
      status INTEGER NOT NULL, error INTEGER NOT NULL,
      response REAL NOT NULL, duration REAL NOT NULL, cpu REAL, external REAL, blocking REAL,
      record TEXT NOT NULL, instance TEXT, spanId TEXT NOT NULL DEFAULT '', parentSpanId TEXT,
      PRIMARY KEY (traceId, spanId)
    );`;

const table = aggregateTable;
const loopTable = (res: Resolution): string => `loop_${res.name}`;

function schema(): string {
  const aggregates = RESOLUTIONS.map(
    (res) => `
    CREATE TABLE IF NOT EXISTS ${table(res)} (
      service TEXT NOT NULL, endpoint TEXT NOT NULL, bucket INTEGER NOT NULL,
      count INTEGER NOT NULL, errors INTEGER NOT NULL, aborted INTEGER NOT NULL DEFAULT 0,
      response BLOB NOT NULL, duration BLOB NOT NULL, cpu BLOB NOT NULL, external BLOB NOT NULL, blocking BLOB NOT NULL,
      externalByKind TEXT NOT NULL DEFAULT '{}',
      UNIQUE (service, endpoint, bucket)
    );
    CREATE INDEX IF NOT EXISTS ${table(res)}_service_bucket ON ${table(res)} (service, bucket);
    CREATE INDEX IF NOT EXISTS ${table(res)}_bucket ON ${table(res)} (bucket);`,
  ).join('\n');
  const loops = RESOLUTIONS.map(
    (res) => `
    CREATE TABLE IF NOT EXISTS ${loopTable(res)} (
      service TEXT NOT NULL, bucket INTEGER NOT NULL,
      delay BLOB NOT NULL, busyMs REAL NOT NULL, idleMs REAL NOT NULL, gc TEXT NOT NULL,
      cpuUser REAL NOT NULL, cpuSystem REAL NOT NULL, rss INTEGER NOT NULL, heapUsed INTEGER NOT NULL, heapTotal INTEGER NOT NULL,
      ${AGENT_COLUMNS},
      UNIQUE (service, bucket)
    );
    CREATE INDEX IF NOT EXISTS ${loopTable(res)}_bucket ON ${loopTable(res)} (bucket);`,
  ).join('\n');
  return `${aggregates}
    ${loops}
    CREATE TABLE IF NOT EXISTS long_tasks (
      id INTEGER PRIMARY KEY, service TEXT NOT NULL, instance TEXT NOT NULL, at REAL NOT NULL, ms REAL NOT NULL,
      endpoint TEXT, traceId TEXT, function TEXT NOT NULL, location TEXT, stack TEXT NOT NULL, blocked TEXT NOT NULL, compiledLocation TEXT
    );
    CREATE INDEX IF NOT EXISTS long_tasks_recent ON long_tasks (service, at);
    CREATE INDEX IF NOT EXISTS long_tasks_worst ON long_tasks (service, ms);
    ${TRACES_TABLE('traces')}
    CREATE INDEX IF NOT EXISTS traces_slowest ON traces (service, duration);
    CREATE INDEX IF NOT EXISTS traces_endpoint_slowest ON traces (service, endpoint, duration);
    CREATE INDEX IF NOT EXISTS traces_recent ON traces (service, start);
    CREATE INDEX IF NOT EXISTS traces_endpoint_recent ON traces (service, endpoint, start);
    CREATE INDEX IF NOT EXISTS traces_start ON traces (start);
    CREATE TABLE IF NOT EXISTS instances (
      service TEXT NOT NULL, instance TEXT NOT NULL, firstSeen INTEGER NOT NULL, lastSeen INTEGER NOT NULL,
      droppedBatches INTEGER NOT NULL, droppedTransactions INTEGER NOT NULL, droppedTraces INTEGER NOT NULL,
      agent TEXT NOT NULL DEFAULT 'loopscope', refusedParts INTEGER NOT NULL DEFAULT 0, cutValues INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (service, instance)
    );
    CREATE TABLE IF NOT EXISTS calls (
      service TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, bucket INTEGER NOT NULL,
      count INTEGER NOT NULL, errors INTEGER NOT NULL, duration BLOB NOT NULL,
      UNIQUE (service, kind, target, bucket)
    );
    CREATE INDEX IF NOT EXISTS calls_bucket ON calls (bucket);
    CREATE TABLE IF NOT EXISTS context_loss (
      service TEXT NOT NULL, module TEXT NOT NULL, site TEXT NOT NULL, function TEXT NOT NULL, bucket INTEGER NOT NULL,
      count INTEGER NOT NULL, lostMs REAL NOT NULL,
      UNIQUE (service, module, site, bucket)
    );
    CREATE INDEX IF NOT EXISTS context_loss_bucket ON context_loss (bucket);
    CREATE TABLE IF NOT EXISTS call_targets (target TEXT PRIMARY KEY, service TEXT NOT NULL, seen INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS batches (batchId TEXT PRIMARY KEY, receivedAt INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS alert_round (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, at INTEGER NOT NULL, state TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS batches_receivedAt ON batches (receivedAt);`;
}

/** A stored row's counts and decoded sketches. */
const decoded = (r: Pick<StoredRow, 'count' | 'errors' | 'aborted' | MetricName>) => ({
  count: r.count,
  errors: r.errors,
  aborted: r.aborted,
  sketches: Object.fromEntries(METRICS.map((m) => [m, decodeSketch(r[m])])) as Record<MetricName, WireSketch>,
});

/** Aggregate rows merged per key (an endpoint, or a service) into the query API's summaries. */
function summaries<R extends StoredRow>(rows: R[], keyOf: (row: R) => string): Map<string, Omit<EndpointSummary, 'endpoint'>> {
  const merged = foldTotals(rows, keyOf, (r) => ({ ...decoded(r), externalByKind: JSON.parse(r.externalByKind) as ExternalByKind }));
  return new Map([...merged].map(([key, totals]) => [key, toSummary(totals)]));
}

/** The loop tables' columns of the agent's own cost (schema 8), each 0 until an agent says. */
const LOOP_AGENT = [...AGENT_SUMS, ...AGENT_MAXES];
const agentColumn = (c: string): string => `${c} ${c === 'agentMs' || c === 'agentProcessMs' ? 'REAL' : 'INTEGER'} NOT NULL DEFAULT 0`;
const AGENT_COLUMNS = LOOP_AGENT.map(agentColumn).join(', ');

/** A loop row's agent sums with a process's sample added. */
function agentSums(row: AgentSums, loop: WireLoop): AgentSums {
  const sums = Object.fromEntries(LOOP_AGENT.map((c) => [c, row[c]])) as AgentSums;
  addAgentSums(sums, agentSumsOf(loop));
  return sums;
}

/** One row of loop_<resolution>: a service's event-loop health in one bucket, merged over its processes. */
interface LoopRow extends AgentSums {
  service: string;
  bucket: number;
  delay: Buffer;
  busyMs: number;
  idleMs: number;
  gc: string;
  cpuUser: number;
  cpuSystem: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

function emptyLoopRow(service: string, bucket: number): LoopRow {
  return { service, bucket, delay: encodeSketch(emptyWire()), busyMs: 0, idleMs: 0, gc: '{}', cpuUser: 0, cpuSystem: 0, rss: 0, heapUsed: 0, heapTotal: 0, ...emptyAgentSums() };
}

export function openSqliteStorage(options: SqliteOptions): Storage {
  mkdirSync(options.dataDir, { recursive: true });
  const retention: Retention = { ...DEFAULT_RETENTION, ...options.retention };
  const db = new Database(path.join(options.dataDir, DB_FILE));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    db.close();
    throw new Error(`${path.join(options.dataDir, DB_FILE)} was written by a newer loopscope (schema ${version}); this one reads schema ${SCHEMA_VERSION}`);
  }
  if (version === 1) {
    for (const res of RESOLUTIONS) db.exec(`ALTER TABLE ${table(res)} ADD COLUMN externalByKind TEXT NOT NULL DEFAULT '{}'`);
  }
  if (version >= 1 && version < 3) {
    // SQLite cannot drop a NOT NULL: the traces table is copied into its new form
    db.transaction(() => {
      db.exec(
        `${TRACES_TABLE('traces_v3')} INSERT INTO traces_v3 (${TRACES_V3_COLUMNS}) SELECT ${TRACES_V3_COLUMNS} FROM traces; DROP TABLE traces; ALTER TABLE traces_v3 RENAME TO traces;`,
      );
      db.exec('ALTER TABLE instances ADD COLUMN agent TEXT NOT NULL DEFAULT \'loopscope\'');
    })();
  }
  if (version === 3) db.exec('ALTER TABLE traces ADD COLUMN instance TEXT');
  if (version >= 1 && version < 6) {
    const columns = db.prepare("SELECT name FROM pragma_table_info('instances')").pluck().all() as string[];
    if (!columns.includes('refusedParts')) db.exec('ALTER TABLE instances ADD COLUMN refusedParts INTEGER NOT NULL DEFAULT 0');
  }
  if (version >= 3 && version < 6) {
    // a new primary key: the table is copied (the indexes follow in schema())
    db.exec(
      `${TRACES_TABLE('traces_v6')} INSERT INTO traces_v6 (${TRACES_V3_COLUMNS}, instance) SELECT ${TRACES_V3_COLUMNS}, instance FROM traces; DROP TABLE traces; ALTER TABLE traces_v6 RENAME TO traces;`,
    );
  }
  if (version >= 1 && version < 7) {
    const columns = db.prepare("SELECT name FROM pragma_table_info('long_tasks')").pluck().all() as string[];
    if (columns.length > 0 && !columns.includes('compiledLocation')) db.exec('ALTER TABLE long_tasks ADD COLUMN compiledLocation TEXT');
  }
  if (version >= 1 && version < 8) {
    for (const res of RESOLUTIONS) {
      const columns = db.prepare(`SELECT name FROM pragma_table_info('${loopTable(res)}')`).pluck().all() as string[];
      if (columns.length === 0) continue;
      for (const c of LOOP_AGENT) if (!columns.includes(c)) db.exec(`ALTER TABLE ${loopTable(res)} ADD COLUMN ${agentColumn(c)}`);
    }
  }
  if (version >= 1 && version < 9) {
    const columns = db.prepare("SELECT name FROM pragma_table_info('instances')").pluck().all() as string[];
    if (!columns.includes('cutValues')) db.exec('ALTER TABLE instances ADD COLUMN cutValues INTEGER NOT NULL DEFAULT 0');
  }
  if (version >= 1 && version < 5) {
    for (const res of RESOLUTIONS) {
      // (a table schema() has yet to create gets the column there)
      const columns = db.prepare(`SELECT name FROM pragma_table_info('${table(res)}')`).pluck().all() as string[];
      if (columns.length > 0 && !columns.includes('aborted')) db.exec(`ALTER TABLE ${table(res)} ADD COLUMN aborted INTEGER NOT NULL DEFAULT 0`);
    }
  }
  db.exec(schema());
  // (a write: not when there is nothing to change, so that a collector opens on a full disk)
  if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  // a write that fails for lack of space: refused with a 503 (its transaction rolled back whole), said once per episode
  const space = new DiskSpace(options.dataDir, options.warn ?? (() => {}));
  const aggregates = sqliteAggregates(db, retention, (err) => space.skipped(err, false));

  const insertBatch = db.prepare('INSERT OR IGNORE INTO batches (batchId, receivedAt) VALUES (?, ?)');
  const upsertInstance = db.prepare(
    `INSERT INTO instances (service, instance, firstSeen, lastSeen, droppedBatches, droppedTransactions, droppedTraces, agent, cutValues) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (service, instance) DO UPDATE SET firstSeen = MIN(firstSeen, excluded.firstSeen), lastSeen = MAX(lastSeen, excluded.lastSeen), agent = excluded.agent,
       droppedBatches = MAX(droppedBatches, excluded.droppedBatches), droppedTransactions = MAX(droppedTransactions, excluded.droppedTransactions),
       droppedTraces = MAX(droppedTraces, excluded.droppedTraces), cutValues = MAX(cutValues, excluded.cutValues)`,
  );
  const insertTrace = db.prepare(
    `INSERT OR IGNORE INTO traces (${TRACES_V3_COLUMNS}, instance, spanId, parentSpanId)
     SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM traces WHERE traceId = ?) < ${MAX_TRACE_PARTS}`,
  );
  const perResolution = RESOLUTIONS.map((res) => ({
    res,
    prune: db.prepare(`DELETE FROM ${table(res)} WHERE bucket < ?`),
    selectLoop: db.prepare(`SELECT * FROM ${loopTable(res)} WHERE service = ? AND bucket = ?`),
    upsertLoop: db.prepare(
      `INSERT INTO ${loopTable(res)} (service, bucket, delay, busyMs, idleMs, gc, cpuUser, cpuSystem, rss, heapUsed, heapTotal, ${LOOP_AGENT.join(', ')})
       VALUES (@service, @bucket, @delay, @busyMs, @idleMs, @gc, @cpuUser, @cpuSystem, @rss, @heapUsed, @heapTotal, ${LOOP_AGENT.map((c) => `@${c}`).join(', ')})
       ON CONFLICT (service, bucket) DO UPDATE SET delay = excluded.delay, busyMs = excluded.busyMs, idleMs = excluded.idleMs, gc = excluded.gc,
       cpuUser = excluded.cpuUser, cpuSystem = excluded.cpuSystem, rss = excluded.rss, heapUsed = excluded.heapUsed, heapTotal = excluded.heapTotal,
       ${LOOP_AGENT.map((c) => `${c} = excluded.${c}`).join(', ')}`,
    ),
    pruneLoop: db.prepare(`DELETE FROM ${loopTable(res)} WHERE bucket < ?`),
  }));
  const insertLongTask = db.prepare(
    `INSERT INTO long_tasks (service, instance, at, ms, endpoint, traceId, function, location, compiledLocation, stack, blocked)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const pruneLongTasks = db.prepare('DELETE FROM long_tasks WHERE at < ?');
  const pruneTraces = db.prepare('DELETE FROM traces WHERE start < ?');
  const pruneBatches = db.prepare('DELETE FROM batches WHERE receivedAt < ?');
  const pruneInstances = db.prepare('DELETE FROM instances WHERE lastSeen < ?');
  const selectServices = db.prepare(
    `SELECT service, MIN(firstSeen) AS firstSeen, MAX(lastSeen) AS lastSeen, COUNT(*) AS instances,
       SUM(droppedBatches) AS batches, SUM(droppedTransactions) AS transactions, SUM(droppedTraces) AS traces, SUM(refusedParts) AS parts, SUM(cutValues) AS cut, GROUP_CONCAT(DISTINCT agent) AS agents
     FROM instances WHERE firstSeen < ? AND lastSeen >= ? GROUP BY service ORDER BY service`,
  );
  const selectTraceParts = db.prepare('SELECT record, instance FROM traces WHERE traceId = ? ORDER BY start');
  const countParts = db.prepare('SELECT COUNT(*) FROM traces WHERE traceId = ?').pluck();
  const selectCallRow = db.prepare('SELECT count, errors, duration FROM calls WHERE service = ? AND kind = ? AND target = ? AND bucket = ?');
  const upsertCallRow = db.prepare(
    `INSERT INTO calls (service, kind, target, bucket, count, errors, duration) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (service, kind, target, bucket) DO UPDATE SET count = excluded.count, errors = excluded.errors, duration = excluded.duration`,
  );
  const selectCalls = db.prepare('SELECT service, kind, target, count, errors, duration FROM calls WHERE bucket >= ? AND bucket < ?');
  const pruneCalls = db.prepare('DELETE FROM calls WHERE bucket < ?');
  const addLoss = db.prepare(
    `INSERT INTO context_loss (service, module, site, function, bucket, count, lostMs) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (service, module, site, bucket) DO UPDATE SET function = excluded.function, count = count + excluded.count, lostMs = lostMs + excluded.lostMs`,
  );
  const selectLosses = db.prepare(
    `SELECT module, site, MAX(function) AS function, SUM(count) AS count, SUM(lostMs) AS lostMs FROM context_loss
     WHERE service = ? AND bucket >= ? AND bucket < ? GROUP BY module, site ORDER BY lostMs DESC, count DESC`,
  );
  const pruneLosses = db.prepare('DELETE FROM context_loss WHERE bucket < ?');
  const upsertTarget = db.prepare('INSERT INTO call_targets (target, service, seen) VALUES (?, ?, ?) ON CONFLICT (target) DO UPDATE SET service = excluded.service, seen = excluded.seen');
  const selectTargets = db.prepare('SELECT target, service FROM call_targets WHERE seen >= ?');
  const pruneTargets = db.prepare('DELETE FROM call_targets WHERE seen < ?');
  const selectAlertRound = db.prepare('SELECT holder, at, state FROM alert_round WHERE id = 1');
  const upsertAlertRound = db.prepare('INSERT INTO alert_round (id, holder, at, state) VALUES (1, @holder, @at, @state) ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, at = excluded.at, state = excluded.state');
  const addRefusedParts = db.prepare('UPDATE instances SET refusedParts = refusedParts + ? WHERE service = ? AND instance = ?');
  // what ran on a service's loop around [from, to): with @instance NULL, on every process of the service
  const longTasksOverlapping = db.prepare(
    `SELECT at, ms, endpoint, traceId, function, location, instance FROM long_tasks
     WHERE service = @service AND at >= @since AND at < @to AND at + ms > @from AND (@instance IS NULL OR instance = @instance) ORDER BY at`,
  );
  const tracesOverlapping = db.prepare(
    `SELECT traceId, endpoint, start, instance, json_extract(record, '$.slices') AS slices FROM traces
     WHERE service = @service AND start >= @since AND start < @to AND start + duration > @from AND (@instance IS NULL OR instance = @instance)
       AND json_type(record, '$.slices') = 'array'`,
  );
  const longTaskColumns = 'at, ms, endpoint, traceId, function, location, compiledLocation, stack, blocked, instance';

  /** Merges a process's loop sample into the service's rows at every resolution; stores its long tasks. */
  function ingestLoop(service: string, instance: string, loop: WireLoop, receivedAt: number): void {
    for (const { res, selectLoop, upsertLoop } of perResolution) {
      const bucket = bucketOf(loop.start, res);
      if (bucket < receivedAt - retention[res.retention]) continue;
      const row = (selectLoop.get(service, bucket) as LoopRow | undefined) ?? emptyLoopRow(service, bucket);
      const delay = decodeSketch(row.delay);
      mergeWire(delay, loop.delay);
      const gc = JSON.parse(row.gc) as GcTotals;
      addGc(gc, loop.gc);
      upsertLoop.run({
        service,
        bucket,
        delay: encodeSketch(delay),
        busyMs: row.busyMs + loop.busyMs,
        idleMs: row.idleMs + loop.idleMs,
        gc: JSON.stringify(gc),
        cpuUser: row.cpuUser + loop.cpu.user,
        cpuSystem: row.cpuSystem + loop.cpu.system,
        rss: Math.max(row.rss, loop.memory.rss),
        heapUsed: Math.max(row.heapUsed, loop.memory.heapUsed),
        heapTotal: Math.max(row.heapTotal, loop.memory.heapTotal),
        ...agentSums(row, loop),
      });
    }
    for (const t of loop.longTasks) {
      insertLongTask.run(service, instance, t.at, t.ms, t.endpoint ?? null, t.traceId ?? null, t.function, t.location ?? null, t.compiledLocation ?? null, JSON.stringify(t.stack ?? []), JSON.stringify(t.blocked));
    }
  }

  /**
   * Stores a group of batches in one transaction (group commit: one commit, one sync, for the
   * batches that arrived together); returns, per batch, whether it had been stored already, and what
   * the aggregates do once it has committed (sqlite-aggregates.ts).
   */
  const ingestGroup = db.transaction((group: ReadonlyArray<{ batch: WireBatch; receivedAt: number }>): { duplicates: boolean[]; committed: () => void } => {
    const fresh = group.filter(({ batch, receivedAt }) => insertBatch.run(batch.batchId, receivedAt).changes > 0);
    const committed = aggregates.ingest(fresh);
    for (const { batch, receivedAt } of fresh) ingestRest(batch, receivedAt);
    return { duplicates: group.map((p) => !fresh.includes(p)), committed };
  });

  /** A batch's loop data, calls, traces and instance row (its aggregates are ingestGroup's). */
  function ingestRest(batch: WireBatch, receivedAt: number): void {
    if (batch.loop !== undefined) ingestLoop(batch.service, batch.instance, batch.loop, receivedAt);
    // outbound calls, per minute (the service map reads them over its range)
    const minute = RESOLUTIONS.find((r) => r.name === 'minute')!;
    for (const c of batch.calls ?? []) {
      const bucket = bucketOf(c.start, minute);
      if (bucket < receivedAt - retention.minutes) continue;
      const old = selectCallRow.get(batch.service, c.kind, c.target, bucket) as { count: number; errors: number; duration: Buffer } | undefined;
      const duration = old === undefined ? c.duration : decodeSketch(old.duration);
      if (old !== undefined) mergeWire(duration, c.duration);
      upsertCallRow.run(batch.service, c.kind, c.target, bucket, c.count + (old?.count ?? 0), c.errors + (old?.errors ?? 0), encodeSketch(duration));
    }
    for (const l of batch.contextLoss ?? []) {
      const bucket = bucketOf(l.start, minute);
      if (bucket >= receivedAt - retention.minutes) addLoss.run(batch.service, l.module, l.site, l.function, bucket, l.count, l.lostMs);
    }
    let refused = 0;
    for (const t of batch.traces) {
      const { changes } = insertTrace.run(t.traceId, t.service, t.endpoint, t.start, t.status, t.error ? 1 : 0, t.response, t.duration, t.cpu, t.external, t.blocking, JSON.stringify(t), batch.instance, t.spanId ?? '', t.parentSpanId ?? null, t.traceId);
      // not stored: a part already there (sent again), or one past the trace's limit (counted)
      if (changes === 0 && (countParts.get(t.traceId) as number) >= MAX_TRACE_PARTS) refused++;
    }
    const { first, last } = batchSpan(batch);
    // the agent's drop counters only grow (per process): the largest one seen is the latest
    const { dropped } = batch;
    upsertInstance.run(batch.service, batch.instance, first, last, dropped.batches, dropped.transactions, dropped.traces, batch.agent.name, dropped.cut ?? 0);
    if (refused > 0) addRefusedParts.run(refused, batch.service, batch.instance);
  }

  /**
   * Group commit: batches are stored together, in one transaction with one sync and one
   * read-merge-write of the rows they share. A group is committed in the turn after its first batch
   * came, unless one of the last groups held more batches than have come: then it waits for as
   * many (the senders keep that many in flight), at most GROUP_WAIT_MS. One sender's batch never
   * waits.
   */
  let pending: Array<{ batch: WireBatch; receivedAt: number; resolve: (duplicate: boolean) => void; reject: (err: unknown) => void }> = [];
  /** the sizes of the last groups, and the largest of them: how many batches are likely to come together */
  const sizes: number[] = [];
  let expected = 1;
  let waiting: NodeJS.Timeout | undefined;
  let due = false;
  function enqueue(p: (typeof pending)[number]): void {
    pending.push(p);
    if (pending.length >= Math.min(expected, MAX_GROUP)) {
      clearTimeout(waiting);
      waiting = undefined;
      if (!due) setImmediate(commitPending);
      due = true;
    } else waiting ??= setTimeout(commitPending, GROUP_WAIT_MS);
  }
  function commitPending(): void {
    clearTimeout(waiting);
    waiting = undefined;
    due = false;
    const group = pending;
    pending = [];
    if (group.length === 0) return; // committed by close() already
    sizes.push(group.length);
    if (sizes.length > GROUP_MEMORY) sizes.shift();
    expected = Math.max(...sizes);
    let duplicates: boolean[];
    try {
      // (a failure rolls the whole group back, batch ids with it: each batch is stored when it comes again)
      const stored = ingestGroup(group);
      stored.committed();
      duplicates = stored.duplicates;
    } catch (err) {
      aggregates.failed();
      const full = space.refuse(err, group.length);
      group.forEach((p) => p.reject(full ?? err));
      return;
    }
    space.wrote();
    group.forEach((p, i) => p.resolve(duplicates[i]!));
  }

  const prune = db.transaction((now: number) => {
    // (the rows held in memory are written first, and forgotten after, in case retention is that short)
    const flushed = aggregates.flushForPrune();
    for (const { res, prune, pruneLoop } of perResolution) {
      prune.run(now - retention[res.retention]);
      pruneLoop.run(now - retention[res.retention]);
    }
    pruneTraces.run(now - retention.traces);
    pruneLongTasks.run(now - retention.traces);
    pruneCalls.run(now - retention.minutes);
    pruneLosses.run(now - retention.minutes);
    pruneTargets.run(now - retention.traces);
    pruneBatches.run(now - retention.batches);
    pruneInstances.run(now - retention.hours);
    return flushed;
  });

  const statements = new Map<string, Database.Statement>();
  /** A statement made of parts that vary by query, prepared once. */
  function statement(sql: string): Database.Statement {
    let stmt = statements.get(sql);
    if (!stmt) statements.set(sql, (stmt = db.prepare(sql)));
    return stmt;
  }

  const traceStatement = (byEndpoint: boolean, sort: TracesQuery['sort'], by: 'duration' | 'response'): Database.Statement =>
    statement(
      `SELECT traceId, endpoint, start, status, json_extract(record, '$.aborted') IS 1 AS aborted, response, duration, cpu, external, blocking FROM traces
         WHERE service = ? ${byEndpoint ? 'AND endpoint = ?' : ''} AND start >= ? AND start < ?
         ORDER BY ${sort === 'slowest' ? `${by} DESC, start DESC` : 'start DESC'} LIMIT ?`,
    );

  /** The long tasks that match `where` grouped by culprit, with their timelines over the query's range (culprits.ts). */
  function culpritGroupsOf(where: string, args: unknown[], query: LoopQuery): LongTaskGroup[] {
    // (a task's blocked list is JSON: [{ endpoint, count, ms }])
    const blocked = (field: string): string => `SUM((SELECT TOTAL(json_extract(b.value, '$.${field}')) FROM json_each(long_tasks.blocked) AS b))`;
    const rows = statement(
      `SELECT function, location, MAX(compiledLocation) AS compiledLocation, COUNT(*) AS count, SUM(ms) AS totalMs, MAX(ms) AS maxMs, json_group_array(DISTINCT endpoint) AS endpoints,
         ${blocked('count')} AS blockedCount, ${blocked('ms')} AS blockedMs FROM long_tasks WHERE ${where} GROUP BY function, location`,
    ).all(...args) as Array<Omit<CulpritRow, 'endpoints'> & { endpoints: string }>;
    const parts = statement(
      `SELECT function, location, CAST((at - ?) * ${TIMELINE_PARTS} / ? AS INTEGER) AS part, SUM(ms) AS ms FROM long_tasks WHERE ${where} GROUP BY function, location, part`,
    ).all(query.from, query.to - query.from, ...args) as CulpritPart[];
    return culpritGroups(
      rows.map((r) => ({ ...r, endpoints: JSON.parse(r.endpoints) as Array<string | null> })),
      parts,
      query.limit,
    );
  }

  /** Rows of one resolution for a service (and endpoint) whose buckets overlap [from, to). */
  function aggregateRows(res: Resolution, columns: string, service: string, endpoint: string | undefined, from: number, to: number): unknown[] {
    const where = `service = ? ${endpoint === undefined ? '' : 'AND endpoint = ?'} AND bucket >= ? AND bucket < ?`;
    const stmt = statement(`SELECT bucket, endpoint, ${columns} FROM ${table(res)} WHERE ${where}`);
    const args = endpoint === undefined ? [service, bucketOf(from, res), to] : [service, endpoint, bucketOf(from, res), to];
    return aggregates.overlay(res, stmt.all(...args) as Array<{ bucket: number; endpoint: string }>, { service, endpoint, from: bucketOf(from, res), to });
  }

  /** aggregateRows() over [from, to), each stretch from the resolution that answers it with the fewest rows (tiles()). */
  function tiledRows(columns: string, service: string, endpoint: string | undefined, from: number, to: number): unknown[] {
    return tiles(retention, from, to, Date.now()).flatMap((t) => aggregateRows(t.res, columns, service, endpoint, t.from, t.to));
  }

  const viewStatements = new Map<Resolution, Database.Statement>();
  /** Rows of one resolution for an endpoint in every service, whose buckets overlap [from, to). */
  function viewRows(res: Resolution): Database.Statement {
    let stmt = viewStatements.get(res);
    if (!stmt) viewStatements.set(res, (stmt = db.prepare(`SELECT service, bucket, ${SUMMARY_COLUMNS} FROM ${table(res)} WHERE endpoint = ? AND bucket >= ? AND bucket < ?`)));
    return stmt;
  }

  let closed = false;
  return {
    kind: 'sqlite',
    diskFull: space.stats,

    ingest(batch, receivedAt) {
      return new Promise((resolve, reject) => {
        enqueue({ batch, receivedAt, resolve: (duplicate) => resolve({ duplicate }), reject });
      });
    },

    async services({ from, to }) {
      type Row = Omit<ServiceSummary, 'dropped' | 'agents' | 'agent'> & ServiceSummary['dropped'] & { agents: string };
      // what the agents said they cost, per service, over the range's loop rows
      const costs = new Map<string, AgentSums>();
      const sums = [...AGENT_SUMS.map((c) => `SUM(${c}) AS ${c}`), ...AGENT_MAXES.map((c) => `MAX(${c}) AS ${c}`)].join(', ');
      for (const t of tiles(retention, from, to, Date.now())) {
        for (const row of statement(`SELECT service, ${sums} FROM ${loopTable(t.res)} WHERE bucket >= ? AND bucket < ? GROUP BY service`).all(t.from, t.to) as Array<AgentSums & { service: string }>) {
          const cost = costs.get(row.service) ?? emptyAgentSums();
          addAgentSums(cost, row);
          costs.set(row.service, cost);
        }
      }
      return (selectServices.all(to, from) as Row[]).map(({ service, firstSeen, lastSeen, instances, batches, transactions, traces, parts, cut, agents }) => ({
        service,
        firstSeen,
        lastSeen,
        instances,
        dropped: { batches, transactions, traces, parts, cut },
        agents: agents.split(',').sort(),
        agent: agentCostOf(costs.get(service) ?? emptyAgentSums()),
      }));
    },

    async endpoints(service: string, { from, to }: Range) {
      aggregates.flush();
      const rows = tiledRows(SUMMARY_COLUMNS, service, undefined, from, to) as Array<StoredRow & { endpoint: string }>;
      const list: EndpointSummary[] = [...summaries(rows, (r) => r.endpoint)].map(([endpoint, e]) => ({ endpoint, ...e }));
      return list.sort((a, b) => b.count - a.count || (a.endpoint < b.endpoint ? -1 : 1));
    },

    async views(endpoint: string, { from, to }: Range) {
      aggregates.flush();
      const rows = tiles(retention, from, to, Date.now()).flatMap((t) =>
        aggregates.overlay(t.res, viewRows(t.res).all(endpoint, t.from, t.to) as Array<StoredRow & { service: string; bucket: number }>, { endpoint, from: t.from, to: t.to }),
      );
      const agents = new Map((selectServices.all(to, from) as Array<{ service: string; agents: string }>).map((r) => [r.service, r.agents.split(',').sort()]));
      const list: EndpointView[] = [...summaries(rows, (r) => r.service)].map(([service, e]) => ({ service, agents: agents.get(service) ?? [], endpoint, ...e }));
      return list.sort((a, b) => b.count - a.count || (a.service < b.service ? -1 : 1));
    },

    async summary(service: string, endpoint: string | undefined, { from, to }: Range): Promise<RangeTotals> {
      aggregates.flush();
      const totals = emptyTotals();
      for (const r of tiledRows(`count, errors, aborted, ${METRICS.join(', ')}`, service, endpoint, from, to) as StoredRow[]) addTotals(totals, decoded(r));
      return totals;
    },

    async timeseries(query: TimeseriesQuery): Promise<TimeseriesResult> {
      aggregates.flush();
      const res = chooseResolution(retention, query.from, Date.now(), query.step);
      const { step, t0, points } = seriesGrid(query, res);
      const metric = query.metric;
      if (isLoopSeries(metric)) {
        // the loop's rows of the range's buckets, merged per point
        const acc = Array.from({ length: points }, emptyLoopPoint);
        const rows = statement(`SELECT bucket, delay, busyMs, idleMs, gc FROM ${loopTable(res)} WHERE service = ? AND bucket >= ? AND bucket < ?`).all(
          query.service,
          bucketOf(query.from, res),
          query.to,
        ) as LoopRow[];
        for (const r of rows) {
          const p = acc[Math.floor((r.bucket - t0) / step)];
          if (p === undefined) continue;
          p.rows++;
          if (metric === 'loop_delay') mergeWire(p.delay, decodeSketch(r.delay));
          p.busyMs += r.busyMs;
          p.idleMs += r.idleMs;
          for (const g of Object.values(JSON.parse(r.gc) as GcTotals)) p.gcMs += g.ms;
        }
        return { metric, q: query.q, step, points: acc.map((p, i) => [t0 + i * step, loopPointValue(metric, p, query.q, step)]) };
      }
      // per-second rates of a count column; the other metrics are sketches
      const column = metric === 'throughput' ? 'count' : metric === 'errors' || metric === 'aborted' ? metric : undefined;
      const counted = column !== undefined;
      // the range's buckets only: a first point that starts before `from` (always, with a step wider
      // than the range) holds no data from before it
      const rows = aggregateRows(res, counted ? 'count, errors, aborted' : `count, ${query.metric}`, query.service, query.endpoint, query.from, query.to) as Array<
        Partial<StoredRow> & { bucket: number }
      >;
      const sums = new Array<number | null>(points).fill(null);
      const sketches = new Array<WireSketch | undefined>(points);
      for (const r of rows) {
        const i = Math.floor((r.bucket - t0) / step);
        if (i < 0 || i >= points) continue;
        if (column !== undefined) sums[i] = (sums[i] ?? 0) + r[column]!;
        else mergeWire((sketches[i] ??= emptyWire()), decodeSketch(r[metric as MetricName]!));
      }
      const value = (i: number): number | null => {
        if (counted) return sums[i] === null ? null : sums[i]! / (step / 1000);
        const s = sketches[i];
        return s && s.n > 0 ? round(quantile(fromWire(s), query.q)) : null; // n 0: unknown (seen from outside)
      };
      return { metric: query.metric, q: query.q, step, points: Array.from({ length: points }, (_, i) => [t0 + i * step, value(i)]) };
    },

    async traces(query: TracesQuery) {
      const stmt = traceStatement(query.endpoint !== undefined, query.sort, query.by ?? 'duration');
      const args = query.endpoint === undefined ? [query.service, query.from, query.to, query.limit] : [query.service, query.endpoint, query.from, query.to, query.limit];
      return (stmt.all(...args) as Array<Omit<TraceSummary, 'aborted'> & { aborted: 0 | 1 }>).map((t) => ({ ...t, aborted: t.aborted === 1 }));
    },

    async traceRecords({ service, endpoint, from, to, limit, atRandom }: RecordsQuery) {
      const sql = `SELECT record FROM traces WHERE service = ? AND endpoint = ? AND start >= ? AND start < ?${atRandom ? " AND json_extract(record, '$.sampledAtRandom') = 1" : ''} ORDER BY start DESC LIMIT ?`;
      return (statement(sql).pluck().all(service, endpoint, from, to, limit) as string[]).map((r) => JSON.parse(r) as TraceRecord);
    },

    async loop(query: LoopQuery): Promise<LoopSummary> {
      // each stretch of the range from the resolution with the fewest rows (tiles())
      const rows = tiles(retention, query.from, query.to, Date.now()).flatMap((t) => {
        return statement(`SELECT * FROM ${loopTable(t.res)} WHERE service = ? AND bucket >= ? AND bucket < ?`).all(query.service, t.from, t.to) as LoopRow[];
      });
      const delay = emptyWire();
      const total = emptyLoopRow(query.service, 0);
      const gc: GcTotals = {};
      for (const row of rows) {
        mergeWire(delay, decodeSketch(row.delay));
        total.busyMs += row.busyMs;
        total.idleMs += row.idleMs;
        total.cpuUser += row.cpuUser;
        total.cpuSystem += row.cpuSystem;
        total.rss = Math.max(total.rss, row.rss);
        total.heapUsed = Math.max(total.heapUsed, row.heapUsed);
        total.heapTotal = Math.max(total.heapTotal, row.heapTotal);
        addGc(gc, JSON.parse(row.gc) as GcTotals);
      }
      // the long tasks of the range, of one culprit if the query names it
      const where = ['service = ?', 'at >= ?', 'at < ?'];
      const args: unknown[] = [query.service, query.from, query.to];
      if (query.function !== undefined) {
        where.push('function = ?');
        args.push(query.function);
      }
      if (query.location === null) where.push('location IS NULL');
      else if (query.location !== undefined) {
        where.push('location = ?');
        args.push(query.location);
      }
      const tasksWhere = where.join(' AND ');
      const tasks = statement(`SELECT ${longTaskColumns} FROM long_tasks WHERE ${tasksWhere} ORDER BY ${query.sort === 'worst' ? 'ms DESC, at DESC' : 'at DESC'} LIMIT ?`).all(
        ...args,
        query.limit,
      ) as Array<Omit<LongTaskRow, 'stack' | 'blocked'> & { stack: string; blocked: string }>;
      const busy = total.busyMs + total.idleMs;
      return {
        delay: summarize(fromWire(delay)),
        utilization: utilizationOf(total.busyMs, total.idleMs),
        gcPauseMs: round(Object.values(gc).reduce((sum, g) => sum + g.ms, 0)),
        gc,
        cpu: { user: round(total.cpuUser), system: round(total.cpuSystem) },
        memory: { rss: total.rss, heapUsed: total.heapUsed, heapTotal: total.heapTotal },
        longTasks: tasks.map((t) => ({ ...t, stack: JSON.parse(t.stack) as string[], blocked: JSON.parse(t.blocked) as LongTaskRow['blocked'] })),
        longTaskCount: (statement(`SELECT COUNT(*) AS n FROM long_tasks WHERE ${tasksWhere}`).get(...args) as { n: number }).n,
        loopMs: round(busy),
        ...(query.group === 'culprit' ? { groups: culpritGroupsOf(tasksWhere, args, query) } : {}),
      };
    },

    async calls({ from, to }: Range) {
      const minute = RESOLUTIONS.find((r) => r.name === 'minute')!;
      const merged = new Map<string, { service: string; kind: string; target: string; count: number; errors: number; duration: WireSketch }>();
      for (const r of selectCalls.all(bucketOf(from, minute), to) as Array<{ service: string; kind: string; target: string; count: number; errors: number; duration: Buffer }>) {
        const key = `${r.service}\n${r.kind}\n${r.target}`;
        const e = merged.get(key);
        if (e === undefined) merged.set(key, { service: r.service, kind: r.kind, target: r.target, count: r.count, errors: r.errors, duration: decodeSketch(r.duration) });
        else {
          e.count += r.count;
          e.errors += r.errors;
          mergeWire(e.duration, decodeSketch(r.duration));
        }
      }
      return [...merged.values()];
    },

    async contextLoss(service: string, { from, to }: Range) {
      const minute = RESOLUTIONS.find((r) => r.name === 'minute')!;
      return (selectLosses.all(service, bucketOf(from, minute), to) as ContextLossSite[]).map((r) => ({ ...r, lostMs: round(r.lostMs) }));
    },

    async learnTarget(target: string, service: string, now: number) {
      try {
        upsertTarget.run(target, service, now);
      } catch (err) {
        // the batch it came with is stored: learning waits for a later trace rather than refusing it
        if (!space.skipped(err, false)) throw err;
      }
    },

    async targets(since: number) {
      return new Map((selectTargets.all(since) as Array<{ target: string; service: string }>).map((r) => [r.target, r.service]));
    },

    async traceParts(traceId: string) {
      return (selectTraceParts.all(traceId) as Array<{ record: string; instance: string | null }>).map((row) => ({ record: JSON.parse(row.record) as TraceRecord, instance: row.instance }));
    },

    async loopWork(query: LoopWorkQuery): Promise<LoopWork> {
      const args = { service: query.service, since: query.from - query.lookback, from: query.from, to: query.to, instance: query.instance };
      const longTasks = longTasksOverlapping.all(args) as LoopWork['longTasks'];
      const rows = tracesOverlapping.all(args) as Array<{ traceId: string; endpoint: string; start: number; instance: string | null; slices: string }>;
      return { longTasks, traces: sliceTimes(rows) };
    },

    async check() {
      if (closed) throw new Error('the database is closed');
    },

    async lastAlertRound() {
      return (selectAlertRound.get() as AlertRound | undefined) ?? null;
    },

    async saveAlertRound(round: AlertRound) {
      upsertAlertRound.run(round);
    },

    async prune(now: number) {
      try {
        prune(now)();
      } catch (err) {
        // counted and said (once per episode); the next prune tries again, and a collector starts on a full disk
        if (!space.skipped(err, true)) throw err;
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      if (pending.length > 0) commitPending(); // batches handed over in this very turn
      try {
        aggregates.close();
      } finally {
        db.close();
      }
    },
  };
}
