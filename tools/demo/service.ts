import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { configFromProcess } from '@aviary/config';
import { demoServiceConfig } from './config';

/**
 * The demo's sample service. Every request gets 200 with `x-version: <version>` and the body
 * `hello from <name> <version>` (one line, so `sort | uniq -c` counts a split), except
 * `/status/<code>` which answers with that status (to try retries or error colours).
 */
const config = configFromProcess(demoServiceConfig);

const server = createServer((req, res) => {
  req.resume();
  const status = /^\/status\/([1-5]\d\d)$/.exec(req.url ?? '');
  const code = status === null ? 200 : Number(status[1]);
  const body = `hello from ${config.name} ${config.version}\n`;
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-version': config.version, 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;

server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'ready', pid: process.pid, service: config.name, version: config.version, address, port })}\n`);
});

const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
