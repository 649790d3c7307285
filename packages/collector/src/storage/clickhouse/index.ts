/**
 * The ClickHouse storage: the same Storage as the embedded SQLite, for many collectors on one
 * database (docs/clickhouse.md). A collector keeps nothing of its own: every answer is read from
 * ClickHouse, so any collector answers for data another one received.
 *
 * Ingest commits in groups: the batches that arrive while a write is under way (or within a few
 * ms) are written together, one INSERT per table, and each is acknowledged only once every insert
 * of its group has been confirmed. ClickHouse wants few large inserts (each insert is a part on
 * disk to merge), and a group costs about what one batch does.
 *
 * A batch is stored once, whichever collector it reaches and however often it is sent. Each group
 * first records its batches as begun, then writes their rows (each tagged with its batch id), then
 * records them as stored. A batch already stored is acknowledged as a duplicate. A batch begun but
 * never recorded as stored (its collector died mid-write) is completed: only its rows that are not
 * in ClickHouse yet are written (each row carries its batch's id and its place in the batch; an
 * insert cut off in the middle of its body may have stored the rows before the cut). It is completed only once its beginning is `settleMs` old, longer
 * than any write may take, so that the inserts of a collector killed a moment ago have landed or
 * failed; until then it is refused with a 503 (RetryLater), and the agent sends it again later.
 * (Two collectors writing the same new batch at the same moment could both store it: an agent
 * sends a batch to one collector at a time and retries only after its request failed or timed out.)
 */
import {
  EXTERNAL_KINDS,
  MAX_TRACE_PARTS,
  METRICS,
  emptyWire,
  fromWire,
  isLoopSeries,
  mergeWire,
  quantile,
  summarize,
  type MetricName,
  type TraceRecord,
  type WireBatch,
  type WireSketch,
} from '@loopscope/protocol';
import { TIMELINE_PARTS, culpritGroups, type CulpritPart, type CulpritRow } from '../culprits.js';
import { RESOLUTIONS, bucketOf, chooseResolution, seriesGrid, tiles, type Resolution } from '../resolution.js';
import {
  DEFAULT_RETENTION,
  RetryLater,
  type AlertRound,
  type CallTotals,
  type ContextLossSite,
  type EndpointSummary,
  type EndpointView,
  type LongTaskGroup,
  type LongTaskRow,
  type LoopQuery,
  type RecordsQuery,
  type LoopSummary,
  type LoopWork,
  type LoopWorkQuery,
  type Range,
  type RangeTotals,
  type Retention,
  type ServiceSummary,
  type Storage,
  type TimeseriesQuery,
  type TimeseriesResult,
  type TraceSummary,
  type TracesQuery,
} from '../storage.js';
import {
  AGENT_MAXES,
  AGENT_SUMS,
  GC_KINDS,
  addAgentSums,
  addGc,
  agentCostOf,
  agentSumsOf,
  batchSpan,
  emptyAgentSums,
  emptyLoopPoint,
  emptyWithKinds,
  foldTotals,
  gcKind,
  loopPointValue,
  round,
  sliceTimes,
  toSummary,
  utilizationOf,
  type AgentSums,
  type GcTotals,
  type Totals,
} from '../totals.js';
import { ClickHouseClient, ClickHouseError, literal, parseClickHouseUrl, type ClickHouseTarget } from './client.js';
import {
  ADDED_COLUMNS,
  AGG_SUMS,
  BATCHED_TABLES,
  LEGACY_AGG,
  LEGACY_BINS,
  LOOP_MAXES,
  LOOP_SUMS,
  ROLLUP_MAXES,
  ROLLUP_MERGE,
  ROLLUP_MINS,
  ROLLUP_SUMS,
  ROLLUPS,
  localTable,
  loopBinsFromStates,
  maxOf,
  schemaStatements,
  sketchMerge,
  sumOf,
  type BatchedTable,
} from './schema.js';

export interface ClickHouseOptions {
  /** clickhouse://[user[:password]@]host[:port]/database */
  url: string;
  retention?: Partial<Retention>;
  /** the longest a batch waits for others to be written with it (ms) */
  groupMs?: number;
  /** how old a batch begun and never finished must be before it is completed (ms; default 40 s, more than a write's timeout) */
  settleMs?: number;
  /** the longest ClickHouse works on one query (ms, rounded up to whole seconds) */
  queryTimeoutMs?: number;
}

/** The longest one request to ClickHouse may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The most batches one group writes. */
const MAX_GROUP = 500;
/** Stands for "no value" in a min column: larger than any time. */
const NO_MIN = 1e308;

type Row = Record<string, unknown>;
/** Where a rollup's bins are read from (see binsOf). */
type BinsOf = { of: 'endpoints' | 'service'; metrics?: readonly MetricName[] } | { of: 'loop' };
/** Bins summed per group (and metric, but for the loop's delay), as ClickHouse answers them. */
type Bins = { g: string | number; metric?: number; keys: number[]; counts: number[] };
/** Where rows of one resolution are read: the condition on `t` (`sql`) and the earliest time it takes in. */
type Span = { from: number; sql: string };

/** A sketch's columns as inserted (see schema.ts). */
function sketchRow(m: string, s: WireSketch | null): Row {
  const w = s ?? emptyWire();
  const keys: number[] = [];
  const counts: number[] = [];
  w.bins.forEach((c, i) => {
    if (c > 0) {
      keys.push(w.k0 + i);
      counts.push(c);
    }
  });
  return { [`${m}_n`]: w.n, [`${m}_sum`]: w.sum, [`${m}_min`]: w.n > 0 ? w.min : NO_MIN, [`${m}_max`]: w.n > 0 ? w.max : 0, [`${m}_zero`]: w.zero, [`${m}_keys`]: keys, [`${m}_counts`]: counts };
}

/** A merged sketch read back from `q_<m>_*` columns (its bins as keys and counts, in any order). */
function readSketch(row: Row, m: string): WireSketch {
  const n = row[`q_${m}_n`] as number;
  const [keys, counts] = (row[`q_${m}_bins`] as [number[], number[]] | undefined) ?? [[], []];
  const k0 = keys.length > 0 ? Math.min(...keys) : 0;
  const bins = new Array<number>(keys.length > 0 ? Math.max(...keys) - k0 + 1 : 0).fill(0);
  keys.forEach((k, i) => (bins[k - k0]! += counts[i]!));
  return { n, sum: row[`q_${m}_sum`] as number, min: n > 0 ? (row[`q_${m}_min`] as number) : 0, max: n > 0 ? (row[`q_${m}_max`] as number) : 0, zero: row[`q_${m}_zero`] as number, k0, bins };
}

/** A rollup row merged from its arrays (ROLLUP_MERGE), as the columns of aggregateColumns() name them. */
function fromArrays(merged: Row): Row {
  const row: Row = {};
  for (const [c, v] of Object.entries(merged)) if (!['q_sums', 'q_mins', 'q_maxes'].includes(c)) row[c] = v;
  const put = (names: string[], values: unknown): void => names.forEach((c, i) => (row[`q_${c}`] = (values as number[])[i] ?? 0));
  put(ROLLUP_SUMS, merged.q_sums);
  put(ROLLUP_MINS, merged.q_mins);
  put(ROLLUP_MAXES, merged.q_maxes);
  return row;
}

/**
 * Rows of aggregateColumns() merged per `key` (a column), as ClickHouse would have merged them
 * together: the least of each `_min`, the most of each `_max`, the sum of the rest.
 */
function mergeRows(rows: Row[], key: string | undefined): Row[] {
  const byKey = new Map<string, Row>();
  for (const row of rows) {
    const k = key === undefined ? '' : String(row[key]);
    const into = byKey.get(k);
    if (into === undefined) {
      byKey.set(k, { ...row });
      continue;
    }
    for (const [c, v] of Object.entries(row)) {
      if (!c.startsWith('q_')) continue;
      const [a, b] = [into[c] as number, v as number];
      into[c] = c.endsWith('_min') ? Math.min(a, b) : c.endsWith('_max') ? Math.max(a, b) : a + b;
    }
  }
  return [...byKey.values()];
}

/** Merged aggregate rows read back (the columns of aggregateColumns()). */
function readTotals(row: Row): Totals {
  const t = emptyWithKinds();
  t.count = row.q_count as number;
  t.errors = row.q_errors as number;
  t.aborted = row.q_aborted as number;
  for (const m of METRICS) t.sketches[m] = readSketch(row, m);
  for (const kind of EXTERNAL_KINDS) {
    const sum = row[`q_ext_${kind}`] as number;
    if (sum > 0) t.externalByKind[kind] = sum;
  }
  return t;
}

const secondsOf = (ms: number): number => Math.floor(ms / 1000);
/** `t` (whole seconds) of rows whose bucket in ms is in [from, to). */
const bucketRange = (from: number, to: number): string => `t >= toDateTime(${Math.ceil(from / 1000)}) AND t < toDateTime(${Math.ceil(to / 1000)})`;
/** `t` of rows that hold times (ms, with fractions) in [from, to): the seconds they fall in. */
const timeRange = (from: number, to: number): string => `t >= toDateTime(${secondsOf(from)}) AND t <= toDateTime(${secondsOf(to)})`;

interface Pending {
  batch: WireBatch;
  receivedAt: number;
  resolve: (result: { duplicate: boolean }) => void;
  reject: (err: unknown) => void;
}

/**
 * That `cluster` is in the server's remote_servers with one shard per server named in the URL, and
 * one replica each (the sharded layout keeps one copy of each row: docs/clickhouse.md).
 */
async function checkCluster(server: ClickHouseClient, cluster: string, servers: number): Promise<void> {
  const [row] = await server.query<{ shards: number; replicas: number }>(
    `SELECT uniqExact(shard_num) AS shards, count() AS replicas FROM system.clusters WHERE cluster = ${literal(cluster)}`,
    { database: false },
  );
  const where = `ClickHouse at ${server.target.origin}`;
  if (row!.shards === 0) throw new ClickHouseError(0, `${where} has no cluster ${cluster} in its remote_servers (every server named in the URL needs it)`);
  if (row!.shards !== servers) throw new ClickHouseError(0, `${where}: cluster ${cluster} has ${row!.shards} shards, and the URL names ${servers} server${servers === 1 ? '' : 's'}: name one server of each shard`);
  if (row!.replicas !== row!.shards) throw new ClickHouseError(0, `${where}: cluster ${cluster} has replicas; loopscope's sharded layout keeps one copy per shard (replicated tables are not supported)`);
}

export async function openClickHouseStorage(options: ClickHouseOptions): Promise<Storage> {
  const retention: Retention = { ...DEFAULT_RETENTION, ...options.retention };
  const target: ClickHouseTarget = parseClickHouseUrl(options.url);
  const ch = new ClickHouseClient(target, REQUEST_TIMEOUT_MS, options.queryTimeoutMs);
  const settleMs = options.settleMs ?? REQUEST_TIMEOUT_MS + 10_000;
  // a new database is said so at start (a mistyped name would otherwise split a fleet's data silently)
  // every server holds the schema; with shards, each its local tables and the Distributed ones over all
  const servers = target.servers.map((origin) => (origin === target.origin ? ch : new ClickHouseClient({ ...target, origin }, REQUEST_TIMEOUT_MS, options.queryTimeoutMs)));
  const sharded = target.cluster !== undefined;
  if (target.cluster !== undefined) for (const server of servers) await checkCluster(server, target.cluster, servers.length);
  const [existing] = await ch.query<{ n: number }>(`SELECT count() AS n FROM system.databases WHERE name = ${literal(target.database)}`, { database: false });
  const statements = schemaStatements(target.cluster === undefined ? undefined : { name: target.cluster, database: target.database });
  /** from when bin_maps_* hold every bin (see below; earlier, some are in bins_*): the latest any server noted */
  let binMapsSince = 0;
  /** from when calls_hour and call_bin_maps_hour hold every call (a database from before them: see below) */
  let callsHourSince = 0;
  /** from when agg_arrays_* hold every aggregate (a database from before them: see below) */
  let aggArraysSince = 0;
  for (const server of servers) {
    await server.exec(`CREATE DATABASE IF NOT EXISTS ${target.database}`, { database: false });
    // a database an older collector made: the columns added since (with shards, the local table's
    // and the Distributed one's), first, for 18.16 checks a view's query even when the view exists;
    // the views over their tables dropped before and made again with the rest (a new database has
    // none of the tables yet: all are made below)
    const missing: Array<{ name: string; column: string; type: string; views: string[] }> = [];
    const columnsOf = new Map<string, string[]>();
    for (const { table, column, type, views = [] } of ADDED_COLUMNS) {
      for (const name of sharded ? [localTable(table, true), table] : [table]) {
        let columns = columnsOf.get(name);
        if (columns === undefined) {
          const rows = await server.query<{ name: string }>(`SELECT name FROM system.columns WHERE database = ${literal(target.database)} AND table = ${literal(name)}`);
          columnsOf.set(name, (columns = rows.map((r) => r.name)));
        }
        if (columns.length > 0 && !columns.includes(column)) missing.push({ name, column, type, views });
      }
    }
    for (const view of new Set(missing.flatMap((m) => m.views))) await server.exec(`DROP TABLE IF EXISTS ${view}`);
    for (const { name, column, type } of missing) await server.exec(`ALTER TABLE ${name} ADD COLUMN ${column} ${type}`);
    // the tables a database from before has (for those added since: below)
    const before = (await server.query<{ name: string }>(`SELECT name FROM system.tables WHERE database = ${literal(target.database)}`)).map((r) => r.name);
    // the loop rollups of a database from before keep the delay's bins as sumMap states: copied once
    // into loop_bins_*; then the column goes, and its views (made again below without it)
    for (const { name } of ROLLUPS) {
      const rollups = sharded ? [localTable(`loop_${name}`, true), `loop_${name}`] : [`loop_${name}`];
      const holding = (
        await server.query<{ table: string }>(`SELECT table FROM system.columns WHERE database = ${literal(target.database)} AND table IN (${rollups.map(literal).join(', ')}) AND name = 'delay_bins'`)
      ).map((r) => r.table);
      if (!holding.includes(rollups[0]!)) continue;
      const bins = localTable(`loop_bins_${name}`, sharded);
      if (!before.includes(bins)) {
        await server.exec(statements.find((sql) => sql.startsWith(`CREATE TABLE IF NOT EXISTS ${bins} `))!);
        await server.exec(loopBinsFromStates(name, sharded));
      }
      await server.exec(`DROP TABLE IF EXISTS loop_${name}_mv`);
      for (const table of holding) await server.exec(`ALTER TABLE ${table} DROP COLUMN delay_bins`);
    }
    // a database from before bin_maps_*: the views that filled bins_* and bins_service_* go before the
    // new ones are made (an insert in between would count in both), and bins_service_* with them
    // (bins_* holds the same bins); bins_* stays, read for what came before (binsOf)
    const legacy = before.includes(localTable(LEGACY_BINS[0]!.rows, sharded));
    if (legacy && !before.includes(localTable('bin_maps_minute', sharded))) {
      for (const { rows, service } of LEGACY_BINS) {
        for (const table of [`${rows}_mv`, `${service}_mv`, service, ...(sharded ? [localTable(service, true)] : [])]) await server.exec(`DROP TABLE IF EXISTS ${table}`);
      }
    }
    // a mark (schema_marks): from when a table made later holds all it should, an hour after now
    // (agents whose clocks run ahead); 0 when none was written
    const marks = localTable('schema_marks', sharded);
    const markAt = async (name: string): Promise<number> => (await server.query<{ at: number }>(`SELECT max(at) AS at FROM ${marks} WHERE name = ${literal(name)}`))[0]?.at ?? 0;
    const mark = async (name: string): Promise<number> => {
      const at = Date.now() + 3_600_000;
      await server.exec(`INSERT INTO ${marks} (name, at) VALUES (${literal(name)}, ${at})`);
      return at;
    };
    /**
     * A database that has table `had` and not yet `made`: mark `name`, before `made` is made (a start
     * that stopped in between would otherwise leave the new table's early times empty and unmarked); true then.
     */
    const markBefore = async (had: string, made: string, name: string): Promise<boolean> => {
      if (!before.includes(localTable(had, sharded)) || before.includes(localTable(made, sharded))) return false;
      await server.exec(statements.find((sql) => sql.startsWith(`CREATE TABLE IF NOT EXISTS ${marks} `))!);
      await mark(name);
      return true;
    };
    // a database from before the calls' hour rollup: the hours before the mark are read from the calls' minutes
    await markBefore('calls', 'calls_hour', 'calls_hour');
    // a database from before the rollups' arrays: its rollups of a state per column are filled no
    // more (their views go, once marked) and are read for the times before the mark (aggregateRows)
    if (await markBefore(LEGACY_AGG[0]!.table, 'agg_arrays_minute', 'agg_arrays')) for (const { view } of LEGACY_AGG) await server.exec(`DROP TABLE IF EXISTS ${view}`);
    for (const sql of statements) await server.exec(sql);
    callsHourSince = Math.max(callsHourSince, await markAt('calls_hour'));
    aggArraysSince = Math.max(aggArraysSince, await markAt('agg_arrays'));
    // from when bin_maps_* hold everything; a start that stopped before writing this writes it now,
    // later than it had to be
    if (legacy) binMapsSince = Math.max(binMapsSince, (await markAt('bin_maps')) || (await mark('bin_maps')));
  }
  const groupMs = options.groupMs ?? 5;
  /**
   * `from`, or the oldest time still kept of `kind` if that is later. Retention drops whole days
   * here; the queries leave out what SQLite's pruning would have deleted, so both answer alike.
   */
  const kept = (kind: keyof Retention, from: number): number => Math.max(from, Date.now() - retention[kind]);

  const loopTable = (res: Resolution): { table: string; raw: boolean } => ({ table: `loop_${res.name}`, raw: res.name === 'second' });
  // (a rollup's bins are read apart: see rollupBins)
  const aggregateColumns = (raw: boolean): string => [...AGG_SUMS.map((c) => sumOf(c, raw)), ...METRICS.map((m) => sketchMerge(m, raw))].join(', ');
  /** The condition on `t` of a resolution's rows whose buckets overlap [from, to), less what retention has dropped. */
  const spanOf = (res: Resolution, from: number, to: number): Span => ({ from, sql: bucketRange(kept(res.retention, bucketOf(from, res)), to) });
  /**
   * [from, to) in stretches, each read from the resolution with the fewest rows (tiles()), one
   * statement per resolution: a day is the hours between its edges' minutes (and seconds) on both sides.
   */
  const tiled = (from: number, to: number): Array<{ res: Resolution; span: Span }> => {
    const byRes = new Map<Resolution, Span[]>();
    for (const t of tiles(retention, from, to, Date.now())) byRes.set(t.res, [...(byRes.get(t.res) ?? []), spanOf(t.res, t.from, t.to)]);
    return [...byRes].map(([res, spans]) => ({ res, span: { from: Math.min(...spans.map((s) => s.from)), sql: spans.length === 1 ? spans[0]!.sql : `(${spans.map((s) => `(${s.sql})`).join(' OR ')})` } }));
  };

  /**
   * The bins of a rollup's rows of `where` in `span`, summed per group (`group`: an expression, or
   * none) and, for the request metrics, per metric (see putBins). `bins.of`: the bins per endpoint
   * (bin_maps_*), a service's over its endpoints (bin_maps_service_*: `where` names the service
   * alone) or the loop's delay (loop_bins_*); `bins.metrics`: the request metrics wanted (all by
   * default). A span that starts before binMapsSince has the request metrics' bins of a database
   * from before in bins_* too (a key per row): read as well.
   */
  function binsOf(res: Resolution, where: string, span: Span, group: string | undefined, bins: BinsOf): Promise<Bins[]> {
    const g = group ?? "''";
    const range = `${where} AND ${span.sql}`;
    /** the bins of `table`, whose rows are keys (summed here per key) */
    const keyRows = (table: string, metric: string): Promise<Bins[]> =>
      ch.query<Bins>(
        `SELECT g, ${metric}groupArray(key) AS keys, groupArray(c) AS counts FROM (SELECT ${g} AS g, ${metric}key, sum(count) AS c FROM ${table}
           WHERE ${range} GROUP BY g, ${metric}key) GROUP BY g${metric === '' ? '' : ', metric'}`,
      );
    if (bins.of === 'loop') return keyRows(`loop_bins_${res.name}`, '');
    const metrics = bins.metrics ?? METRICS;
    const only = metrics.length < METRICS.length ? ` AND metric IN (${metrics.map((m) => METRICS.indexOf(m)).join(', ')})` : '';
    const maps = ch.query<Bins>(
      `SELECT g, metric, b.1 AS keys, b.2 AS counts FROM (SELECT ${g} AS g, metric, sumMap(binsMap.key, binsMap.count) AS b
         FROM bin_maps_${bins.of === 'service' ? 'service_' : ''}${res.name} WHERE ${range}${only} GROUP BY g, metric)`,
    );
    if (bucketOf(span.from, res) >= binMapsSince) return maps;
    return Promise.all([maps, keyRows(`bins_${res.name}`, 'metric, ')]).then((lists) => lists.flat());
  }

  /** Puts bins read by binsOf on `rows` (those of the same group: `key`, or none) as `q_<m>_bins`. */
  function putBins(rows: Row[], key: string | undefined, bins: Bins[]): Row[] {
    const byGroup = new Map(rows.map((r) => [String(key === undefined ? '' : r[key]), r]));
    for (const b of bins) {
      const row = byGroup.get(String(b.g));
      if (row === undefined) continue;
      const name = `q_${b.metric === undefined ? 'delay' : METRICS[b.metric]}_bins`;
      const [keys, counts] = (row[name] as [number[], number[]] | undefined) ?? [[], []];
      row[name] = [keys.concat(b.keys), counts.concat(b.counts)]; // (readSketch adds a key's counts)
    }
    return rows;
  }

  // ---- ingest ----

  const queue: Pending[] = [];
  let writing: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;

  function schedule(): void {
    if (writing !== null || timer !== null || queue.length === 0) return;
    timer = setTimeout(
      () => {
        timer = null;
        const group = queue.splice(0, MAX_GROUP);
        writing = writeGroup(group)
          .then(
            (results) =>
              group.forEach((p, i) => {
                const result = results[i]!;
                if (result instanceof Error) p.reject(result);
                else p.resolve(result);
              }),
            (err: unknown) => group.forEach((p) => p.reject(err)),
          )
          .finally(() => {
            writing = null;
            schedule();
          });
      },
      queue.length >= MAX_GROUP ? 0 : groupMs,
    );
  }

  /**
   * The rows of one batch, per table, each with its place among the batch's rows of that table
   * (`seq`); those `stored` says are in ClickHouse already (a batch being completed) are left out.
   */
  function rowsOf(batch: WireBatch, stored: (table: BatchedTable, seq: number) => boolean, parts: PartCounts): { rows: Record<BatchedTable, Row[]>; refused: number } {
    const rows: Record<BatchedTable, Row[]> = { agg_second: [], loop_second: [], long_tasks: [], traces: [], trace_index: [], calls: [], context_loss: [] };
    const id = batch.batchId;
    const add = (table: BatchedTable, seq: number, row: () => Row): void => {
      if (!stored(table, seq)) rows[table].push({ ...row(), batch: id, seq });
    };
    batch.intervals.forEach((iv, seq) =>
      add('agg_second', seq, () => {
        const row: Row = { service: batch.service, endpoint: iv.endpoint, t: secondsOf(iv.start), count: iv.count, errors: iv.errors, aborted: iv.aborted ?? 0 };
        for (const kind of EXTERNAL_KINDS) row[`ext_${kind}`] = iv.externalByKind?.[kind] ?? 0;
        for (const m of METRICS) Object.assign(row, sketchRow(m, iv[m]));
        return row;
      }),
    );
    const loop = batch.loop;
    if (loop !== undefined) {
      add('loop_second', 0, () => {
        const row: Row = { service: batch.service, instance: batch.instance, t: secondsOf(loop.start), ...sketchRow('delay', loop.delay), busyMs: loop.busyMs, idleMs: loop.idleMs };
        Object.assign(row, { cpuUser: loop.cpu.user, cpuSystem: loop.cpu.system, rss: loop.memory.rss, heapUsed: loop.memory.heapUsed, heapTotal: loop.memory.heapTotal }, agentSumsOf(loop));
        for (const k of GC_KINDS) Object.assign(row, { [`gc_${k}_count`]: 0, [`gc_${k}_ms`]: 0 });
        for (const [kind, g] of Object.entries(loop.gc)) {
          const k = gcKind(kind);
          row[`gc_${k}_count`] = (row[`gc_${k}_count`] as number) + g.count;
          row[`gc_${k}_ms`] = (row[`gc_${k}_ms`] as number) + g.ms;
        }
        return row;
      });
      loop.longTasks.forEach((lt, seq) =>
        add('long_tasks', seq, () => ({
          service: batch.service,
          instance: batch.instance,
          t: secondsOf(lt.at),
          at: lt.at,
          ms: lt.ms,
          endpoint: lt.endpoint ?? null,
          traceId: lt.traceId ?? null,
          function: lt.function,
          location: lt.location ?? null,
          compiledLocation: lt.compiledLocation ?? null,
          stack: JSON.stringify(lt.stack ?? []),
          blocked: JSON.stringify(lt.blocked),
        })),
      );
    }
    (batch.calls ?? []).forEach((c, seq) =>
      add('calls', seq, () => ({ service: batch.service, kind: c.kind, target: c.target, t: secondsOf(bucketOf(c.start, RESOLUTIONS[1]!)), count: c.count, errors: c.errors, ...sketchRow('duration', c.duration) })),
    );
    (batch.contextLoss ?? []).forEach((l, seq) =>
      add('context_loss', seq, () => ({ service: batch.service, module: l.module, site: l.site, function: l.function, t: secondsOf(bucketOf(l.start, RESOLUTIONS[1]!)), count: l.count, lostMs: l.lostMs })),
    );
    let refused = 0;
    batch.traces.forEach((tr, seq) => {
      if (stored('traces', seq) && stored('trace_index', seq)) return;
      const spanId = tr.spanId ?? '';
      const known = parts.get(tr.traceId) ?? { spans: new Set<string>() };
      parts.set(tr.traceId, known);
      if (known.spans.has(spanId)) return; // a part stored already by another batch (sent again)
      if (known.spans.size >= MAX_TRACE_PARTS) {
        refused++;
        return;
      }
      known.spans.add(spanId);
      const t = secondsOf(tr.start);
      add('traces', seq, () => ({
        traceId: tr.traceId,
        spanId,
        parentSpanId: tr.parentSpanId ?? null,
        service: tr.service,
        endpoint: tr.endpoint,
        t,
        start: tr.start,
        status: tr.status,
        error: tr.error ? 1 : 0,
        aborted: tr.aborted === true ? 1 : 0,
        response: tr.response,
        duration: tr.duration,
        cpu: tr.cpu,
        external: tr.external,
        blocking: tr.blocking,
        record: JSON.stringify(tr),
        instance: batch.instance,
      }));
      add('trace_index', seq, () => ({ traceId: tr.traceId, spanId, service: tr.service, t }));
    });
    return { rows, refused };
  }

  type PartCounts = Map<string, { spans: Set<string> }>;

  /** Writes a group of batches; resolves, per batch, whether it had been stored already, or why it must come again later. */
  async function writeGroup(group: Pending[]): Promise<Array<{ duplicate: boolean } | RetryLater>> {
    const firstOf = new Map<string, number>();
    group.forEach((p, i) => {
      if (!firstOf.has(p.batch.batchId)) firstOf.set(p.batch.batchId, i);
    });
    const ids = [...firstOf.keys()];
    const rows = await ch.query<{ batchId: string; state: number; begun: number }>(
      `SELECT batchId, max(state) AS state, toUInt32(min(t)) AS begun FROM batches WHERE batchId IN (${ids.map(literal).join(', ')}) GROUP BY batchId`,
    );
    const states = new Map(rows.map((r) => [r.batchId, r.state]));
    // begun by a collector a moment ago: its writes may still land
    const unsettled = new Set(rows.filter((r) => r.state === 1 && r.begun * 1000 > Date.now() - settleMs).map((r) => r.batchId));
    const todo = ids.filter((id) => states.get(id) !== 2 && !unsettled.has(id));
    // a batch begun and never finished: which of its rows are in ClickHouse already (an insert cut
    // short may have stored some rows of a table and not others)
    const begun = todo.filter((id) => states.get(id) === 1);
    const present = new Set<string>();
    const key = (batch: string, table: BatchedTable, seq: number): string => `${batch}\n${table}\n${seq}`;
    for (const table of begun.length > 0 ? BATCHED_TABLES : []) {
      for (const r of await ch.query<{ batch: string; seq: number }>(`SELECT batch, seq FROM ${table} WHERE batch IN (${begun.map(literal).join(', ')})`)) present.add(key(r.batch, table, r.seq));
    }
    if (todo.length > 0) {
      const now = secondsOf(Date.now());
      // the parts each trace already has, for the limit on a trace's parts (read while the batches are recorded as begun)
      // (not counting the parts of the batches being completed: rowsOf knows which of theirs are stored)
      const traceIds = [...new Set(todo.flatMap((id) => group[firstOf.get(id)!]!.batch.traces.map((t) => t.traceId)))];
      const others = begun.length > 0 ? ` AND batch NOT IN (${begun.map(literal).join(', ')})` : '';
      const [, stored] = await Promise.all([
        ch.insert('batches', todo.map((batchId) => ({ batchId, state: 1, t: now }))),
        traceIds.length > 0 ? ch.query<{ traceId: string; spanId: string }>(`SELECT traceId, spanId FROM trace_index WHERE traceId IN (${traceIds.map(literal).join(', ')})${others}`) : [],
      ]);
      const parts: PartCounts = new Map();
      for (const r of stored) {
        let e = parts.get(r.traceId);
        if (!e) parts.set(r.traceId, (e = { spans: new Set() }));
        e.spans.add(r.spanId);
      }
      const tables: Record<BatchedTable, Row[]> = { agg_second: [], loop_second: [], long_tasks: [], traces: [], trace_index: [], calls: [], context_loss: [] };
      const instances: Row[] = [];
      for (const id of todo) {
        const { batch } = group[firstOf.get(id)!]!;
        const { rows, refused } = rowsOf(batch, (table, seq) => present.has(key(id, table, seq)), parts);
        for (const table of BATCHED_TABLES) for (const r of rows[table]) tables[table].push(r);
        const { first, last } = batchSpan(batch);
        const { dropped } = batch;
        instances.push({
          service: batch.service,
          instance: batch.instance,
          t: secondsOf(last),
          first: Math.floor(first),
          last: Math.ceil(last),
          droppedBatches: dropped.batches,
          droppedTransactions: dropped.transactions,
          droppedTraces: dropped.traces,
          cutValues: dropped.cut ?? 0,
          refusedParts: refused,
          agent: batch.agent.name,
        });
      }
      await Promise.all([...BATCHED_TABLES.map((table) => ch.insert(table, tables[table])), ch.insert('instances_in', instances)]);
      await ch.insert('batches', todo.map((batchId) => ({ batchId, state: 2, t: now })));
    }
    return group.map((p, i) =>
      unsettled.has(p.batch.batchId)
        ? new RetryLater(`batch ${p.batch.batchId} is being written by another collector (or was, when it stopped): send it again in ${Math.ceil(settleMs / 1000)} s`)
        : { duplicate: firstOf.get(p.batch.batchId) !== i || states.get(p.batch.batchId) === 2 },
    );
  }

  // ---- queries ----

  /** The processes seen in [from, to), with `columns` of instances (which name f and l, its first and last time). */
  const instancesIn = <T>(columns: string, { from, to }: Range): Promise<T[]> =>
    ch.query<T>(`SELECT service, instance, ${columns} FROM instances GROUP BY service, instance HAVING f < ${literal(Math.ceil(to))} AND l >= ${literal(Math.floor(kept('hours', from)))}`);

  async function services({ from, to }: Range): Promise<ServiceSummary[]> {
    const rows = await instancesIn<{ service: string; f: number; l: number; b: number; tx: number; tr: number; p: number; c: number; agent: string }>(
      `minMerge(first) AS f, maxMerge(last) AS l, maxMerge(droppedBatches) AS b, maxMerge(droppedTransactions) AS tx,
         maxMerge(droppedTraces) AS tr, sumMerge(refusedParts) AS p, maxMerge(cutValues) AS c, anyLastMerge(agent) AS agent`,
      { from, to },
    );
    // what the agents said they cost, per service, over the range's loop rows
    const costs = new Map<string, AgentSums>();
    const perTile = tiled(from, to).map(({ res, span }) => {
      const { table, raw } = loopTable(res);
      const columns = [...AGENT_SUMS.map((c) => sumOf(c, raw)), ...AGENT_MAXES.map((c) => maxOf(c, raw))].join(', ');
      return ch.query<Row & { service: string }>(`SELECT service, ${columns} FROM ${table} WHERE ${span.sql} GROUP BY service`);
    });
    for (const row of (await Promise.all(perTile)).flat()) {
      const cost = costs.get(row.service) ?? emptyAgentSums();
      addAgentSums(cost, Object.fromEntries([...AGENT_SUMS, ...AGENT_MAXES].map((c) => [c, Number(row[`q_${c}`])])) as AgentSums);
      costs.set(row.service, cost);
    }
    const byService = new Map<string, ServiceSummary & { agentSet: Set<string> }>();
    for (const r of rows) {
      let s = byService.get(r.service);
      if (!s) {
        const agent = agentCostOf(costs.get(r.service) ?? emptyAgentSums());
        byService.set(r.service, (s = { service: r.service, firstSeen: r.f, lastSeen: 0, instances: 0, dropped: { batches: 0, transactions: 0, traces: 0, parts: 0, cut: 0 }, agents: [], agentSet: new Set(), agent }));
      }
      s.firstSeen = Math.min(s.firstSeen, r.f);
      s.lastSeen = Math.max(s.lastSeen, r.l);
      s.instances++;
      s.dropped.batches += r.b;
      s.dropped.transactions += r.tx;
      s.dropped.traces += r.tr;
      s.dropped.parts += r.p;
      s.dropped.cut += r.c;
      s.agentSet.add(r.agent);
    }
    return [...byService.values()]
      .sort((a, b) => (a.service < b.service ? -1 : 1))
      .map(({ agentSet, ...s }) => ({ ...s, agents: [...agentSet].sort() }));
  }

  /**
   * The aggregates of `where` in `span` of one resolution, merged by ClickHouse per group (`group`:
   * `sql` selects the column `name`; none: one row), as the columns of aggregateColumns(), without
   * a rollup's bins (of the rows as inserted, `raw`: the columns wanted, all by default). A span
   * that starts before aggArraysSince takes in the rows of a database from before the arrays too
   * (LEGACY_AGG), merged here with the others of their group.
   */
  async function aggregateRows(res: Resolution, where: string, span: Span, group?: { name: string; sql: string }, raw = aggregateColumns(true)): Promise<Row[]> {
    const rows = (table: string, columns: string): Promise<Row[]> =>
      ch.query<Row>(`SELECT ${group === undefined ? '' : `${group.sql}, `}${columns} FROM ${table} WHERE ${where} AND ${span.sql}${group === undefined ? '' : ` GROUP BY ${group.name}`}`);
    if (res.name === 'second') return rows('agg_second', raw);
    const arrays = rows(`agg_arrays_${res.name}`, ROLLUP_MERGE).then((list) => list.map(fromArrays));
    if (bucketOf(span.from, res) >= aggArraysSince) return arrays;
    const [after, before] = await Promise.all([arrays, rows(`agg_${res.name}`, aggregateColumns(false))]);
    return mergeRows([...after, ...before], group?.name);
  }

  /**
   * Aggregates of one resolution over [from, to), merged per `groupBy` (none: one row), with their
   * bins. `serviceWide`: `where` names a service alone, and no group is an endpoint (bin_maps_service_*).
   */
  async function aggregates(res: Resolution, where: string, span: Span, groupBy: string | undefined, serviceWide: boolean): Promise<Row[]> {
    const [rows, bins] = await Promise.all([
      aggregateRows(res, where, span, groupBy === undefined ? undefined : { name: groupBy, sql: groupBy }),
      res.name === 'second' ? [] : binsOf(res, where, span, groupBy, { of: serviceWide ? 'service' : 'endpoints' }),
    ]);
    return putBins(rows, groupBy, bins);
  }

  /** The aggregates over [from, to), each stretch read from the resolution with the fewest rows (tiles()), merged per `groupBy` (none: key ''). */
  async function totalsOver(where: string, from: number, to: number, groupBy?: string, serviceWide = false): Promise<Map<string, Totals>> {
    const parts = await Promise.all(tiled(from, to).map(({ res, span }) => aggregates(res, where, span, groupBy, serviceWide)));
    return foldTotals(parts.flat(), (row) => (groupBy === undefined ? '' : String(row[groupBy])), readTotals);
  }

  /** The long tasks that match `where` grouped by culprit, with their timelines over the query's range (culprits.ts). */
  async function culpritGroupsOf(where: string, query: LoopQuery): Promise<LongTaskGroup[]> {
    // a task's blocked list is JSON.stringify's [{ endpoint, count, ms }]: a key in quotes followed by
    // a colon is never inside a string (whose quotes are escaped), so the numbers are found by pattern
    const blocked = (field: string, type: string): string => `sum(arraySum(arrayMap(x -> to${type}(x), extractAll(blocked, ${literal(`"${field}":([-+.eE0-9]+)`)}))))`;
    const [rows, parts] = await Promise.all([
      ch.query<CulpritRow>(
        `SELECT function, location, max(compiledLocation) AS compiledLocation, count() AS count, sum(ms) AS totalMs, max(ms) AS maxMs, groupUniqArray(endpoint) AS endpoints,
           ${blocked('count', 'UInt64')} AS blockedCount, ${blocked('ms', 'Float64')} AS blockedMs FROM long_tasks WHERE ${where} GROUP BY function, location`,
      ),
      ch.query<CulpritPart>(
        `SELECT function, location, toInt64(floor((at - ${literal(query.from)}) * ${TIMELINE_PARTS} / ${literal(query.to - query.from)})) AS part, sum(ms) AS ms
           FROM long_tasks WHERE ${where} GROUP BY function, location, part`,
      ),
    ]);
    return culpritGroups(rows, parts, query.limit);
  }

  const byService = (service: string, endpoint?: string): string => `service = ${literal(service)}${endpoint === undefined ? '' : ` AND endpoint = ${literal(endpoint)}`}`;

  return {
    kind: 'clickhouse',
    ...(existing!.n === 0 ? { note: `database ${target.database} is new: created now` } : {}),

    ingest(batch, receivedAt) {
      return new Promise((resolve, reject) => {
        queue.push({ batch, receivedAt, resolve, reject });
        schedule();
      });
    },

    services,

    async endpoints(service, { from, to }) {
      const totals = await totalsOver(byService(service), from, to, 'endpoint');
      const list: EndpointSummary[] = [...totals].map(([endpoint, t]) => ({ endpoint, ...toSummary(t) }));
      return list.sort((a, b) => b.count - a.count || (a.endpoint < b.endpoint ? -1 : 1));
    },

    async views(endpoint, { from, to }) {
      // (the services' agents only: not what services() adds up besides)
      const [totals, seen] = await Promise.all([
        totalsOver(`endpoint = ${literal(endpoint)}`, from, to, 'service'),
        instancesIn<{ service: string; agent: string }>('minMerge(first) AS f, maxMerge(last) AS l, anyLastMerge(agent) AS agent', { from, to }),
      ]);
      const agents = new Map<string, Set<string>>();
      for (const { service, agent } of seen) agents.set(service, (agents.get(service) ?? new Set()).add(agent));
      const list: EndpointView[] = [...totals].map(([service, t]) => ({ service, agents: [...(agents.get(service) ?? [])].sort(), endpoint, ...toSummary(t) }));
      return list.sort((a, b) => b.count - a.count || (a.service < b.service ? -1 : 1));
    },

    async summary(service, endpoint, { from, to }): Promise<RangeTotals> {
      const { count, errors, aborted, sketches } = (await totalsOver(byService(service, endpoint), from, to, undefined, endpoint === undefined)).get('') ?? emptyWithKinds();
      return { count, errors, aborted, sketches };
    },

    async timeseries(query: TimeseriesQuery): Promise<TimeseriesResult> {
      const res = chooseResolution(retention, query.from, Date.now(), query.step);
      const { step, t0, points } = seriesGrid(query, res);
      const metric = query.metric;
      const index = `intDiv(toInt64(toUInt32(t)) * 1000 - ${t0}, ${step})`;
      const span = spanOf(res, query.from, query.to);
      if (isLoopSeries(metric)) {
        // the loop's rows of the range's buckets, merged per point by ClickHouse
        const { table, raw } = loopTable(res);
        const gc = GC_KINDS.map((k) => sumOf(`gc_${k}_ms`, raw));
        const where = `service = ${literal(query.service)}`;
        const [rows, bins] = await Promise.all([
          ch.query<Row & { i: number; rows: number }>(
            `SELECT ${index} AS i, count() AS rows, ${sketchMerge('delay', raw)}, ${sumOf('busyMs', raw)}, ${sumOf('idleMs', raw)}, ${gc.join(', ')} FROM ${table}
               WHERE ${where} AND ${span.sql} GROUP BY i`,
          ),
          raw ? [] : binsOf(res, where, span, index, { of: 'loop' }),
        ]);
        putBins(rows, 'i', bins);
        const acc = Array.from({ length: points }, emptyLoopPoint);
        for (const r of rows) {
          const p = acc[r.i];
          if (p === undefined) continue;
          Object.assign(p, { rows: r.rows, delay: readSketch(r, 'delay'), busyMs: r.q_busyMs as number, idleMs: r.q_idleMs as number });
          p.gcMs = GC_KINDS.reduce((n, k) => n + (r[`q_gc_${k}_ms`] as number), 0);
        }
        return { metric, q: query.q, step, points: acc.map((p, i): [number, number | null] => [t0 + i * step, loopPointValue(metric, p, query.q, step)]) };
      }
      const column = metric === 'throughput' ? 'count' : metric === 'errors' || metric === 'aborted' ? metric : undefined;
      const raw = res.name === 'second';
      const where = byService(query.service, query.endpoint);
      const [rows, bins] = await Promise.all([
        aggregateRows(res, where, span, { name: 'i', sql: `${index} AS i` }, column !== undefined ? sumOf(column, true) : sketchMerge(metric, true)) as Promise<Array<Row & { i: number }>>,
        raw || column !== undefined ? [] : binsOf(res, where, span, index, { of: query.endpoint === undefined ? 'service' : 'endpoints', metrics: [metric as MetricName] }),
      ]);
      putBins(rows, 'i', bins);
      const values = new Array<number | null>(points).fill(null);
      for (const r of rows) {
        if (r.i < 0 || r.i >= points) continue;
        if (column !== undefined) values[r.i] = (r[`q_${column}`] as number) / (step / 1000);
        else {
          const s = readSketch(r, metric);
          values[r.i] = s.n > 0 ? round(quantile(fromWire(s), query.q)) : null; // n 0: unknown (seen from outside)
        }
      }
      return { metric, q: query.q, step, points: values.map((v, i): [number, number | null] => [t0 + i * step, v]) };
    },

    async traces(query: TracesQuery): Promise<TraceSummary[]> {
      const from = kept('traces', query.from);
      const rows = await ch.query<Omit<TraceSummary, 'aborted'> & { aborted: number }>(
        `SELECT traceId, endpoint, start, status, aborted, response, duration, cpu, external, blocking FROM traces
         WHERE ${byService(query.service, query.endpoint)} AND ${timeRange(from, query.to)} AND start >= ${literal(from)} AND start < ${literal(query.to)}
         ORDER BY ${query.sort === 'slowest' ? `${query.by === 'response' ? 'response' : 'duration'} DESC, start DESC` : 'start DESC'} LIMIT ${literal(query.limit)}`,
      );
      return rows.map((t) => ({ ...t, aborted: t.aborted === 1 }));
    },

    async traceRecords({ service, endpoint, from, to, limit, atRandom }: RecordsQuery): Promise<TraceRecord[]> {
      const since = kept('traces', from);
      const rows = await ch.query<{ record: string }>(
        `SELECT record FROM traces WHERE ${byService(service, endpoint)} AND ${timeRange(since, to)} AND start >= ${literal(since)} AND start < ${literal(to)}` +
          `${atRandom ? " AND visitParamExtractBool(record, 'sampledAtRandom') = 1" : ''} ORDER BY start DESC LIMIT ${literal(limit)}`,
      );
      return rows.map((r) => JSON.parse(r.record) as TraceRecord);
    },

    async loop(query: LoopQuery): Promise<LoopSummary> {
      const where = `service = ${literal(query.service)}`;
      const from = kept('traces', query.from);
      // the long tasks of the range, of one culprit if the query names it
      const culprit =
        (query.function === undefined ? '' : ` AND function = ${literal(query.function)}`) +
        (query.location === undefined ? '' : query.location === null ? ' AND location IS NULL' : ` AND location = ${literal(query.location)}`);
      const tasksWhere = `${where} AND ${timeRange(from, query.to)} AND at >= ${literal(from)} AND at < ${literal(query.to)}${culprit}`;
      const columns = 'at, ms, endpoint, traceId, function, location, compiledLocation, stack, blocked, instance';
      // each stretch of the range from the resolution with the fewest rows (tiles()), merged here
      const perTile = tiled(query.from, query.to).map(async ({ res, span }) => {
        const { table, raw } = loopTable(res);
        const columns = [sketchMerge('delay', raw), ...LOOP_SUMS.map((c) => sumOf(c, raw)), ...LOOP_MAXES.map((c) => maxOf(c, raw))].join(', ');
        const [rows, bins] = await Promise.all([ch.query<Row>(`SELECT ${columns} FROM ${table} WHERE ${where} AND ${span.sql}`), raw ? [] : binsOf(res, where, span, undefined, { of: 'loop' })]);
        return putBins(rows, undefined, bins);
      });
      const [rows, tasks, [count], groups] = await Promise.all([
        Promise.all(perTile).then((lists) => lists.flat()),
        ch.query<Omit<LongTaskRow, 'stack' | 'blocked'> & { stack: string; blocked: string }>(
          `SELECT ${columns} FROM long_tasks WHERE ${tasksWhere} ORDER BY ${query.sort === 'worst' ? 'ms DESC, at DESC' : 'at DESC'} LIMIT ${literal(query.limit)}`,
        ),
        ch.query<{ n: number }>(`SELECT count() AS n FROM long_tasks WHERE ${tasksWhere}`),
        query.group === 'culprit' ? culpritGroupsOf(tasksWhere, query) : undefined,
      ]);
      const delay = emptyWire();
      const r: Record<string, number> = {};
      for (const row of rows) {
        mergeWire(delay, readSketch(row, 'delay'));
        for (const c of LOOP_SUMS) r[`q_${c}`] = (r[`q_${c}`] ?? 0) + (row[`q_${c}`] as number);
        for (const c of LOOP_MAXES) r[`q_${c}`] = Math.max(r[`q_${c}`] ?? 0, row[`q_${c}`] as number);
      }
      const gc: GcTotals = {};
      for (const k of GC_KINDS) {
        const n = r[`q_gc_${k}_count`]!;
        if (n > 0) addGc(gc, { [k]: { count: n, ms: r[`q_gc_${k}_ms`]! } });
      }
      const busy = r.q_busyMs! + r.q_idleMs!;
      return {
        delay: summarize(fromWire(delay)),
        utilization: utilizationOf(r.q_busyMs!, r.q_idleMs!),
        gcPauseMs: round(Object.values(gc).reduce((sum, g) => sum + g.ms, 0)),
        gc,
        cpu: { user: round(r.q_cpuUser!), system: round(r.q_cpuSystem!) },
        memory: { rss: r.q_rss!, heapUsed: r.q_heapUsed!, heapTotal: r.q_heapTotal! },
        longTasks: tasks.map((t) => ({ ...t, stack: JSON.parse(t.stack) as string[], blocked: JSON.parse(t.blocked) as LongTaskRow['blocked'] })),
        longTaskCount: count!.n,
        loopMs: round(busy),
        ...(groups !== undefined ? { groups } : {}),
      };
    },

    async traceParts(traceId: string) {
      const id = literal(traceId);
      const rows = await ch.query<{ record: string; instance: string | null }>(
        `SELECT record, instance FROM traces WHERE (service, t) IN (SELECT service, t FROM trace_index WHERE traceId = ${id}) AND traceId = ${id}
         ORDER BY start LIMIT 1 BY spanId`,
      );
      return rows.map((r) => ({ record: JSON.parse(r.record) as TraceRecord, instance: r.instance }));
    },

    async calls({ from, to }: Range): Promise<CallTotals[]> {
      // the minutes of the range (calls are stored per minute), its whole hours from calls_hour (those
      // from callsHourSince on), the rest from the minutes
      const [minute, hour] = [RESOLUTIONS[1]!, RESOLUTIONS[2]!];
      const lo = kept('minutes', bucketOf(from, minute));
      const hi = Math.ceil(to / minute.ms) * minute.ms;
      const h0 = Math.ceil(Math.max(lo, callsHourSince) / hour.ms) * hour.ms;
      const h1 = Math.floor(hi / hour.ms) * hour.ms;
      const minutes = h0 < h1 ? `((${bucketRange(lo, h0)}) OR (${bucketRange(h1, hi)}))` : bucketRange(lo, hi);
      const key = 'service, kind, target';
      const [rows, hours, bins] = await Promise.all([
        ch.query<Row>(`SELECT ${key}, sum(count) AS q_count, sum(errors) AS q_errors, ${sketchMerge('duration', true)} FROM calls WHERE ${minutes} GROUP BY ${key}`),
        h0 < h1 ? ch.query<Row>(`SELECT ${key}, sumMerge(count) AS q_count, sumMerge(errors) AS q_errors, ${sketchMerge('duration', false)} FROM calls_hour WHERE ${bucketRange(h0, h1)} GROUP BY ${key}`) : [],
        h0 < h1
          ? ch.query<{ service: string; kind: string; target: string; keys: number[]; counts: number[] }>(
              `SELECT ${key}, b.1 AS keys, b.2 AS counts FROM (SELECT ${key}, sumMap(binsMap.key, binsMap.count) AS b FROM call_bin_maps_hour WHERE ${bucketRange(h0, h1)} GROUP BY ${key})`,
          )
          : [],
      ]);
      const id = (r: Row): string => JSON.stringify([r.service, r.kind, r.target]);
      const binsOfHours = new Map(bins.map((b) => [id(b), [b.keys, b.counts]]));
      for (const r of hours) r.q_duration_bins = binsOfHours.get(id(r)) ?? [[], []];
      const totals = new Map<string, CallTotals>();
      for (const r of [...rows, ...hours]) {
        const c = { service: r.service as string, kind: r.kind as string, target: r.target as string, count: r.q_count as number, errors: r.q_errors as number, duration: readSketch(r, 'duration') };
        const known = totals.get(id(r));
        if (known === undefined) totals.set(id(r), c);
        else {
          known.count += c.count;
          known.errors += c.errors;
          mergeWire(known.duration, c.duration);
        }
      }
      return [...totals.values()];
    },

    async contextLoss(service: string, { from, to }: Range): Promise<ContextLossSite[]> {
      const rows = await ch.query<ContextLossSite>(
        `SELECT module, site, max(function) AS function, toUInt64(sum(count)) AS count, round(sum(lostMs), 3) AS lostMs FROM context_loss
         WHERE service = ${literal(service)} AND ${bucketRange(kept('minutes', bucketOf(from, RESOLUTIONS[1]!)), to)} GROUP BY module, site ORDER BY lostMs DESC, count DESC`,
      );
      return rows.map((r) => ({ ...r, count: Number(r.count), lostMs: Number(r.lostMs) }));
    },

    async learnTarget(target: string, service: string, now: number) {
      await ch.insert('call_targets', [{ target, service, seen: now, t: secondsOf(now) }]);
    },

    async targets(since: number) {
      since = kept('traces', since);
      const rows = await ch.query<{ target: string; service: string }>(
        `SELECT target, argMax(service, seen) AS service FROM call_targets WHERE t >= toDateTime(${secondsOf(since)}) GROUP BY target HAVING max(seen) >= ${literal(since)}`,
      );
      return new Map(rows.map((r) => [r.target, r.service]));
    },

    async loopWork(query: LoopWorkQuery): Promise<LoopWork> {
      const since = kept('traces', query.from - query.lookback);
      const scope = `service = ${literal(query.service)}${query.instance === null ? '' : ` AND instance = ${literal(query.instance)}`}`;
      const [longTasks, rows] = await Promise.all([
        ch.query<LoopWork['longTasks'][number]>(
          `SELECT at, ms, endpoint, traceId, function, location, instance FROM long_tasks
           WHERE ${scope} AND ${timeRange(since, query.to)} AND at >= ${literal(since)} AND at < ${literal(query.to)} AND at + ms > ${literal(query.from)} ORDER BY at`,
        ),
        ch.query<{ traceId: string; endpoint: string; start: number; instance: string | null; slices: string }>(
          `SELECT traceId, endpoint, start, instance, visitParamExtractRaw(record, 'slices') AS slices FROM traces
           WHERE ${scope} AND ${timeRange(since, query.to)} AND start >= ${literal(since)} AND start < ${literal(query.to)} AND start + duration > ${literal(query.from)}
             AND visitParamHas(record, 'slices')`,
        ),
      ]);
      return { longTasks, traces: sliceTimes(rows) };
    },

    async check() {
      // (with shards, every one: an insert needs them all)
      await Promise.all(servers.map((server) => server.query('SELECT 1 AS one')));
    },

    async lastAlertRound() {
      const [row] = await ch.query<AlertRound>('SELECT holder, at, state FROM alert_rounds ORDER BY at DESC LIMIT 1');
      return row ?? null;
    },

    async saveAlertRound(round: AlertRound) {
      await ch.insert('alert_rounds', [{ ...round, t: secondsOf(round.at) }]);
    },

    async prune(now: number) {
      const keep: Record<string, number> = {
        agg_second: retention.seconds,
        loop_second: retention.seconds,
        agg_arrays_minute: retention.minutes,
        bin_maps_minute: retention.minutes,
        bin_maps_service_minute: retention.minutes,
        loop_minute: retention.minutes,
        loop_bins_minute: retention.minutes,
        agg_arrays_hour: retention.hours,
        bin_maps_hour: retention.hours,
        bin_maps_service_hour: retention.hours,
        loop_hour: retention.hours,
        loop_bins_hour: retention.hours,
        // (a database from before bin_maps_*, and from before agg_arrays_*)
        bins_minute: retention.minutes,
        bins_hour: retention.hours,
        agg_minute: retention.minutes,
        agg_hour: retention.hours,
        long_tasks: retention.traces,
        traces: retention.traces,
        trace_index: retention.traces,
        calls: retention.minutes,
        calls_hour: retention.minutes,
        call_bin_maps_hour: retention.minutes,
        context_loss: retention.minutes,
        call_targets: retention.traces,
        batches: retention.batches,
        alert_rounds: retention.batches,
      };
      // whole days older than the retention (the day the cutoff falls in is kept), on every shard
      const drop = async (server: ClickHouseClient, table: string, before: string): Promise<void> => {
        const local = localTable(table, sharded);
        const parts = await server.query<{ partition: string }>(
          `SELECT DISTINCT partition FROM system.parts WHERE database = ${literal(target.database)} AND table = ${literal(local)} AND active AND toUInt32(partition) < ${before}`,
        );
        for (const { partition } of parts) await server.exec(`ALTER TABLE ${local} DROP PARTITION ${literal(Number(partition))}`);
      };
      for (const server of servers) {
        for (const [table, ms] of Object.entries(keep)) await drop(server, table, `toYYYYMMDD(toDateTime(${secondsOf(now - ms)}))`);
        // instances by month: a month that ended before the cutoff
        await drop(server, 'instances', `toYYYYMM(toDateTime(${secondsOf(now - retention.hours)}))`);
      }
    },

    async close() {
      // every batch handed to ingest is written (or fails) before close resolves
      const busy = (): boolean => writing !== null || queue.length > 0 || timer !== null;
      while (busy()) await (writing ?? new Promise((r) => setTimeout(r, groupMs)));
    },
  };
}

export { parseClickHouseUrl } from './client.js';
