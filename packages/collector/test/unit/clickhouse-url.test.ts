/**
 * `--storage clickhouse://...`: the server (or the shards of a cluster), the database and the
 * credentials a URL names, and the message each kind of mistake gets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseClickHouseUrl } from '../../src/storage/clickhouse/client.js';

test('one server: HTTP on 8123 by default, HTTPS on 8443; user and password from the URL, else the environment, else default', () => {
  assert.deepEqual(parseClickHouseUrl('clickhouse://ch.internal/loopscope', {}), {
    origin: 'http://ch.internal:8123',
    servers: ['http://ch.internal:8123'],
    cluster: undefined,
    database: 'loopscope',
    user: 'default',
    password: '',
  });
  const tls = parseClickHouseUrl('clickhouses://ops:s%40cret@[::1]/db', { LOOPSCOPE_CLICKHOUSE_PASSWORD: 'unused' });
  assert.equal(tls.origin, 'https://[::1]:8443');
  assert.deepEqual([tls.user, tls.password], ['ops', 's@cret']);
  const fromEnv = parseClickHouseUrl('clickhouse://127.0.0.1:9123/db', { LOOPSCOPE_CLICKHOUSE_USER: 'writer', LOOPSCOPE_CLICKHOUSE_PASSWORD: 'pw' });
  assert.deepEqual([fromEnv.origin, fromEnv.user, fromEnv.password], ['http://127.0.0.1:9123', 'writer', 'pw']);
  assert.deepEqual([parseClickHouseUrl('clickhouse://only-user@h/db', {}).user, parseClickHouseUrl('clickhouse://only-user@h/db', {}).password], ['only-user', '']);
});

test('shards: every server of the cluster, the first the one read and written through', () => {
  const target = parseClickHouseUrl('clickhouse://ch1:8123,ch2,10.0.0.3:8124/loopscope?cluster=two_shards', {});
  assert.deepEqual(target.servers, ['http://ch1:8123', 'http://ch2:8123', 'http://10.0.0.3:8124']);
  assert.equal(target.origin, 'http://ch1:8123');
  assert.equal(target.cluster, 'two_shards');
  assert.equal(parseClickHouseUrl('clickhouse://ch1/db?cluster=one', {}).cluster, 'one', 'a cluster of one shard is a cluster');
});

test('each mistake is named', () => {
  const cases: Array<[string, RegExp]> = [
    ['ch1:8123/db', /not a URL \(expected clickhouse:\/\/HOST:8123\/DATABASE/],
    ['postgres://h/db', /the scheme must be clickhouse:\/\/ or clickhouses:\/\/ \(HTTPS\)/],
    ['clickhouse://h:8123', /name a database after the host/],
    ['clickhouse://h/my-db', /"my-db" is not a database name loopscope takes/],
    ['clickhouse://h:port/db', /"h:port" is not a host\[:port\]/],
    ['clickhouse://a,b/db', /several servers are the shards of a cluster: name it, \?cluster=NAME/],
    ['clickhouse://a,a:8123/db?cluster=c', /a server is named twice/],
    ['clickhouse://a,b/db?cluster=x-y', /"x-y" is not a cluster name loopscope takes/],
    ['clickhouse://a/db?compress=1', /unknown option compress \(the one option is \?cluster=NAME\)/],
  ];
  for (const [url, message] of cases) assert.throws(() => parseClickHouseUrl(url, {}), { message: new RegExp(`^--storage ${url.replace(/[?.*+[\]()\\]/g, '\\$&')}: .*${message.source}`) }, url);
});
