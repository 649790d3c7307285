/**
 * ClickHouse for the tests: Debian's clickhouse-server (18.16 here; .ci/run installs it) started on
 * free ports of 127.0.0.1 with its data in a fresh directory, one server per test file; or two
 * servers, the shards of a cluster.
 */
import { randomBytes } from 'node:crypto';
import { freePort, start, type Tool } from './prometheus-tools.js';

export interface ClickHouse extends Tool {
  /** a fresh database's storage URL on this server: clickhouse://127.0.0.1:PORT/NAME */
  database(prefix?: string): string;
}

/** The cluster of a sharded ClickHouse, in every server's remote_servers. */
export const CLUSTER = 'loopscope';

/** A server's configuration; `shards`: the native ports of the servers of CLUSTER, one shard each. */
const config = (shards: number[]): string => `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <mark_cache_size>5368709120</mark_cache_size>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
${shards.length === 0 ? '' : `  <remote_servers><${CLUSTER}>${shards.map((port) => `<shard><replica><host>127.0.0.1</host><port>${port}</port></replica></shard>`).join('')}</${CLUSTER}></remote_servers>\n`}</yandex>
`;

export async function startClickHouse(tcpPort?: number, shards: number[] = []): Promise<ClickHouse> {
  tcpPort ??= await freePort();
  const tool = await start(
    '/usr/sbin/clickhouse-server',
    (dir, port) => [
      `--config-file=${dir}/config.xml`,
      '--',
      `--http_port=${port}`,
      `--tcp_port=${tcpPort}`,
      `--path=${dir}/data/`,
      `--tmp_path=${dir}/tmp/`,
      `--user_files_path=${dir}/user_files/`,
      `--format_schema_path=${dir}/format_schemas/`,
    ],
    { name: 'config.xml', text: config(shards) },
    '/ping',
  );
  const { port } = new URL(tool.url);
  return { ...tool, database: (prefix = 'loopscope') => `clickhouse://127.0.0.1:${port}/${prefix}_${randomBytes(4).toString('hex')}` };
}

/**
 * Two servers, each a shard of CLUSTER; `database()` names both:
 * clickhouse://127.0.0.1:P1,127.0.0.1:P2/NAME?cluster=loopscope.
 */
export async function startShardedClickHouse(): Promise<ClickHouse> {
  const tcpPorts = [await freePort()];
  while (tcpPorts.length < 2) {
    const port = await freePort();
    if (!tcpPorts.includes(port)) tcpPorts.push(port);
  }
  const servers: ClickHouse[] = [];
  try {
    for (const port of tcpPorts) servers.push(await startClickHouse(port, tcpPorts));
  } catch (err) {
    for (const s of servers) await s.stop();
    throw err;
  }
  const hosts = servers.map((s) => new URL(s.url).host).join(',');
  return {
    url: servers[0]!.url,
    log: () => servers.map((s) => s.log()).join('\n'),
    stop: async () => {
      for (const s of servers) await s.stop();
    },
    database: (prefix = 'loopscope') => `clickhouse://${hosts}/${prefix}_${randomBytes(4).toString('hex')}?cluster=${CLUSTER}`,
  };
}
