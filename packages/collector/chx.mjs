import { startClickHouse } from './dist/test/clickhouse-tools.js';
import { writeFileSync } from 'node:fs';
const ch = await startClickHouse();
writeFileSync('/tmp/chx/url', ch.url + '\n' + ch.database('x'));
console.log(ch.url);
process.on('SIGTERM', async () => { await ch.stop(); process.exit(0); });
setInterval(() => {}, 1e9);
