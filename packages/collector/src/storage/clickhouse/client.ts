/**
 * ClickHouse over its HTTP interface, with fetch: what every version from Debian's 18.16 to 25.x
 * speaks alike. Statements are sent whole, values escaped by `literal()` (18.16 has no server-side
 * query parameters); rows go in and come out as JSONEachRow, 64-bit integers as JSON numbers.
 * (@clickhouse/client was not used: its inserts default to JSONCompactEachRow, which 18.16 lacks,
 * and it does not recognise 18.16's error bodies.)
 */

export interface ClickHouseTarget {
  /** http(s)://host:port: the server the collector reads and writes through */
  origin: string;
  /**
   * Every server the collector keeps the schema on: `[origin]`, or with `cluster` each shard's,
   * the first being `origin`.
   */
  servers: string[];
  /** the cluster (ClickHouse's `remote_servers`) whose shards hold the data; undefined: one server */
  cluster: string | undefined;
  database: string;
  user: string;
  password: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Reads `clickhouse://[user[:password]@]host[:port]/database` (port 8123 by default;
 * `clickhouses://` for HTTPS, port 8443), or for a sharded layout every shard's server and the
 * cluster: `clickhouse://host1:8123,host2:8123/database?cluster=NAME` (docs/clickhouse.md). User
 * and password default to LOOPSCOPE_CLICKHOUSE_USER and LOOPSCOPE_CLICKHOUSE_PASSWORD, then
 * `default` and no password.
 */
export function parseClickHouseUrl(text: string, env: NodeJS.ProcessEnv = process.env): ClickHouseTarget {
  const expected = '(expected clickhouse://HOST:8123/DATABASE, or clickhouse://HOST1:8123,HOST2:8123/DATABASE?cluster=NAME)';
  const parts = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/.exec(text);
  if (!parts) throw new Error(`--storage ${text}: not a URL ${expected}`);
  const [, scheme, userinfo, hosts, pathname = '', search = ''] = parts;
  const tls = scheme === 'clickhouses';
  if (scheme !== 'clickhouse' && !tls) throw new Error(`--storage ${text}: the scheme must be clickhouse:// or clickhouses:// (HTTPS)`);
  const servers = hosts!.split(',').map((host) => {
    const hostPort = /^([^\s:[\]]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(host);
    let hostname: string | undefined;
    try {
      if (hostPort) hostname = new URL(`http://${hostPort[1]}`).hostname;
    } catch {
      // (not a host name)
    }
    if (hostname === undefined) throw new Error(`--storage ${text}: "${host}" is not a host[:port] ${expected}`);
    return `${tls ? 'https' : 'http'}://${hostname}:${hostPort![2] ?? (tls ? '8443' : '8123')}`;
  });
  const database = decodeURIComponent(pathname.replace(/^\//, ''));
  if (database === '') throw new Error(`--storage ${text}: name a database after the host (letters, digits, _), e.g. clickhouse://127.0.0.1:8123/loopscope`);
  if (!NAME.test(database)) throw new Error(`--storage ${text}: "${database}" is not a database name loopscope takes (letters, digits and _, not starting with a digit)`);
  const params = new URLSearchParams(search);
  const unknown = [...params.keys()].filter((k) => k !== 'cluster');
  if (unknown.length > 0) throw new Error(`--storage ${text}: unknown option ${unknown.join(', ')} (the one option is ?cluster=NAME)`);
  const cluster = params.get('cluster') ?? undefined;
  if (cluster !== undefined && !NAME.test(cluster)) throw new Error(`--storage ${text}: "${cluster}" is not a cluster name loopscope takes (letters, digits and _, not starting with a digit)`);
  if (cluster === undefined && servers.length > 1) throw new Error(`--storage ${text}: several servers are the shards of a cluster: name it, ?cluster=NAME (its remote_servers entry)`);
  if (new Set(servers).size < servers.length) throw new Error(`--storage ${text}: a server is named twice`);
  const colon = userinfo?.indexOf(':') ?? -1;
  const user = colon < 0 ? (userinfo ?? '') : userinfo!.slice(0, colon);
  const password = colon < 0 ? '' : userinfo!.slice(colon + 1);
  return {
    origin: servers[0]!,
    servers,
    cluster,
    database,
    user: decodeURIComponent(user) || env.LOOPSCOPE_CLICKHOUSE_USER || 'default',
    password: decodeURIComponent(password) || env.LOOPSCOPE_CLICKHOUSE_PASSWORD || '',
  };
}

/** A string, a finite number or an array of them as a ClickHouse literal. */
export function literal(value: string | number | ReadonlyArray<string | number>): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
    return String(value);
  }
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `[${value.map(literal).join(', ')}]`;
}

/** ClickHouse's code for a query cut off at its `max_execution_time`. */
const TIMEOUT_EXCEEDED = 159;
/** ClickHouse's code for a write that found no room on its disks: a 503, the batch is sent again (a batch begun is completed then). */
const NOT_ENOUGH_SPACE = 243;

/** An error ClickHouse answered, with its code (e.g. 60: unknown table; 81: unknown database); code null: ClickHouse did not answer. */
export class ClickHouseError extends Error {
  /** The collector's answer to a request that met it: 503 while ClickHouse cannot be reached (send again later) or a query was cut off, else 500. */
  readonly statusCode: number;

  constructor(
    readonly code: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'ClickHouseError';
    this.statusCode = code === null || code === TIMEOUT_EXCEEDED || code === NOT_ENOUGH_SPACE ? 503 : 500;
  }
}

export class ClickHouseClient {
  private readonly auth: string;

  /**
   * `timeoutMs`: the longest one request may take; `queryTimeoutMs`: the longest ClickHouse works on
   * one SELECT (its `max_execution_time`, in whole seconds) before it stops it.
   */
  constructor(
    readonly target: ClickHouseTarget,
    private readonly timeoutMs = 30_000,
    private readonly queryTimeoutMs?: number,
  ) {
    this.auth = `Basic ${Buffer.from(`${target.user}:${target.password}`).toString('base64')}`;
  }

  /** Runs a statement that answers nothing (DDL). `database: false` runs it outside the database (to create it). */
  async exec(sql: string, options: { database?: boolean } = {}): Promise<void> {
    await this.request({ query: sql }, undefined, options.database ?? true);
  }

  /** Runs a SELECT; its rows as objects. `database: false` runs it outside the database (before it exists). */
  async query<T>(sql: string, options: { database?: boolean } = {}): Promise<T[]> {
    const cap: Record<string, string> = this.queryTimeoutMs === undefined ? {} : { max_execution_time: String(Math.max(1, Math.ceil(this.queryTimeoutMs / 1000))) };
    const text = await this.request({ query: `${sql} FORMAT JSONEachRow`, ...cap }, undefined, options.database ?? true);
    const rows: T[] = [];
    for (const line of text.split('\n')) if (line !== '') rows.push(JSON.parse(line) as T);
    return rows;
  }

  /** Inserts rows into a table; resolves once ClickHouse has written them. */
  async insert(table: string, rows: readonly object[]): Promise<void> {
    if (rows.length === 0) return;
    const body = rows.map((r) => JSON.stringify(r)).join('\n');
    await this.request({ query: `INSERT INTO ${table} FORMAT JSONEachRow` }, body, true);
  }

  private async request(params: Record<string, string>, body: string | undefined, inDatabase: boolean): Promise<string> {
    const search = new URLSearchParams({
      ...params,
      ...(inDatabase ? { database: this.target.database } : {}),
      // the answer's status is the query's: an error after the first rows is not a 200
      wait_end_of_query: '1',
      output_format_json_quote_64bit_integers: '0',
      // sharded: an insert is answered once every shard has its rows (a durable acknowledgement),
      // and a subquery over a Distributed table is run once and sent to the shards
      ...(this.target.cluster !== undefined ? { insert_distributed_sync: '1', distributed_product_mode: 'global' } : {}),
    });
    // a statement too long for a URL goes in the body (inserts carry their rows there)
    const inUrl = body !== undefined || search.toString().length < 8000;
    if (!inUrl) search.delete('query');
    let response: Response;
    try {
      response = await fetch(`${this.target.origin}/?${search}`, {
        method: 'POST',
        headers: { authorization: this.auth },
        body: inUrl ? body : params.query,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const { cause } = err as { cause?: { code?: string; message?: string } };
      const why = cause?.code ?? cause?.message ?? (err as Error).message; // undici refuses some ports outright ("bad port")
      throw new ClickHouseError(null, `ClickHouse at ${this.target.origin} is not reachable (${why})`);
    }
    const text = await response.text();
    if (!response.ok) {
      // ClickHouse's own errors start with their code; anything else answered (a proxy, the native port) is code 0
      const code = /Code: (\d+)[.,]/.exec(text);
      const message = text.replace(/^Code: \d+[.,]\s*(e\.displayText\(\) = )?(DB::Exception: )?/, '').replace(/,? e\.what\(\) = DB::Exception\s*$/, '').replace(/\s+/g, ' ').trim();
      const n = code ? Number(code[1]) : 0;
      const what =
        n === TIMEOUT_EXCEEDED
          ? 'the query was cut off at its time limit (--query-timeout); ask for a shorter range'
          : n === NOT_ENOUGH_SPACE
            ? `its disk is full (NOT_ENOUGH_SPACE: ${message.slice(0, 300)}): what was written is not stored; send it again later`
            : message.slice(0, 500);
      throw new ClickHouseError(n, `ClickHouse at ${this.target.origin}: ${what}${code ? '' : ` (HTTP ${response.status})`}`);
    }
    return text;
  }
}
