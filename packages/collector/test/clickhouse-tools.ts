/**
 * ClickHouse for the tests: Debian's clickhouse-server (18.16 here; .ci/run installs it) started on
 * free ports of 127.0.0.1 with its data in a fresh directory, one server per test file.
 */
import { randomBytes } from 'node:crypto';
import { freePort, start, type Tool } from './prometheus-tools.js';

export interface ClickHouse extends Tool {
  /** a fresh database's storage URL on this server: clickhouse://127.0.0.1:PORT/NAME */
  database(prefix?: string): string;
  /** its native (TCP) port, for a Distributed table's cluster */
  tcpPort: number;
}

const CONFIG = `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <mark_cache_size>5368709120</mark_cache_size>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
`;

export async function startClickHouse(): Promise<ClickHouse> {
  const tcpPort = await freePort();
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
    { name: 'config.xml', text: CONFIG },
    '/ping',
  );
  const { port } = new URL(tool.url);
  return { ...tool, tcpPort, database: (prefix = 'loopscope') => `clickhouse://127.0.0.1:${port}/${prefix}_${randomBytes(4).toString('hex')}` };
}
