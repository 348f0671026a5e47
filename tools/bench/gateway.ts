// Gateway data-plane benchmark: the same backend and payload called directly, through nginx
// (one worker, an equivalent keep-alive reverse proxy) and through the Aviary gateway engine
// (plain HTTP and TLS). Per target: requests/s at saturation (wrk), CPU per request of the
// proxy process (from /proc), and p50/p99 latency at a fixed open-loop rate (undici).
// The proxy under test is pinned to CPU 1; the backend and the load generators to CPU 0.
// Usage: node tools/build/build.mjs bench-gateway && node dist/tools/bench/gateway.js [seconds] [rate]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { Proxy, RoutingTable } from '@aviary/proxy';

const self = fileURLToPath(import.meta.url);
const role = process.argv[2] ?? 'main';
const PAYLOAD = Buffer.alloc(128, 'a');

function backend(): void {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': PAYLOAD.length });
    res.end(PAYLOAD);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
}

function hcm(): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': ExtensionTypeUrl.HttpConnectionManager,
      stat_prefix: 'bench',
      route_config: { name: 'bench', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend', timeout: { seconds: 15 } } }] }] },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ExtensionTypeUrl.Router } }],
    },
  };
}

async function gateway(backendPort: number, cert: { chain: string; key: string }): Promise<void> {
  let records = 0;
  const proxy = new Proxy({ node: { id: 'router~127.0.0.1~bench.default~default.svc.cluster.local', mode: 'router', workload: 'bench', namespace: 'default' }, onRecord: () => void records++ });
  const tls = {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': ExtensionTypeUrl.DownstreamTlsContext,
      common_tls_context: { tls_certificates: [{ certificate_chain: { inline_string: cert.chain }, private_key: { inline_string: cert.key } }] },
    },
  };
  const table = RoutingTable.fromResources({
    listeners: [
      { name: 'plain', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [hcm()] }] },
      { name: 'tls', address: { socket_address: { address: '127.0.0.1', port_value: 0 } }, filter_chains: [{ filters: [hcm()], transport_socket: tls }] },
    ],
    clusters: [
      {
        name: 'backend',
        type: 'STATIC',
        connect_timeout: { seconds: 1 },
        load_assignment: { cluster_name: 'backend', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } } }] }] },
      },
    ],
  });
  await proxy.apply(table);
  // Exit through process.exit so --cpu-prof can write its profile.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(0));
  process.stdout.write(`${JSON.stringify(proxy.ports())}\n`);
}

// ---- main ----

function readLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(buf.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
}

function cpuSeconds(pids: readonly number[]): number {
  const tick = 100; // CLK_TCK on Linux
  return pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return sum + (Number(fields[11]) + Number(fields[12])) / tick;
  }, 0);
}

function wrk(url: string, seconds: number, connections: number): { rps: number; requests: number; p50ms: number; p99ms: number; errors: number } {
  const out = execFileSync('taskset', ['-c', '0', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 'NaN');
  const ms = (re: RegExp): number => {
    const m = re.exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    p50ms: ms(/50%\s+([\d.]+)(us|ms|s)/),
    p99ms: ms(/99%\s+([\d.]+)(us|ms|s)/),
    errors: (errs ? Number(errs[1]) : 0) + (sockErr ? sockErr.slice(1).reduce((s, x) => s + Number(x), 0) : 0),
  };
}

/** Open-loop load at a fixed rate; latency from send to the end of the body. */
async function fixedRate(origin: string, rate: number, seconds: number, h2 = false): Promise<{ p50ms: number; p99ms: number; sent: number; failed: number; firstError?: string }> {
  // HTTP/1.1 on every target (nginx here has no HTTP/2), so TLS compares like with like.
  const pool = new Pool(origin, { connections: 64, pipelining: 1, allowH2: h2, connect: { rejectUnauthorized: false } });
  const lat: number[] = [];
  let failed = 0;
  let sent = 0;
  let firstError: string | undefined;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = (performance.now() - start) / 1000;
      if (elapsed >= seconds) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor(elapsed * rate) - sent;
      for (let i = 0; i < due; i++) {
        sent++;
        // Open loop: sends never wait for responses. Timed from the actual send (the 1 ms
        // scheduling tick would otherwise add up to a millisecond to every target alike).
        const t0 = performance.now();
        inflight.push(
          pool
            .request({ path: '/', method: 'GET' })
            .then(async (r) => {
              await r.body.dump();
              if (r.statusCode !== 200) failed++;
              lat.push(performance.now() - t0);
            })
            .catch((err: unknown) => {
              failed++;
              firstError ??= (err as Error).message;
            }),
        );
      }
    }, 1);
  });
  await Promise.all(inflight);
  await pool.close();
  lat.sort((a, b) => a - b);
  const q = (p: number): number => Math.round((lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN) * 1000) / 1000;
  return { p50ms: q(0.5), p99ms: q(0.99), sent, failed, ...(firstError === undefined ? {} : { firstError }) };
}

function nginxConf(dir: string, backendPort: number, plainPort: number, tlsPort: number, cert: string, key: string): string {
  writeFileSync(join(dir, 'cert.pem'), cert);
  writeFileSync(join(dir, 'key.pem'), key);
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${plainPort};
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${dir}/cert.pem; ssl_certificate_key ${dir}/key.pem;
    keepalive_requests 1000000;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Request-Id $request_id; }
  }
}
`;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function servingCert(): { chain: string; key: string } {
  const ca = Issuer.createRoot({ trustDomain: 'bench.local' });
  const key = generatePrivateKey('ecdsa-p256');
  const issued = ca.signServing(createCsr(key), ['localhost'], 86_400);
  return { chain: issued.chain.slice(0, -1).join('\n'), key: privateKeyToPem(key) };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const rate = Number(process.argv[3] ?? 1000);
  const children: ChildProcess[] = [];
  const spawnPinned = (cpu: string, cmd: string, args: string[]): ChildProcess => {
    const c = spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(c);
    return c;
  };
  const dir = mkdtempSync(join(tmpdir(), 'aviary-bench-gw-'));
  const results: Record<string, unknown>[] = [];
  try {
    const be = spawnPinned('0', process.execPath, [self, 'backend']);
    const backendPort = Number(await readLine(be));
    const cert = servingCert();
    writeFileSync(join(dir, 'gw-cert.json'), JSON.stringify(cert));

    const run = async (name: string, url: string, origin: string, pids: number[]): Promise<void> => {
      wrk(url, 2, 32); // warm-up
      const cpu0 = cpuSeconds(pids);
      const sat = wrk(url, seconds, 64);
      const cpu = cpuSeconds(pids) - cpu0;
      const fixed = await fixedRate(origin, rate, seconds);
      const r = {
        target: name,
        rps: Math.round(sat.rps),
        satP50ms: sat.p50ms,
        satP99ms: sat.p99ms,
        wrkErrors: sat.errors,
        cpuUsPerRequest: pids.length === 0 ? null : Math.round((cpu / sat.requests) * 1e6 * 10) / 10,
        [`p50ms@${rate}`]: fixed.p50ms,
        [`p99ms@${rate}`]: fixed.p99ms,
        fixedFailed: fixed.failed,
        ...(fixed.firstError === undefined ? {} : { firstError: fixed.firstError }),
      };
      results.push(r);
      process.stderr.write(`${JSON.stringify(r)}\n`);
    };

    await run('backend direct', `http://127.0.0.1:${backendPort}/`, `http://127.0.0.1:${backendPort}`, []);

    const [np, nt] = [await freePort(), await freePort()];
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, backendPort, np, nt, cert.chain, cert.key));
    const ng = spawnPinned('1', 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
    await new Promise((r) => setTimeout(r, 500));
    // taskset execs nginx: ng.pid is the master; its child is the one worker.
    const nginxPids = [ng.pid as number, ...execFileSync('pgrep', ['-P', String(ng.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number)];
    await run('nginx (1 worker)', `http://127.0.0.1:${np}/`, `http://127.0.0.1:${np}`, nginxPids);
    await run('nginx TLS (1 worker)', `https://127.0.0.1:${nt}/`, `https://127.0.0.1:${nt}`, nginxPids);
    ng.kill('SIGTERM');

    // GATEWAY_NODE_FLAGS: V8/Node flags for the gateway process (e.g. --max-semi-space-size=32).
    const flags = (process.env.GATEWAY_NODE_FLAGS ?? '').split(' ').filter((f) => f.length > 0);
    const gw = spawnPinned('1', process.execPath, [...flags, self, 'gateway', String(backendPort), join(dir, 'gw-cert.json')]);
    const ports = JSON.parse(await readLine(gw)) as { plain: number; tls: number };
    const gwPid = gw.pid as number; // taskset execs node: same pid
    await run('aviary gateway', `http://127.0.0.1:${ports.plain}/`, `http://127.0.0.1:${ports.plain}`, [gwPid]);
    await run('aviary gateway TLS', `https://127.0.0.1:${ports.tls}/`, `https://127.0.0.1:${ports.tls}`, [gwPid]);
    const h2 = await fixedRate(`https://127.0.0.1:${ports.tls}`, rate, seconds, true);
    results.push({ target: 'aviary gateway TLS, HTTP/2 downstream (fixed rate only)', [`p50ms@${rate}`]: h2.p50ms, [`p99ms@${rate}`]: h2.p99ms, fixedFailed: h2.failed });
    process.stderr.write(`${JSON.stringify(results.at(-1))}\n`);

    process.stdout.write(`${JSON.stringify({ machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`, node: process.version, gatewayNodeFlags: flags, seconds, rate, results }, null, 2)}\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (role === 'backend') backend();
else if (role === 'gateway') await gateway(Number(process.argv[3]), JSON.parse(readFileSync(process.argv[4] as string, 'utf8')) as { chain: string; key: string });
else await main();
