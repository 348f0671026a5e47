// Data-plane benchmark (issue 13, item 6): one backend (nginx `return 200`, one worker) reached
// in one run directly; through nginx (one worker) as a reverse proxy; through Envoy configured
// statically (plus the same static Envoy with pilot's telemetry blocks toggled on one by one);
// through the launcher's ingress gateway (the agent + Envoy, configured by pilot); and through
// a sidecar pair with mTLS (client sidecar → server sidecar → backend, both configured by
// pilot). Per target: requests/s at saturation (wrk), p50/p90/p99 at a fixed rate (vegeta, open
// loop), and CPU per request of the proxy processes (and of the agents beside them) from /proc.
//
// The control plane is the real local mesh: `dist/tools/local-mesh/main.js --demo` (nats-server,
// pilot, citadel, collector, injector, the ingress gateway agent) with AVIARY_ENVOY_CONCURRENCY=1
// so every Envoy it starts has one worker. It uses the mesh's fixed ports: run under the e2e lock.
//
// Usage (see docs/benchmarks.md):
//   npm run build && node tools/build/build.mjs bench-dataplane
//   flock /tmp/aviary-e2e.lock node dist/tools/bench/dataplane.js [--seconds 8] [--rate 1000]
//     [--rounds 3] [--connections 64] [--only name,name]
// Pinning: every proxy under test (and its threads) and the agents beside pilot-configured Envoys
// on CPU 1; backend, wrk, vegeta and the control plane on CPU 0.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envoyPath } from '@aviary/config';
import { freePort } from '@aviary/nats-runner';
import { BODY, CLIENT_IP, MESH_HOST, meshYaml, nginxConf, SERVER_IP, staticBootstrap, staticVariants } from './dataplane-config';
import { benchArgs } from './cli';
import { cpuTicks, median, parseVegeta, parseWrk, round, type VegetaResult, type WrkResult } from './dataplane-parse';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cli = benchArgs('Usage: flock /tmp/aviary-e2e.lock node dist/tools/bench/dataplane.js [--seconds 8] [--rate 1000] [--rounds 3] [--connections 64] [--only name,name]\n(what it measures: tools/bench/dataplane.ts, docs/benchmarks.md)', {
  seconds: 'string', rate: 'string', rounds: 'string', connections: 'string', only: 'string',
});
const SECONDS = cli.int('seconds', 8, 1);
const RATE = cli.int('rate', 1000, 1);
const ROUNDS = cli.int('rounds', 3, 1);
const CONNECTIONS = cli.int('connections', 64, 1);
const ONLY = cli.str('only', '').split(',').filter((s) => s !== '');
const PROXY_CPU = '1';
const LOAD_CPU = '0';
const CLK_TCK = 100;
// The local mesh's fixed admin ports (tools/local-mesh, @aviary/config defaults).
const PILOT = 'http://127.0.0.1:15014';
const CITADEL = 'http://127.0.0.1:15016';
const INGRESS_AGENT = 'http://127.0.0.1:15000';

const log = (msg: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- processes ----

const children: Array<{ name: string; child: ChildProcess; signal: NodeJS.Signals }> = [];

/** Starts `cmd` (pinned to `cpu` when given), output appended to <dir>/<name>.log. */
function start(dir: string, name: string, cmd: string, cmdArgs: readonly string[], opts: { cpu?: string; env?: NodeJS.ProcessEnv; signal?: NodeJS.Signals } = {}): ChildProcess {
  const out = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
  const [file, argv] = opts.cpu === undefined ? [cmd, cmdArgs] : ['taskset', ['-c', opts.cpu, cmd, ...cmdArgs]];
  const child = spawn(file, argv as string[], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  child.once('exit', () => out.end());
  children.push({ name, child, signal: opts.signal ?? 'SIGTERM' });
  return child;
}

async function stopAll(): Promise<void> {
  for (const { child, signal } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(t);
  }
}

/** Polls `probe` until it returns a value. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** True on a 200 answer (node:http: fetch may not set a Host header, and the sidecar routes by it). */
function answers200(url: string, host?: string): Promise<true | undefined> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers: host === undefined ? {} : { host }, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? true : undefined));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A diagnostic read of an agent admin: a fresh connection each time (an idle keep-alive one may be closed under us), never fatal. */
async function adminText(url: string): Promise<string> {
  try {
    const res = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(10_000) });
    return await res.text();
  } catch (err) {
    log(`could not read ${url}: ${String(err)}`);
    return '';
  }
}

function cpuSeconds(pids: readonly number[]): number {
  return pids.reduce((s, pid) => s + cpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / CLK_TCK, 0);
}

function parentOf(pid: number): number {
  return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

function childrenOf(pid: number): number[] {
  return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter((l) => l !== '').map(Number);
}

/** Pins every thread of `pid` to `cpu`. */
function pin(pid: number, cpu: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpu, String(pid)], { stdio: 'ignore' });
}

async function adminPost(url: string, token: string, body: string, contentType: string): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${url}: ${res.status} ${text}`);
  return text;
}

// ---- load ----

interface Target {
  readonly name: string;
  readonly title: string;
  readonly url: string;
  readonly host?: string;
  /** Processes of the proxy under test (CPU per request); empty: none (direct). */
  readonly pids: readonly number[];
  /** The agents beside pilot-configured Envoys (their ALS, access log and telemetry work). */
  readonly agentPids: readonly number[];
}

interface Sample {
  readonly round: number;
  readonly loadavg: number;
  readonly wrk: WrkResult;
  readonly vegeta: VegetaResult;
  readonly cpuUsPerReqSat: number;
  readonly agentCpuUsPerReqSat: number;
  readonly cpuUsPerReqFixed: number;
  readonly agentCpuUsPerReqFixed: number;
}

function wrk(bin: string, t: Target, seconds: number, connections: number): WrkResult {
  const headers = t.host === undefined ? [] : ['-H', `Host: ${t.host}`];
  const out = execFileSync('taskset', ['-c', LOAD_CPU, bin, '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...headers, t.url], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  return parseWrk(out);
}

function vegeta(bin: string, dir: string, t: Target): VegetaResult {
  const targets = join(dir, 'vegeta-targets.txt');
  const results = join(dir, 'vegeta-results.bin');
  writeFileSync(targets, `GET ${t.url}\n${t.host === undefined ? '' : `Host: ${t.host}\n`}`);
  const attack = spawnSync('taskset', ['-c', LOAD_CPU, bin, 'attack', `-targets=${targets}`, `-rate=${RATE}/s`, `-duration=${SECONDS}s`, '-timeout=5s', `-output=${results}`], { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
  if (attack.status !== 0) throw new Error(`vegeta attack failed: ${attack.stderr}`);
  return parseVegeta(execFileSync(bin, ['report', '-type=json', results], { encoding: 'utf8' }));
}

const perRequestUs = (cpuS: number, requests: number): number => (requests > 0 ? round((cpuS / requests) * 1e6, 1) : NaN);

function measure(tools: { wrk: string; vegeta: string }, dir: string, t: Target, roundNo: number): Sample {
  wrk(tools.wrk, t, 2, 32); // warm-up: connections, Envoy's lazy init
  const c0 = cpuSeconds(t.pids);
  const a0 = cpuSeconds(t.agentPids);
  const sat = wrk(tools.wrk, t, SECONDS, CONNECTIONS);
  const c1 = cpuSeconds(t.pids);
  const a1 = cpuSeconds(t.agentPids);
  const fixed = vegeta(tools.vegeta, dir, t);
  const c2 = cpuSeconds(t.pids);
  const a2 = cpuSeconds(t.agentPids);
  return {
    round: roundNo,
    loadavg: round(loadavg()[0] ?? NaN, 2),
    wrk: sat,
    vegeta: fixed,
    cpuUsPerReqSat: t.pids.length === 0 ? NaN : perRequestUs(c1 - c0, sat.requests),
    agentCpuUsPerReqSat: t.agentPids.length === 0 ? NaN : perRequestUs(a1 - a0, sat.requests),
    cpuUsPerReqFixed: t.pids.length === 0 ? NaN : perRequestUs(c2 - c1, fixed.requests),
    agentCpuUsPerReqFixed: t.agentPids.length === 0 ? NaN : perRequestUs(a2 - a1, fixed.requests),
  };
}

interface Summary {
  readonly target: string;
  readonly title: string;
  readonly rps: number;
  readonly rpsMin: number;
  readonly rpsMax: number;
  readonly p50ms: number;
  readonly p90ms: number;
  readonly p99ms: number;
  readonly cpuUsPerReqSat: number;
  readonly cpuUsPerReqFixed: number;
  readonly agentCpuUsPerReqSat: number;
  readonly agentCpuUsPerReqFixed: number;
  readonly errors: number;
  readonly fixedSuccess: number;
}

function summarise(t: Target, samples: readonly Sample[]): Summary {
  const rps = samples.map((s) => s.wrk.rps);
  return {
    target: t.name,
    title: t.title,
    rps: round(median(rps)),
    rpsMin: round(Math.min(...rps)),
    rpsMax: round(Math.max(...rps)),
    p50ms: round(median(samples.map((s) => s.vegeta.p50ms)), 3),
    p90ms: round(median(samples.map((s) => s.vegeta.p90ms)), 3),
    p99ms: round(median(samples.map((s) => s.vegeta.p99ms)), 3),
    cpuUsPerReqSat: median(samples.map((s) => s.cpuUsPerReqSat)),
    cpuUsPerReqFixed: median(samples.map((s) => s.cpuUsPerReqFixed)),
    agentCpuUsPerReqSat: median(samples.map((s) => s.agentCpuUsPerReqSat)),
    agentCpuUsPerReqFixed: median(samples.map((s) => s.agentCpuUsPerReqFixed)),
    errors: samples.reduce((n, s) => n + s.wrk.errors + (s.vegeta.requests - (s.vegeta.statusCodes['200'] ?? 0)), 0),
    fixedSuccess: Math.min(...samples.map((s) => s.vegeta.success)),
  };
}

const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–');

function table(rows: readonly Summary[]): string {
  const lines = [
    `| target | req/s at saturation (median, min–max) | p50 ms @${RATE}/s | p90 ms | p99 ms | proxy CPU µs/req (sat / @${RATE}) | agent CPU µs/req (sat / @${RATE}) | errors |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.title} | ${fmt(r.rps)} (${fmt(r.rpsMin)}–${fmt(r.rpsMax)}) | ${fmt(r.p50ms, 3)} | ${fmt(r.p90ms, 3)} | ${fmt(r.p99ms, 3)} | ${fmt(r.cpuUsPerReqSat, 1)} / ${fmt(r.cpuUsPerReqFixed, 1)} | ${fmt(r.agentCpuUsPerReqSat, 1)} / ${fmt(r.agentCpuUsPerReqFixed, 1)} | ${r.errors} |`,
    );
  }
  return lines.join('\n');
}

function ratios(rows: readonly Summary[]): Record<string, number> {
  const by = (n: string): Summary | undefined => rows.find((r) => r.target === n);
  const out: Record<string, number> = {};
  const put = (k: string, v: number | undefined): void => {
    if (v !== undefined && Number.isFinite(v)) out[k] = round(v, 3);
  };
  const st = by('static');
  const ing = by('pilot-ingress');
  const ng = by('nginx');
  const pair = by('sidecar-pair');
  const direct = by('direct');
  const full = by('static-als-trace');
  put('pilotIngressRps / staticRps', ing && st && ing.rps / st.rps);
  put('pilotIngressCpuPerReq / staticCpuPerReq (@rate)', ing && st && ing.cpuUsPerReqFixed / st.cpuUsPerReqFixed);
  put('staticRps / nginxRps', st && ng && st.rps / ng.rps);
  put('staticCpuPerReq / nginxCpuPerReq (sat)', st && ng && st.cpuUsPerReqSat / ng.cpuUsPerReqSat);
  put('staticAlsTraceRps / staticRps', full && st && full.rps / st.rps);
  put('pilotIngressRps / staticAlsTraceRps', ing && full && ing.rps / full.rps);
  put('sidecarPairAddedP90ms', pair && direct && pair.p90ms - direct.p90ms);
  put('sidecarPairAddedP50ms', pair && direct && pair.p50ms - direct.p50ms);
  put('pilotIngressAddedP90ms', ing && direct && ing.p90ms - direct.p90ms);
  put('staticAddedP90ms', st && direct && st.p90ms - direct.p90ms);
  return out;
}

// ---- main ----

async function main(): Promise<void> {
  const ensure = spawnSync(process.execPath, [join(root, 'tools/setup/ensure-bench-tools.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (ensure.status !== 0) throw new Error('tools/setup/ensure-bench-tools.mjs failed');
  const tools = JSON.parse(ensure.stdout) as { wrk: string; nginx: string; vegeta: string };
  const envoy = envoyPath(process.env['AVIARY_ENVOY_PATH']);
  const launcher = join(root, 'dist/tools/local-mesh/main.js');
  const gatewayApp = join(root, 'dist/apps/gateway/main.js');
  for (const f of [launcher, gatewayApp, join(root, 'dist/tools/demo/service.js')]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build first`);

  if (Number(process.versions.node.split('.')[0]) < 24) throw new Error(`Node ${process.version}: run with the project's Node 24 (export PATH=$PWD/node_modules/.bin:$PATH); the apps are started with this node`);
  const dir = mkdtempSync(join(tmpdir(), 'aviary-bench-dataplane-'));
  const meta = {
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    envoy: execFileSync(envoy, ['--version'], { encoding: 'utf8' }).trim().split('\n').pop(),
    nginx: spawnSync(tools.nginx, ['-v'], { encoding: 'utf8' }).stderr.trim(),
    wrk: `${tools.wrk} -t1 -c${CONNECTIONS} -d${SECONDS}s --latency (after a 2 s warm-up at -c32)`,
    vegeta: `${tools.vegeta} attack -rate=${RATE}/s -duration=${SECONDS}s`,
    seconds: SECONDS,
    rate: RATE,
    rounds: ROUNDS,
    loadavgAtStart: loadavg().map((x) => round(x, 2)),
  };
  log(`work dir ${dir}; ${JSON.stringify(meta)}`);
  try {
    const [backendPort, nginxPort, gatewayPort, servicePort, clientAdmin, serverAdmin] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const staticPorts = await Promise.all(staticVariants.map(() => freePort()));

    // Backend: nginx `return 200`, one worker, on the load CPU.
    const backendConf = join(dir, 'backend.conf');
    writeFileSync(backendConf, nginxConf(dir, 'backend', `    listen 127.0.0.1:${backendPort};\n    location / { default_type text/plain; return 200 "${BODY}\\n"; }`));
    start(dir, 'backend', tools.nginx, ['-c', backendConf, '-p', dir], { cpu: LOAD_CPU, signal: 'SIGQUIT' });
    await until('the backend', () => answers200(`http://127.0.0.1:${backendPort}/`), 10_000);

    // nginx as a keep-alive reverse proxy, one worker, on the proxy CPU.
    const proxyConf = join(dir, 'nginx.conf');
    writeFileSync(
      proxyConf,
      nginxConf(
        dir,
        'nginx',
      `    listen 127.0.0.1:${nginxPort};\n    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Request-Id $request_id; }`,
        `upstream backend { server 127.0.0.1:${backendPort}; keepalive 128; }`,
      ),
    );
    const ngx = start(dir, 'nginx', tools.nginx, ['-c', proxyConf, '-p', dir], { cpu: PROXY_CPU, signal: 'SIGQUIT' });
    await until('nginx', () => answers200(`http://127.0.0.1:${nginxPort}/`), 10_000);
    const nginxPids = [ngx.pid as number, ...childrenOf(ngx.pid as number)]; // taskset execs nginx: master, then its worker

    // The local mesh with its demo (ingress gateway agent + Envoy), every Envoy with one worker.
    const stateDir = join(dir, 'mesh');
    const mesh = start(dir, 'local-mesh', process.execPath, [launcher, '--demo', '--state-dir', stateDir, '--nats-port', '0'], { cpu: LOAD_CPU, env: { AVIARY_ENVOY_CONCURRENCY: '1' }, signal: 'SIGINT' });
    const meshLog = join(dir, 'local-mesh.log');
    const meshOut = (): string => (existsSync(meshLog) ? readFileSync(meshLog, 'utf8') : '');
    const meshDeadline = Date.now() + 180_000;
    while (!meshOut().includes('Aviary local mesh is ready')) {
      if (mesh.exitCode !== null || Date.now() > meshDeadline) throw new Error(`the local mesh did not start:\n${meshOut().slice(-3000)}`);
      await sleep(200);
    }
    const natsUrl = /nats-server\s+(nats:\/\/\S+)/.exec(meshOut())?.[1] as string;
    const token = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
    log(`local mesh ready (nats ${natsUrl})`);
    await adminPost(`${PILOT}/api/v1/config`, token, meshYaml(backendPort, gatewayPort, servicePort), 'application/yaml');

    // The sidecar pair: the gateway app in sidecar mode, as the launcher starts the demo's.
    const sidecar = async (name: 'bench-client' | 'bench-server', ip: string, adminPort: number): Promise<ChildProcess> => {
      const res = JSON.parse(await adminPost(`${CITADEL}/api/v1/tokens`, token, JSON.stringify({ namespace: 'bench-mesh', serviceAccount: name, ttl: 86_400 }), 'application/json')) as { token: string };
      return start(dir, name, process.execPath, ['--enable-source-maps', gatewayApp], {
        cpu: LOAD_CPU,
        env: {
          AVIARY_NATS_URL: natsUrl,
          AVIARY_DATA_DIR: join(stateDir, 'data', name),
          AVIARY_MODE: 'sidecar',
          AVIARY_NAME: name,
          AVIARY_NAMESPACE: 'bench-mesh',
          AVIARY_SERVICE_ACCOUNT: name,
          AVIARY_LABELS: `app=${name}`,
          AVIARY_PLATFORM: 'local',
          AVIARY_POD_IP: ip,
          AVIARY_ADMIN_PORT: String(adminPort),
          AVIARY_STATS_PORT: '0',
          AVIARY_STATUS_PORT: '0',
          AVIARY_JOIN_TOKEN: res.token,
          AVIARY_ENVOY_CONCURRENCY: '1',
        },
      });
    };
    await sidecar('bench-server', SERVER_IP, serverAdmin);
    await sidecar('bench-client', CLIENT_IP, clientAdmin);
    const agentUrls = { ingress: INGRESS_AGENT, client: `http://127.0.0.1:${clientAdmin}`, server: `http://127.0.0.1:${serverAdmin}` };
    const envoyPid = async (agent: string): Promise<number> =>
      until(`Envoy of ${agent}`, async () => {
        const s = (await (await fetch(`${agent}/agent`, { signal: AbortSignal.timeout(2_000) })).json()) as { envoy: { pid?: number; state?: string } };
        return s.envoy.state === 'LIVE' && s.envoy.pid !== undefined ? s.envoy.pid : undefined;
      });
    const envoys = { ingress: await envoyPid(agentUrls.ingress), client: await envoyPid(agentUrls.client), server: await envoyPid(agentUrls.server) };
    const agents = { ingress: parentOf(envoys.ingress), client: parentOf(envoys.client), server: parentOf(envoys.server) };
    // The agents share the proxy CPU with their Envoys: their ALS, access-log and telemetry work
    // is part of what a pilot-configured proxy costs per request (as in a pod's CPU budget).
    for (const pid of [...Object.values(agents), ...Object.values(envoys)]) pin(pid, PROXY_CPU);

    // Static Envoy: the same binary, one worker, a static bootstrap (five listeners, one per variant).
    const alsSocket = join(stateDir, 'data', 'gateway', 'envoy', 'als.sock');
    writeFileSync(join(dir, 'static.json'), JSON.stringify(staticBootstrap(staticPorts, backendPort, alsSocket)));
    const st = start(dir, 'static-envoy', envoy, ['-c', join(dir, 'static.json'), '--concurrency', '1', '--use-dynamic-base-id', '--log-level', 'warning'], { cpu: PROXY_CPU });
    for (const p of staticPorts) await until(`static Envoy on ${p}`, () => answers200(`http://127.0.0.1:${p}/`), 30_000);

    await until('the pilot-configured ingress', () => answers200(`http://127.0.0.1:${gatewayPort}/`), 60_000);
    await until('the sidecar pair', () => answers200(`http://${CLIENT_IP}:${servicePort}/`, MESH_HOST), 60_000);
    log('every target answers 200');
    // What pilot sent (kept with BENCH_KEEP_DIR, to explain a gap to the static Envoy).
    for (const [name, url] of Object.entries(agentUrls)) writeFileSync(join(dir, `config-dump-${name}.json`), await adminText(`${url}/config_dump?include_eds`));

    const targets: Target[] = [
      { name: 'direct', title: 'direct to the backend', url: `http://127.0.0.1:${backendPort}/`, pids: [], agentPids: [] },
      { name: 'nginx', title: 'nginx 1 worker (reverse proxy)', url: `http://127.0.0.1:${nginxPort}/`, pids: nginxPids, agentPids: [] },
      ...staticVariants.map((v, i) => ({ name: v.name, title: v.title, url: `http://127.0.0.1:${staticPorts[i]}/`, pids: [st.pid as number], agentPids: v.name === 'static' ? [] : [agents.ingress] })),
      { name: 'pilot-ingress', title: 'Envoy configured by pilot: ingress gateway', url: `http://127.0.0.1:${gatewayPort}/`, pids: [envoys.ingress], agentPids: [agents.ingress] },
      { name: 'sidecar-pair', title: 'sidecar pair, mTLS (client → server sidecar), by pilot', url: `http://${CLIENT_IP}:${servicePort}/`, host: MESH_HOST, pids: [envoys.client, envoys.server], agentPids: [agents.client, agents.server] },
    ].filter((t) => ONLY.length === 0 || ONLY.includes(t.name) || t.name === 'direct');

    const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
    for (let r = 1; r <= ROUNDS; r++) {
      for (const t of targets) {
        const s = measure(tools, dir, t, r);
        samples.get(t.name)!.push(s);
        log(`round ${r} ${t.name}: ${round(s.wrk.rps)} req/s, p50/p90/p99 @${RATE} ${round(s.vegeta.p50ms, 3)}/${round(s.vegeta.p90ms, 3)}/${round(s.vegeta.p99ms, 3)} ms, CPU ${s.cpuUsPerReqSat}/${s.cpuUsPerReqFixed} µs/req, agent ${s.agentCpuUsPerReqSat}/${s.agentCpuUsPerReqFixed}, errors ${s.wrk.errors}+${s.vegeta.requests - (s.vegeta.statusCodes['200'] ?? 0)}, load ${s.loadavg}`);
      }
    }
    // Connection counts and TLS handshakes after the runs (kept with BENCH_KEEP_DIR): how often the pair reconnected.
    for (const [name, url] of Object.entries(agentUrls)) writeFileSync(join(dir, `stats-${name}.txt`), await adminText(`${url}/stats?filter=${encodeURIComponent('(cx_total|ssl.handshake|rq_total|rq_retry)$')}`));
    const rows = targets.map((t) => summarise(t, samples.get(t.name)!));
    const result = { ...meta, loadavgAtEnd: loadavg().map((x) => round(x, 2)), summary: rows, ratios: ratios(rows), samples: Object.fromEntries(samples) };
    writeFileSync(join(root, 'dist/tools/bench/dataplane-last.json'), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${table(rows)}\n\n${JSON.stringify({ ...meta, loadavgAtEnd: result.loadavgAtEnd, ratios: result.ratios }, null, 2)}\n`);
  } finally {
    await stopAll();
    if (process.env['BENCH_KEEP_DIR'] === undefined) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}

await main();
