/**
 * The ClickHouse schema: SQL that runs on 18.16 (Debian's) and on 24.x/25.x alike.
 *
 * A sketch is stored as columns the server can merge: n, sum, min, max and zero, and its bins as
 * two arrays (keys and counts) that `sumMap` adds key by key, which is exactly how sketches merge
 * (protocol/sketch.ts). So a query over many rows comes back from ClickHouse as one merged sketch
 * per group, and the rollups are materialized views that keep merge states
 * (AggregatingMergeTree): each interval row written at second resolution is merged into its
 * minute and its hour by the server as it is inserted. A rollup's bins are not merge states, which
 * ClickHouse merges slowly: the request metrics' are a map per endpoint (or service), bucket and
 * metric (bin_maps_*: a Nested column that a SummingMergeTree adds key by key as it merges parts,
 * and `sumMap` adds in a query), the loop delay's a row per key (loop_bins_*).
 *
 * Every table is partitioned by day (the monthly instance rollup by month), and retention drops
 * whole partitions. Rows carry the id of the batch they came in (`batch`) and their place among its
 * rows of the table (`seq`), so that a batch whose insert was cut short, even in the middle of a
 * table's rows, can be completed without counting anything twice (see index.ts).
 */
import { EXTERNAL_KINDS, METRICS } from '@loopscope/protocol';
import { AGENT_MAXES, AGENT_SUMS, GC_KINDS } from '../totals.js';

/** A sketch's columns in a row as inserted. */
const sketchColumns = (m: string): string =>
  `${m}_n UInt64, ${m}_sum Float64, ${m}_min Float64, ${m}_max Float64, ${m}_zero UInt64, ${m}_keys Array(Int32), ${m}_counts Array(UInt64)`;
/** A sketch's merge states in a rollup (its bins are rows of bins_* and loop_bins_*). */
const sketchStates = (m: string): string =>
  `${m}_n AggregateFunction(sum, UInt64), ${m}_sum AggregateFunction(sum, Float64), ${m}_min AggregateFunction(min, Float64), ` +
  `${m}_max AggregateFunction(max, Float64), ${m}_zero AggregateFunction(sum, UInt64)`;
/** The states of a sketch's columns, for a materialized view over inserted rows. */
const sketchToState = (m: string): string =>
  `sumState(${m}_n) AS ${m}_n, sumState(${m}_sum) AS ${m}_sum, minState(${m}_min) AS ${m}_min, maxState(${m}_max) AS ${m}_max, sumState(${m}_zero) AS ${m}_zero`;

/**
 * Reads a merged sketch back as `q_<m>_*`, from inserted rows (`raw`: its bins too, as
 * `q_<m>_bins`) or from a rollup's states (whose bins are rows of bins_* or loop_bins_*, read apart).
 */
export function sketchMerge(m: string, raw: boolean): string {
  return raw
    ? `sum(${m}_n) AS q_${m}_n, sum(${m}_sum) AS q_${m}_sum, min(${m}_min) AS q_${m}_min, max(${m}_max) AS q_${m}_max, sum(${m}_zero) AS q_${m}_zero, sumMap(${m}_keys, ${m}_counts) AS q_${m}_bins`
    : `sumMerge(${m}_n) AS q_${m}_n, sumMerge(${m}_sum) AS q_${m}_sum, minMerge(${m}_min) AS q_${m}_min, maxMerge(${m}_max) AS q_${m}_max, sumMerge(${m}_zero) AS q_${m}_zero`;
}
/** A sum, from inserted rows or a rollup's states, read back as `q_<c>`. */
export const sumOf = (c: string, raw: boolean): string => `${raw ? 'sum' : 'sumMerge'}(${c}) AS q_${c}`;
export const maxOf = (c: string, raw: boolean): string => `${raw ? 'max' : 'maxMerge'}(${c}) AS q_${c}`;

const AGG_COUNTS = ['count', 'errors', 'aborted'];
const externalColumns = EXTERNAL_KINDS.map((k) => `ext_${k}`);
const LOOP_SUMS = ['busyMs', 'idleMs', 'cpuUser', 'cpuSystem', ...GC_KINDS.flatMap((k) => [`gc_${k}_count`, `gc_${k}_ms`]), ...AGENT_SUMS];
// (the agent's own cost came later: a database from before gains its columns, ADDED_COLUMNS)
const LOOP_MAXES = ['rss', 'heapUsed', 'heapTotal', ...AGENT_MAXES];

/** The counted columns of an aggregate row, and its sums of external time per kind. */
export const AGG_SUMS = [...AGG_COUNTS, ...externalColumns];
export { LOOP_SUMS, LOOP_MAXES };

/**
 * A rollup row of the request metrics (agg_arrays_*) holds its values in three arrays, each one
 * merge state (sumForEach, minForEach, maxForEach), where the rollups before held a state per column
 * (39): ClickHouse makes a state for every row and state column it reads, and 18.16 spent ~20 ms per
 * column on an endpoint's rows in 100 services (docs/clickhouse.md). The arrays' entries, in order:
 * the columns summed, those of which the least is kept, those of which the most. A value added later
 * goes at the end of its array.
 */
export const ROLLUP_SUMS = [...AGG_SUMS, ...METRICS.flatMap((m) => [`${m}_n`, `${m}_sum`, `${m}_zero`])];
export const ROLLUP_MINS = METRICS.map((m) => `${m}_min`);
export const ROLLUP_MAXES = METRICS.map((m) => `${m}_max`);
/** A rollup's arrays of merge states merged, as q_sums, q_mins and q_maxes (index.ts reads them back as the columns'). */
export const ROLLUP_MERGE = 'sumForEachMerge(sums) AS q_sums, minForEachMerge(mins) AS q_mins, maxForEachMerge(maxes) AS q_maxes';

/** Rollups of the second-resolution tables: name suffix and bucket length in seconds. */
export const ROLLUPS = [
  { name: 'minute', seconds: 60 },
  { name: 'hour', seconds: 3600 },
] as const;

/** A bucket start of `seconds` from a DateTime, the same in every server time zone. */
const bucket = (seconds: number): string => `toDateTime(intDiv(toUInt32(t), ${seconds}) * ${seconds})`;

const PARTITION = 'PARTITION BY toYYYYMMDD(t)';

/** Per process, the largest value seen of each (its sender's counters only grow). */
const INSTANCE_MAXES = ['last', 'droppedBatches', 'droppedTransactions', 'droppedTraces', 'cutValues'];

/**
 * Every table, by the name the queries use, with the expression that picks its shard when the
 * data is spread over a cluster's shards (docs/clickhouse.md).
 */
const TABLES: Record<string, string> = {
  ...Object.fromEntries(['agg_second', 'loop_second', 'long_tasks', 'traces', 'calls', 'context_loss', 'instances_in', 'instances'].map((t) => [t, 'cityHash64(service)'])),
  ...Object.fromEntries(ROLLUPS.flatMap(({ name }) => [`agg_arrays_${name}`, `bin_maps_${name}`, `bin_maps_service_${name}`, `loop_${name}`, `loop_bins_${name}`]).map((t) => [t, 'cityHash64(service)'])),
  calls_hour: 'cityHash64(service)',
  call_bin_maps_hour: 'cityHash64(service)',
  trace_index: 'cityHash64(traceId)',
  call_targets: 'cityHash64(target)',
  alert_rounds: 'rand()',
  batches: 'cityHash64(batchId)',
};
/** The table that holds a table's rows: itself, or on a sharded layout the shard's local table under it. */
export const localTable = (table: string, sharded: boolean): string => (sharded ? `${table}_local` : table);

/** Every statement that creates the schema, in order; each may be run again. */
export function schemaStatements(cluster?: { name: string; database: string }): string[] {
  const statements: string[] = [];
  /** the table that holds the rows: on each shard, the local table under the Distributed one */
  const T = (table: string): string => localTable(table, cluster !== undefined);
  /** the request metrics' bins of inserted aggregate rows as a map per bucket and metric (per endpoint too, or not) */
  const binMaps = (seconds: number, perEndpoint: boolean): string =>
    `SELECT service, ${perEndpoint ? 'endpoint, ' : ''}${bucket(seconds)} AS t, toUInt8(bin_metric) AS metric, ` +
    `sumMap(bin_keys, bin_counts).1 AS \`binsMap.key\`, sumMap(bin_keys, bin_counts).2 AS \`binsMap.count\` FROM ${T('agg_second')} ` +
    `ARRAY JOIN [${METRICS.map((_, i) => i).join(', ')}] AS bin_metric, [${METRICS.map((m) => `${m}_keys`).join(', ')}] AS bin_keys, [${METRICS.map((m) => `${m}_counts`).join(', ')}] AS bin_counts ` +
    `GROUP BY service, ${perEndpoint ? 'endpoint, ' : ''}t, metric`;
  const aggColumns = `service String, endpoint String, t DateTime, ${AGG_COUNTS.map((c) => `${c} UInt64`).join(', ')}, ${externalColumns.map((c) => `${c} Float64`).join(', ')}, ${METRICS.map(sketchColumns).join(', ')}`;
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('agg_second')} (${aggColumns}, batch String, seq UInt32) ENGINE = MergeTree ${PARTITION} ORDER BY (service, endpoint, t)`);
  const loopColumns = `service String, instance String, t DateTime, ${sketchColumns('delay')}, ${LOOP_SUMS.map((c) => `${c} ${c.endsWith('_count') ? 'UInt64' : 'Float64'}`).join(', ')}, ${LOOP_MAXES.map((c) => `${c} UInt64`).join(', ')}`;
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('loop_second')} (${loopColumns}, batch String, seq UInt32) ENGINE = MergeTree ${PARTITION} ORDER BY (service, t)`);
  for (const { name, seconds } of ROLLUPS) {
    // the three arrays of merge states (ROLLUP_SUMS); granules of 128 rows: a query reads an
    // endpoint's few rows in each service it looks into, and ClickHouse makes the states of whole
    // granules (the minute states of an endpoint in every service at 100 services: 0.75-0.85 s with
    // 1 024-row granules, 0.40-0.50 s with 128, on 18.16, a state per column)
    const arrays = 'sums AggregateFunction(sumForEach, Array(Float64)), mins AggregateFunction(minForEach, Array(Float64)), maxes AggregateFunction(maxForEach, Array(Float64))';
    statements.push(
      `CREATE TABLE IF NOT EXISTS ${T(`agg_arrays_${name}`)} (service String, endpoint String, t DateTime, ${arrays}) ENGINE = AggregatingMergeTree ${PARTITION} ORDER BY (service, endpoint, t) SETTINGS index_granularity = 128`,
    );
    statements.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS agg_arrays_${name}_mv TO ${T(`agg_arrays_${name}`)} AS SELECT service, endpoint, ${bucket(seconds)} AS t, ` +
        `sumForEachState([${ROLLUP_SUMS.map((c) => `toFloat64(${c})`).join(', ')}]) AS sums, minForEachState([${ROLLUP_MINS.join(', ')}]) AS mins, maxForEachState([${ROLLUP_MAXES.join(', ')}]) AS maxes ` +
        `FROM ${T('agg_second')} GROUP BY service, endpoint, t`,
    );
    // the request metrics' bins, a map per metric (one row where there were ~200 rows of a key each:
    // docs/clickhouse.md), per endpoint and summed over a service's endpoints, by metric first (a
    // service's time series reads one metric's rows of one service). 18.16 runs no view over a
    // view's target: each view reads the inserted rows. A granule (what a query reads at least) of
    // 256 rows, not 8 192: a row holds ~150 bins, and an endpoint's rows of a day are a few hundred
    // (an endpoint in every service: 90-130 ms → 20-35 ms at 10 services on 18.16)
    const binsMap = 'binsMap Nested(key Int32, count UInt64)';
    const fat = 'SETTINGS index_granularity = 256';
    statements.push(
      `CREATE TABLE IF NOT EXISTS ${T(`bin_maps_${name}`)} (service String, endpoint String, t DateTime, metric UInt8, ${binsMap}) ENGINE = SummingMergeTree ${PARTITION} ORDER BY (service, endpoint, t, metric) ${fat}`,
    );
    statements.push(`CREATE MATERIALIZED VIEW IF NOT EXISTS bin_maps_${name}_mv TO ${T(`bin_maps_${name}`)} AS ${binMaps(seconds, true)}`);
    statements.push(`CREATE TABLE IF NOT EXISTS ${T(`bin_maps_service_${name}`)} (service String, t DateTime, metric UInt8, ${binsMap}) ENGINE = SummingMergeTree ${PARTITION} ORDER BY (service, metric, t) ${fat}`);
    statements.push(`CREATE MATERIALIZED VIEW IF NOT EXISTS bin_maps_service_${name}_mv TO ${T(`bin_maps_service_${name}`)} AS ${binMaps(seconds, false)}`);
    const loopStates = `service String, t DateTime, ${sketchStates('delay')}, ${LOOP_SUMS.map((c) => `${c} AggregateFunction(sum, ${c.endsWith('_count') ? 'UInt64' : 'Float64'})`).join(', ')}, ${LOOP_MAXES.map((c) => `${c} AggregateFunction(max, UInt64)`).join(', ')}`;
    statements.push(`CREATE TABLE IF NOT EXISTS ${T(`loop_${name}`)} (${loopStates}) ENGINE = AggregatingMergeTree ${PARTITION} ORDER BY (service, t)`);
    statements.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS loop_${name}_mv TO ${T(`loop_${name}`)} AS SELECT service, ${bucket(seconds)} AS t, ${sketchToState('delay')}, ` +
        `${LOOP_SUMS.map((c) => `sumState(${c}) AS ${c}`).join(', ')}, ${LOOP_MAXES.map((c) => `maxState(${c}) AS ${c}`).join(', ')} FROM ${T('loop_second')} GROUP BY service, t`,
    );
    // the loop delay's bins, one row per key, as the request metrics' (a sumMap state of 23 rows took
    // 200 ms to merge on 18.16; a database from before keeps such states in loop_*: loopBinsFromStates)
    statements.push(`CREATE TABLE IF NOT EXISTS ${T(`loop_bins_${name}`)} (service String, t DateTime, key Int32, count UInt64) ENGINE = SummingMergeTree(count) ${PARTITION} ORDER BY (service, t, key)`);
    statements.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS loop_bins_${name}_mv TO ${T(`loop_bins_${name}`)} AS SELECT service, ${bucket(seconds)} AS t, bin_key AS key, sum(bin_count) AS count ` +
        `FROM ${T('loop_second')} ARRAY JOIN delay_keys AS bin_key, delay_counts AS bin_count GROUP BY service, t, key`,
    );
  }
  statements.push(
    `CREATE TABLE IF NOT EXISTS ${T('long_tasks')} (service String, instance String, t DateTime, at Float64, ms Float64, endpoint Nullable(String), traceId Nullable(String),
      function String, location Nullable(String), stack String, blocked String, batch String, seq UInt32, compiledLocation Nullable(String)) ENGINE = MergeTree ${PARTITION} ORDER BY (service, t)`,
  );
  // traces by service and time (the lists); trace_index finds a trace's parts by its id
  statements.push(
    `CREATE TABLE IF NOT EXISTS ${T('traces')} (traceId String, spanId String, parentSpanId Nullable(String), service String, endpoint String, t DateTime, start Float64,
      status UInt16, error UInt8, aborted UInt8, response Float64, duration Float64, cpu Nullable(Float64), external Nullable(Float64), blocking Nullable(Float64),
      record String, instance Nullable(String), batch String, seq UInt32) ENGINE = MergeTree ${PARTITION} ORDER BY (service, t)`,
  );
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('trace_index')} (traceId String, spanId String, service String, t DateTime, batch String, seq UInt32) ENGINE = MergeTree ${PARTITION} ORDER BY traceId`);
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('calls')} (service String, kind String, target String, t DateTime, count UInt64, errors UInt64, ${sketchColumns('duration')}, batch String, seq UInt32) ENGINE = MergeTree ${PARTITION} ORDER BY (t, service)`);
  // the calls' hour rollup (the service map of a day read 1 440 minutes of every caller and target:
  // 1.2 s at 100 services on 18.16), its bins as a map per call target and hour as the request metrics'
  const callKey = 'service String, kind String, target String, t DateTime';
  statements.push(
    `CREATE TABLE IF NOT EXISTS ${T('calls_hour')} (${callKey}, count AggregateFunction(sum, UInt64), errors AggregateFunction(sum, UInt64), ${sketchStates('duration')}) ENGINE = AggregatingMergeTree ${PARTITION} ORDER BY (t, service, kind, target)`,
  );
  statements.push(
    `CREATE MATERIALIZED VIEW IF NOT EXISTS calls_hour_mv TO ${T('calls_hour')} AS SELECT service, kind, target, ${bucket(3600)} AS t, sumState(count) AS count, sumState(errors) AS errors, ${sketchToState('duration')} FROM ${T('calls')} GROUP BY service, kind, target, t`,
  );
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('call_bin_maps_hour')} (${callKey}, binsMap Nested(key Int32, count UInt64)) ENGINE = SummingMergeTree ${PARTITION} ORDER BY (t, service, kind, target)`);
  statements.push(
    `CREATE MATERIALIZED VIEW IF NOT EXISTS call_bin_maps_hour_mv TO ${T('call_bin_maps_hour')} AS SELECT service, kind, target, ${bucket(3600)} AS t, ` +
      `sumMap(duration_keys, duration_counts).1 AS \`binsMap.key\`, sumMap(duration_keys, duration_counts).2 AS \`binsMap.count\` FROM ${T('calls')} GROUP BY service, kind, target, t`,
  );
  statements.push(
    `CREATE TABLE IF NOT EXISTS ${T('context_loss')} (service String, module String, site String, function String, t DateTime, count UInt64, lostMs Float64, batch String, seq UInt32) ENGINE = MergeTree ${PARTITION} ORDER BY (service, t)`,
  );
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('call_targets')} (target String, service String, seen UInt64, t DateTime) ENGINE = MergeTree ${PARTITION} ORDER BY target`);
  // instances: every batch's row goes through a Null table into one row per process and month
  statements.push(
    `CREATE TABLE IF NOT EXISTS ${T('instances_in')} (service String, instance String, t DateTime, first UInt64, ${INSTANCE_MAXES.map((c) => `${c} UInt64`).join(', ')}, refusedParts UInt64, agent String) ENGINE = Null`,
  );
  statements.push(
    `CREATE TABLE IF NOT EXISTS ${T('instances')} (service String, instance String, t DateTime, first AggregateFunction(min, UInt64), ${INSTANCE_MAXES.map((c) => `${c} AggregateFunction(max, UInt64)`).join(', ')},
      refusedParts AggregateFunction(sum, UInt64), agent AggregateFunction(anyLast, String)) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(t) ORDER BY (service, instance)`,
  );
  statements.push(
    `CREATE MATERIALIZED VIEW IF NOT EXISTS instances_mv TO ${T('instances')} AS SELECT service, instance, toDateTime(toStartOfMonth(t)) AS t, minState(first) AS first,
      ${INSTANCE_MAXES.map((c) => `maxState(${c}) AS ${c}`).join(', ')}, sumState(refusedParts) AS refusedParts, anyLastState(agent) AS agent FROM ${T('instances_in')} GROUP BY service, instance, t`,
  );
  // every round of alert evaluation, by whichever collector ran it (alerts/engine.ts)
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('alert_rounds')} (t DateTime, at UInt64, holder String, state String) ENGINE = MergeTree ${PARTITION} ORDER BY at`);
  // from when a table made later holds all it should (index.ts: bin_maps, over bins_* of before), per server
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('schema_marks')} (name String, at UInt64) ENGINE = MergeTree ORDER BY name`);
  // batches begun (state 1) and stored whole (state 2)
  statements.push(`CREATE TABLE IF NOT EXISTS ${T('batches')} (batchId String, state UInt8, t DateTime) ENGINE = MergeTree ${PARTITION} ORDER BY batchId`);
  // sharded: a Distributed table over each local one, under the name the queries use; each insert
  // goes to one shard (a service's rows stay together) and each query is answered by every shard
  if (cluster !== undefined) {
    for (const [table, shardBy] of Object.entries(TABLES)) {
      statements.push(`CREATE TABLE IF NOT EXISTS ${table} AS ${T(table)} ENGINE = Distributed(${cluster.name}, ${cluster.database}, ${T(table)}, ${shardBy})`);
    }
  }
  return statements;
}

/**
 * Columns added since their table was first made: a database an older loopscope created gains them
 * at start (18.16 has no `ADD COLUMN IF NOT EXISTS`: the collector asks `system.columns` first).
 * `views`: the materialized views over the table that must be made again with it (18.16 cannot
 * alter a view's query, and a view that leaves out a column of its target fails every insert).
 */
const loopViews = ROLLUPS.map(({ name }) => `loop_${name}_mv`);
const sumType = (c: string): string => (c.endsWith('_count') ? 'UInt64' : 'Float64');
const aggViews = ROLLUPS.flatMap(({ name }) => [`agg_${name}_mv`, `agg_arrays_${name}_mv`]);
export const ADDED_COLUMNS: ReadonlyArray<{ table: string; column: string; type: string; views?: string[] }> = [
  // the file system's and name resolution's external time (they became kinds later)
  ...['ext_fs', 'ext_dns'].flatMap((column) => [
    { table: 'agg_second', column, type: 'Float64', views: aggViews },
    // (the rollups of a column each, LEGACY_AGG)
    ...ROLLUPS.map(({ name }) => ({ table: `agg_${name}`, column, type: 'AggregateFunction(sum, Float64)', views: [`agg_${name}_mv`] })),
  ]),
  { table: 'long_tasks', column: 'compiledLocation', type: 'Nullable(String)' },
  { table: 'instances_in', column: 'cutValues', type: 'UInt64', views: ['instances_mv'] },
  { table: 'instances', column: 'cutValues', type: 'AggregateFunction(max, UInt64)', views: ['instances_mv'] },
  ...AGENT_SUMS.map((column) => ({ table: 'loop_second', column, type: sumType(column), views: loopViews })),
  ...AGENT_MAXES.map((column) => ({ table: 'loop_second', column, type: 'UInt64', views: loopViews })),
  ...ROLLUPS.flatMap(({ name }) => [
    ...AGENT_SUMS.map((column) => ({ table: `loop_${name}`, column, type: `AggregateFunction(sum, ${sumType(column)})`, views: [`loop_${name}_mv`] })),
    ...AGENT_MAXES.map((column) => ({ table: `loop_${name}`, column, type: 'AggregateFunction(max, UInt64)', views: [`loop_${name}_mv`] })),
  ]),
];

/**
 * A database made before the loop delay's bins had tables of their own keeps them as sumMap states
 * in loop_<rollup>.delay_bins: the statement that copies them into a new loop_bins_<rollup> (run
 * once, when that table is made, on each server's local tables; index.ts then drops the column).
 */
export const loopBinsFromStates = (name: string, sharded: boolean): string =>
  `INSERT INTO ${localTable(`loop_bins_${name}`, sharded)} SELECT service, t, bin_key AS key, bin_count AS count ` +
  `FROM (SELECT service, t, sumMapMerge(delay_bins) AS bins FROM ${localTable(`loop_${name}`, sharded)} GROUP BY service, t) ARRAY JOIN bins.1 AS bin_key, bins.2 AS bin_count`;

/**
 * The bins of a database made before bin_maps_*: a row per key in bins_<rollup> (per endpoint) and
 * bins_service_<rollup>, each filled by a view of the same name with `_mv`. At the upgrade the
 * views go and so does bins_service_* (bins_* holds the same bins); bins_* is read for what came
 * before (index.ts) until retention has dropped it.
 */
export const LEGACY_BINS = ROLLUPS.map(({ name }) => ({ rows: `bins_${name}`, service: `bins_service_${name}` }));

/**
 * The request metrics' rollups of a database made before agg_arrays_*: a merge state per column
 * (AGG_SUMS, then each metric's n, sum, min, max and zero, as sumOf and sketchMerge read them),
 * filled by a view of the same name with `_mv`. At the upgrade the views go; the tables stay, read
 * for what came before (index.ts) until retention has dropped them.
 */
export const LEGACY_AGG = ROLLUPS.map(({ name }) => ({ table: `agg_${name}`, view: `agg_${name}_mv` }));

/** The tables whose rows carry their batch's id, with the column their time is in. */
export const BATCHED_TABLES = ['agg_second', 'loop_second', 'long_tasks', 'traces', 'trace_index', 'calls', 'context_loss'] as const;
export type BatchedTable = (typeof BATCHED_TABLES)[number];
