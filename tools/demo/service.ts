import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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
 *    curl 127.0.0.1:<port>/counters).
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
