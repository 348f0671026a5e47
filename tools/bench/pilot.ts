// Pilot benchmark (issue 5, item 7): the built pilot (dist/apps/pilot/main.js) on a real
// nats-server, 1,000 services × 10 endpoints applied through the REST API, and 1,000 concurrent
// SotW ADS streams from a load generator in another process (dist/tools/bench/pilot-load.js).
// Reports cold-start convergence, endpoint change → every interested stream ACKed, which
// streams got a push, and pilot RSS per connected proxy.
//
// Usage: npm run build && node tools/build/build.mjs bench-pilot bench-pilot-load &&
//        node dist/tools/bench/pilot.js [--services 1000] [--endpoints 10] [--streams 1000]
//          [--namespaces 10] [--visibility namespace|mesh] [--changes 5] [--pin] [--cpu-prof DIR]
// --visibility namespace (default): a Sidecar per namespace with egress `./*` (Istio's
//   recommended scoping), so each proxy sees the 100 services of its namespace.
// --visibility mesh: no Sidecar resources; every proxy sees all 1,000 services.
// --pilot PATH: another build of pilot (relative to the repository root), e.g. a saved baseline.
// --pin: pilot on CPU 1, the load generator (and nats, this driver) on CPU 0.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, NatsServer } from '@aviary/nats-runner';
import type { LoadNode } from './pilot-load';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const args = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length && !args[i + 1]!.startsWith('--') ? args[i + 1]! : fallback;
}
const flag = (name: string): boolean => args.includes(`--${name}`);

const SERVICES = Number(arg('services', '1000'));
const ENDPOINTS = Number(arg('endpoints', '10'));
const STREAMS = Number(arg('streams', '1000'));
const NAMESPACES = Number(arg('namespaces', '10'));
const VISIBILITY = arg('visibility', 'namespace');
const CHANGES = Number(arg('changes', '5'));
const PIN = flag('pin');
const CPU_PROF = arg('cpu-prof', '');
const PILOT = arg('pilot', 'dist/apps/pilot/main.js'); // relative to the repository root
const HEAP_SNAPSHOT = arg('heap-snapshot', ''); // a directory: pilot writes a heap snapshot there once converged
const NODE_FLAGS = arg('node-flags', '').split(' ').filter((f) => f !== ''); // extra node flags for pilot, e.g. "--max-semi-space-size=32"
const TOKEN = 'bench-token';
const BATCH = 500;
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- the mesh ----

const nsOf = (svc: number): string => `bench-${Math.floor((svc * NAMESPACES) / SERVICES)}`;
const hostOf = (svc: number): string => `svc-${svc}.${nsOf(svc)}.svc.cluster.local`;
const grpcSvc = (svc: number): boolean => svc % 5 === 4;
const hasSubsets = (svc: number): boolean => svc % 10 === 0;
function endpointIp(svc: number, ep: number): string {
  const g = svc * ENDPOINTS + ep;
  return `10.1.${Math.floor(g / 250)}.${(g % 250) + 1}`;
}
const version = (ep: number): string => (ep < Math.ceil(ENDPOINTS * 0.7) ? 'v1' : 'v2');

function serviceEntry(svc: number): string {
  const port = grpcSvc(svc) ? '{number: 9090, name: grpc, protocol: GRPC}' : '{number: 8080, name: http, protocol: HTTP}';
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-${svc}, namespace: ${nsOf(svc)}}
spec: {hosts: [${hostOf(svc)}], location: MESH_INTERNAL, ports: [${port}], resolution: STATIC, workloadSelector: {labels: {app: svc-${svc}}}}
`;
}

function workloadEntry(svc: number, ep: number, address = endpointIp(svc, ep)): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: svc-${svc}-${ep}, namespace: ${nsOf(svc)}}
spec: {address: ${address}, labels: {app: svc-${svc}, version: ${version(ep)}, security.istio.io/tlsMode: istio}, serviceAccount: svc-${svc}, locality: region1/zone${ep % 3}}
`;
}

function routing(svc: number): string[] {
  return [
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-${svc}, namespace: ${nsOf(svc)}}
spec: {host: ${hostOf(svc)}, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
`,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-${svc}, namespace: ${nsOf(svc)}}
spec:
  hosts: [${hostOf(svc)}]
  http:
  - match: [{headers: {end-user: {exact: canary}}}]
    route: [{destination: {host: ${hostOf(svc)}, subset: v2}}]
  - route: [{destination: {host: ${hostOf(svc)}, subset: v1}, weight: 90}, {destination: {host: ${hostOf(svc)}, subset: v2}, weight: 10}]
    retries: {attempts: 2, perTryTimeout: 1s}
    timeout: 5s
`,
  ];
}

function allDocuments(): string[] {
  const docs: string[] = [];
  if (VISIBILITY === 'namespace') {
    for (let n = 0; n < NAMESPACES; n++) {
      docs.push(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bench-${n}}
spec: {egress: [{hosts: ["./*"]}]}
`);
    }
  }
  for (let s = 0; s < SERVICES; s++) docs.push(serviceEntry(s));
  for (let s = 0; s < SERVICES; s++) for (let e = 0; e < ENDPOINTS; e++) docs.push(workloadEntry(s, e));
  for (let s = 0; s < SERVICES; s++) if (hasSubsets(s)) docs.push(...routing(s));
  return docs;
}

/** 4 in 5 streams are sidecars at the address of a workload (endpoint 0 of a service), 1 in 5 proxyless gRPC clients. */
function loadNodes(): LoadNode[] {
  const nodes: LoadNode[] = [];
  for (let i = 0; i < STREAMS; i++) {
    const nsIdx = i % NAMESPACES;
    const k = Math.floor(i / NAMESPACES); // index within the namespace
    const ns = `bench-${nsIdx}`;
    const svcPerNs = SERVICES / NAMESPACES;
    if (i % 5 === 4) {
      const ip = `10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`;
      nodes.push({
        id: `sidecar~${ip}~client-${k}.${ns}~${ns}.svc.cluster.local`,
        kind: 'proxyless',
        namespace: ns,
        metadata: { GENERATOR: 'grpc', NAMESPACE: ns, SERVICE_ACCOUNT: `client-${k % 4}`, LABELS: { app: `client-${k % 4}` } },
      });
    } else {
      const svc = nsIdx * svcPerNs + (k % svcPerNs);
      const ep = Math.floor(k / svcPerNs) % ENDPOINTS;
      nodes.push({
        id: `sidecar~${endpointIp(svc, ep)}~svc-${svc}-${ep}.${ns}~${ns}.svc.cluster.local`,
        kind: 'sidecar',
        namespace: ns,
        metadata: { NAMESPACE: ns, SERVICE_ACCOUNT: `svc-${svc}`, LABELS: { app: `svc-${svc}`, version: version(ep) } },
      });
    }
  }
  return nodes;
}

// ---- processes ----

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, CLK_TCK 100
}

/** Waits until `pid` used under 5 % of a CPU for two consecutive 500 ms windows. */
async function idle(pid: number, maxMs = 120_000): Promise<number> {
  const start = now();
  let quiet = 0;
  let last = cpuMs(pid);
  while (now() - start < maxMs) {
    await sleep(500);
    const c = cpuMs(pid);
    quiet = c - last < 25 ? quiet + 1 : 0;
    last = c;
    if (quiet >= 2) return now() - start;
  }
  throw new Error('pilot did not settle');
}

async function startPilot(natsUrl: string, adminPort: number, xdsPort: number): Promise<ChildProcess> {
  const nodeArgs = [
    '--enable-source-maps',
    ...NODE_FLAGS,
    ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : []),
    ...(HEAP_SNAPSHOT ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_SNAPSHOT}`] : []),
    join(root, PILOT),
  ];
  const [cmd, cmdArgs] = PIN ? ['taskset', ['-c', '1', process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(cmd, cmdArgs as string[], {
    env: {
      ...process.env,
      AVIARY_NATS_URL: natsUrl,
      AVIARY_ADMIN_PORT: String(adminPort),
      AVIARY_XDS_PORT: String(xdsPort),
      AVIARY_ADMIN_TOKEN: TOKEN,
      AVIARY_LOG_LEVEL: 'info',
      AVIARY_MAX_CONFIG_DOCUMENTS: String(BATCH),
      AVIARY_ADMIN_BODY_LIMIT: String(8 * 1024 * 1024),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let ready = false;
  child.stdout!.on('data', (d: Buffer) => {
    if (ready) return;
    out += d.toString();
    if (/"msg":"ready"/.test(out)) ready = true;
  });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`pilot: ${d.toString()}`));
  const deadline = Date.now() + 30_000;
  while (!ready) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`pilot did not become ready:\n${out.slice(-4000)}`);
    await sleep(50);
  }
  return child;
}

/**
 * Applies manifests, one fresh connection per request: a keep-alive socket that the server
 * closes while its event loop is busy would fail the request half-way (and a retry would then
 * race the first attempt, which the server may still be applying).
 */
function post(adminPort: number, yaml: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(yaml);
    const req = request(
      { host: '127.0.0.1', port: adminPort, path: '/api/v1/config', method: 'POST', agent: false, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml', 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`POST /api/v1/config: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 2000)}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

type LoadMsg = { evt: string; [k: string]: unknown };

class LoadProcess {
  private readonly waiting = new Map<string, (m: LoadMsg) => void>();
  constructor(readonly child: ChildProcess) {
    child.on('message', (m: LoadMsg) => {
      const w = this.waiting.get(m.evt);
      if (w) {
        this.waiting.delete(m.evt);
        w(m);
      }
    });
  }
  static start(): LoadProcess {
    const script = join(here, 'pilot-load.js');
    const child = PIN
      ? spawn('taskset', ['-c', '0', process.execPath, '--enable-source-maps', script], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      : fork(script, [], { execArgv: ['--enable-source-maps'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new LoadProcess(child);
  }
  next(evt: string, timeoutMs = 600_000): Promise<LoadMsg> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`load generator: no ${evt} within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.set(evt, (m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
  }
  send(m: object): void {
    this.child.send(m);
  }
}

function quantiles(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number): number => Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN) * 10) / 10;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: Math.round((s.at(-1) ?? NaN) * 10) / 10 };
}

// ---- main ----

async function main(): Promise<void> {
  const result: Record<string, unknown> = {
    machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100) },
    params: { pilot: PILOT, services: SERVICES, endpointsPerService: ENDPOINTS, streams: STREAMS, namespaces: NAMESPACES, visibility: VISIBILITY, pin: PIN, registry: 'ServiceEntry (workloadSelector) + WorkloadEntry' },
  };
  const log = (msg: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
  const nats = await NatsServer.start();
  let pilot: ChildProcess | undefined;
  let load: LoadProcess | undefined;
  let statusNc: NatsConnection | undefined;
  let statusCounts: Record<string, number> = {};
  try {
    const adminPort = await freePort();
    const xdsPort = await freePort();
    pilot = await startPilot(nats.url, adminPort, xdsPort);
    const pid = pilot.pid!; // taskset execs node: same pid
    result['rssKiBEmpty'] = rssKiB(pid);

    // 1. Config through the REST API, in batches of BATCH documents.
    const docs = allDocuments();
    const applyStart = now();
    const cpuApply0 = cpuMs(pid);
    for (let i = 0; i < docs.length; i += BATCH) await post(adminPort, docs.slice(i, i + BATCH).join('---\n'));
    const applyMs = now() - applyStart;
    const settleMs = await idle(pid);
    result['apply'] = { documents: docs.length, batches: Math.ceil(docs.length / BATCH), restMs: Math.round(applyMs), settledAfterMs: Math.round(settleMs), pilotCpuMs: cpuMs(pid) - cpuApply0 };
    log(`applied ${docs.length} documents in ${Math.round(applyMs)} ms`);
    const rssBefore = rssKiB(pid);
    if (HEAP_SNAPSHOT) {
      // One snapshot before the streams and one with them (below), to diff what each stream keeps.
      process.kill(pid, 'SIGUSR2');
      await idle(pid);
    }

    // xDS status events on NATS (pilot publishes them; counted from here on).
    statusNc = await connect({ servers: nats.url });
    statusCounts = {};
    statusNc.subscribe('aviary.xds.v1.status', {
      callback: (_e, m) => {
        const ev = (m.json() as { data: { event: string } }).data.event;
        statusCounts[ev] = (statusCounts[ev] ?? 0) + 1;
      },
    });

    // 2. Cold start: N streams at once against the loaded pilot.
    load = LoadProcess.start();
    await load.next('ready');
    const nodes = loadNodes();
    const cpuCold0 = cpuMs(pid);
    const convergedP = load.next('converged', 300_000);
    load.send({ cmd: 'start', port: xdsPort, nodes });
    const progress = setInterval(() => {
      load!.send({ cmd: 'status' });
      void load!.next('status', 5_000).then((s) => log(`status ${JSON.stringify(s)}`), () => undefined);
    }, 10_000);
    const conv = await convergedP.finally(() => clearInterval(progress));
    const coldCpu = cpuMs(pid) - cpuCold0;
    result['coldStart'] = {
      allConvergedMs: Math.round((conv['lastAt'] as number) - (conv['startedAt'] as number)),
      perStreamP50Ms: Math.round(conv['p50ms'] as number),
      perStreamP99Ms: Math.round(conv['p99ms'] as number),
      pilotCpuMs: coldCpu,
      loadCpuMs: Math.round(conv['loadCpuMs'] as number),
      resourcesHeldByAllStreams: conv['resourcesHeld'],
      responses: conv['responses'],
      bytesToProxies: conv['bytesIn'],
      loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    log(`cold start ${JSON.stringify(result['coldStart'])}`);
    await idle(pid);
    await sleep(2_000);
    const rssAfter = rssKiB(pid);
    result['memory'] = { rssKiBBeforeStreams: rssBefore, rssKiBWithStreams: rssAfter, kiBPerProxy: Math.round(((rssAfter - rssBefore) / STREAMS) * 10) / 10 };
    log(`memory ${JSON.stringify(result['memory'])}`);
    await statusNc.flush();
    result['statusEventsAfterColdStart'] = { ...statusCounts };
    log(`xDS status events ${JSON.stringify(statusCounts)}`);
    if (HEAP_SNAPSHOT) {
      process.kill(pid, 'SIGUSR2');
      await idle(pid);
      log(`heap snapshot written to ${HEAP_SNAPSHOT}`);
    }

    // 3. Endpoint changes: one WorkloadEntry's address, through the REST API.
    const svc = Math.floor(SERVICES * 0.35 / 10) * 10; // a service with DR subsets, in the middle namespace
    const ep = ENDPOINTS - 1; // no sidecar runs at this address
    const changes: Array<Record<string, unknown>> = [];
    const allAcks: number[] = [];
    for (let c = 0; c < CHANGES; c++) {
      const address = `10.9.${c}.1`;
      load.send({ cmd: 'mark', id: c, address, host: hostOf(svc) });
      await load.next('marked');
      const cpu0 = cpuMs(pid);
      const t0 = now();
      await post(adminPort, workloadEntry(svc, ep, address));
      const restMs = now() - t0;
      await sleep(3_000);
      await idle(pid);
      load.send({ cmd: 'report', id: c });
      const r = await load.next('report');
      const interested = r['interested'] as number[];
      const acked = r['acked'] as Array<{ stream: number; ms: number }>;
      const pushed = r['pushed'] as Array<{ stream: number; types: Record<string, number> }>;
      const lat = acked.map((a) => a.ms - t0);
      allAcks.push(...lat);
      const interestedSet = new Set(interested);
      const byType: Record<string, number> = {};
      for (const p of pushed) for (const t of Object.keys(p.types)) byType[t.split('.').at(-1)!] = (byType[t.split('.').at(-1)!] ?? 0) + 1;
      const change = {
        change: c,
        restMs: Math.round(restMs),
        interestedStreams: interested.length,
        ackedNewEds: acked.length,
        missing: interested.filter((i) => !acked.some((a) => a.stream === i)).length,
        streamsPushed: pushed.length,
        streamsPushedNotInterested: pushed.filter((p) => !interestedSet.has(p.stream)).length,
        streamsPushedByType: byType,
        ackMs: quantiles(lat),
        pilotCpuMs: cpuMs(pid) - cpu0,
      };
      changes.push(change);
      log(`change ${JSON.stringify(change)}`);
    }
    result['endpointChange'] = { service: hostOf(svc), workloadEntry: `${nsOf(svc)}/svc-${svc}-${ep}`, changes, allChanges: quantiles(allAcks) };

    // 4. Pilot's own view: every stream connected and EDS ACKed.
    const proxies = (await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/proxies`)).json()) as { proxies: Array<{ kind: string; types: Array<{ type: string; synced: boolean }> }> };
    const list = proxies.proxies;
    result['pilotView'] = {
      proxies: list.length,
      byKind: list.reduce<Record<string, number>>((m, p) => ({ ...m, [p.kind]: (m[p.kind] ?? 0) + 1 }), {}),
      allTypesSynced: list.filter((p) => p.types.length === 4 && p.types.every((t) => t.synced)).length,
    };
    result['loadavgAtEnd'] = loadavg().map((x) => Math.round(x * 100) / 100);
    result['rssKiBAtEnd'] = rssKiB(pid);
    await statusNc.flush();
    result['statusEventsTotal'] = { ...statusCounts };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await statusNc?.close();
    load?.send({ cmd: 'stop' });
    await sleep(300);
    if (pilot && pilot.exitCode === null) {
      const exited = new Promise((r) => pilot!.once('exit', r));
      pilot.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
    }
    await nats.stop();
  }
}

await main();
