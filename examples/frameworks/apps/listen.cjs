// Serves a request listener on 127.0.0.1 (PORT, or a free port) and prints `listening <port>`.
'use strict';
const http = require('node:http');

module.exports = function listen(handler) {
  const server = http.createServer({ keepAliveTimeout: 10_000 }, handler);
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
  });
  return server;
};
