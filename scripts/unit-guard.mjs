// Loaded into every file of the unit tier (scripts/test.mjs): a unit test that opens a socket,
// listens, or starts a process fails at once with a message that says where such a test belongs.
// Only in the test files' own processes (the runner that starts them is left alone).
import childProcess from 'node:child_process';
import dgram from 'node:dgram';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

if (process.env.NODE_TEST_CONTEXT?.startsWith('child')) {
  const refuse = (what) =>
    function () {
      throw new Error(`a unit test (test/unit/) may not ${what}: a test that needs it belongs in test/, beside test/unit/`);
    };
  net.Socket.prototype.connect = refuse('open a connection');
  net.Server.prototype.listen = refuse('listen on a port');
  dgram.Socket.prototype.bind = refuse('bind a socket');
  dgram.Socket.prototype.send = refuse('send a datagram');
  for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) childProcess[name] = refuse(`start a process (${name})`);
  syncBuiltinESMExports();
}
