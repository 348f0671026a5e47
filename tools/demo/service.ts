import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { configFromProcess } from '@aviary/config';
import { demoServiceConfig } from './config';

/**
 * The demo's sample service. Every request gets 200 with `x-version: <version>` and the body
 * `hello from <name> <version>` (one line, so `sort | uniq -c` counts a split), except:
 *  - `/status/<code>` answers with that status (to try retries or error colours);
 *  - `/flaky…` fails every other request with 503 (to see retries hide it);
 *  - `/fail-if/<version>…` answers 503 when <version> is this instance's (one bad endpoint, for
 *    outlier detection);
 *  - `/fail-percent/<version>/<n>…` answers 500 to n % of its requests (evenly spread) when
 *    <version> is this instance's: a failing build, for a canary that must roll back;
 *  - `/delay-if/<version>/<ms>…` answers after <ms> milliseconds (at most 10 s) when <version>
 *    is this instance's: a latency regression;
 *  - `/counters` answers this instance's request counts as JSON (served on the app port only:
 *    curl 127.0.0.1:<port>/counters);
 *  - a WebSocket upgrade on `/ws` echoes each text message as `<version>: <message>` (see
 *    wsEcho: small text messages only; enough to see WebSockets cross the mesh).
 */
const config = configFromProcess(demoServiceConfig);
const counters = { requests: 0, flaky: { requests: 0, failed: 0 }, failIf: { requests: 0, failed: 0 }, failPercent: { requests: 0, failed: 0 } };

function statusFor(url: string): number {
  const status = /^\/status\/([1-5]\d\d)$/.exec(url);
  if (status !== null) return Number(status[1]);
  if (url.startsWith('/flaky')) {
    counters.flaky.requests++;
    if (counters.flaky.requests % 2 === 1) {
      counters.flaky.failed++;
      return 503;
    }
    return 200;
  }
  const failPercent = /^\/fail-percent\/([^/?]+)\/(\d{1,3})(?:[/?]|$)/.exec(url);
  if (failPercent !== null && failPercent[1] === config.version) {
    const n = Math.min(100, Number(failPercent[2]));
    const k = counters.failPercent.requests++;
    // Request k fails when the running count of failures owed, floor(k·n/100), steps up.
    if (Math.floor(((k + 1) * n) / 100) > Math.floor((k * n) / 100)) {
      counters.failPercent.failed++;
      return 500;
    }
    return 200;
  }
  const failIf = /^\/fail-if\/([^/?]+)/.exec(url);
  if (failIf !== null) {
    counters.failIf.requests++;
    if (failIf[1] === config.version) {
      counters.failIf.failed++;
      return 503;
    }
  }
  return 200;
}

const server = createServer((req, res) => {
  req.resume();
  const url = req.url ?? '';
  if (url === '/counters') {
    const json = JSON.stringify(counters);
    res.writeHead(200, { 'content-type': 'application/json', 'x-version': config.version, 'content-length': Buffer.byteLength(json) });
    res.end(json);
    return;
  }
  counters.requests++;
  const code = statusFor(url);
  const body = `hello from ${config.name} ${config.version}\n`;
  const answer = (): void => {
    res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-version': config.version, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const delay = /^\/delay-if\/([^/?]+)\/(\d{1,5})(?:[/?]|$)/.exec(url);
  if (delay !== null && delay[1] === config.version) setTimeout(answer, Math.min(10_000, Number(delay[2])));
  else answer();
});
server.keepAliveTimeout = 65_000;

/** RFC 6455 4.2.2: the accept key is base64(SHA-1(key + this GUID)). */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * A minimal RFC 6455 echo: unfragmented frames with payloads under 126 bytes (a longer or
 * fragmented frame closes the connection with 1009); text is echoed prefixed with the version,
 * ping answered by pong, close by close.
 */
function wsEcho(socket: Socket, key: string, head: Buffer): void {
  socket.write(['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${createHash('sha1').update(key + WS_GUID).digest('base64')}`, '', ''].join('\r\n'));
  const frame = (opcode: number, payload: Buffer): Buffer => Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
  let pending = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 6) {
      const fin = (pending[0]! & 0x80) !== 0;
      const opcode = pending[0]! & 0x0f;
      const length = pending[1]! & 0x7f;
      if (!fin || length >= 126) {
        socket.end(frame(0x8, Buffer.from([0x03, 0xf1])));
        return;
      }
      if (pending.length < 6 + length) return;
      const mask = pending.subarray(2, 6);
      const payload = Buffer.from(pending.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]!));
      pending = pending.subarray(6 + length);
      if (opcode === 0x1) socket.write(frame(0x1, Buffer.from(`${config.version}: ${payload.toString()}`.slice(0, 125))));
      else if (opcode === 0x9) socket.write(frame(0xa, payload));
      else if (opcode === 0x8) {
        socket.end(frame(0x8, payload));
        return;
      }
    }
  };
  socket.on('error', () => socket.destroy());
  socket.on('data', onData);
  if (head.length > 0) onData(head);
}

server.on('upgrade', (req, duplex, head: Buffer) => {
  const socket = duplex as Socket;
  const key = req.headers['sec-websocket-key'];
  if (req.url !== '/ws' || req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    return;
  }
  wsEcho(socket, key, head);
});

server.listen(config.port, config.host, () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'ready', pid: process.pid, service: config.name, version: config.version, address, port })}\n`);
});

// Graceful: no new connections, idle keep-alive connections closed, requests in flight answered
// (a rollout's last requests to this pod still succeed); whatever is still open after 5 s is cut.
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => {
    server.closeAllConnections();
    process.exit(0);
  }, 5_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
