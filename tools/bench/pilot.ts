// Pilot benchmark (issue 5, item 7; issue 19): what it measures and its options are USAGE below
// (`node dist/tools/bench/pilot.js --help` prints it).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { compareRounds, comparisonTable, type RoundMetrics } from './compare-stats';
import { median } from './dataplane-parse';
import { onInterrupt, stopOnInterrupt } from './interrupt';
import { benchArgs } from './cli';
import { ensureIstiod, goCollectGarbage, startIstiod, startKube, run, v8CollectGarbage, v8StartHeapSampling, v8StartProfile, type AfterGc, type Kube } from './control-planes';
import type { LoadNode } from './pilot-load';
import { benchMesh } from './bench-mesh';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
/** What `--help` prints; an unknown option or a bad value prints it too, and nothing runs. */
const USAGE = `Pilot benchmark (issue 5, item 7): the built pilot (dist/apps/pilot/main.js) on a real
nats-server, 1,000 services × 10 endpoints applied through the REST API, and 1,000 concurrent
SotW ADS streams from a load generator in another process (dist/tools/bench/pilot-load.js).
Reports cold-start convergence, endpoint change → every interested stream ACKed, which
streams got a push, and pilot RSS per connected proxy.

Usage: npm run build && node tools/build/build.mjs bench-pilot bench-pilot-load &&
       node dist/tools/bench/pilot.js [--preset default|scale-10k] [--services 1000] [--endpoints 10]
         [--streams 1000] [--namespaces 10] [--batch 500] [--visibility namespace|mesh] [--changes 5]
         [--pin] [--cpu-prof DIR] [--cold-prof DIR] [--cold-heap-prof DIR [--cold-heap-all]] [--gc-memory] [--pilot-log FILE] [--node-flags=FLAGS]
         [--heap-snapshot DIR] [--pilot PATH] [--delta] [--load-flags=FLAGS]
--cold-prof DIR: a V8 CPU profile of pilot covering only the cold start (through an inspector
  port, as --gc-memory opens), written as DIR/pilot-cold-start.cpuprofile.
--cold-heap-prof DIR: V8's sampling heap profile of pilot covering only the cold start, of the
  objects that lived long enough to be promoted to the old generation (those a young-generation
  collection freed are left out), written as DIR/pilot-cold-start-promoted.heapprofile; with
  --cold-heap-all, of every allocation (DIR/pilot-cold-start-all.heapprofile).
--visibility namespace (default): a Sidecar per namespace with egress \`./*\` (Istio's
  recommended scoping), so each proxy sees the 100 services of its namespace.
--visibility mesh: no Sidecar resources; every proxy sees all 1,000 services.
--pilot PATH: another build of pilot (relative to the repository root), e.g. a saved baseline.
--delta: every stream uses delta ADS (DeltaAggregatedResources) instead of state of the world.
--pin: pilot on CPU 1, the load generator (and nats, this driver) on CPU 0.
--load-flags=FLAGS: extra node flags for the load generator, e.g. "--trace-gc" (its stdout goes
  to this driver's stderr). The load generator reconnects a stream that ends as Envoy does
  (jittered backoff from 500 ms to 30 s); reconnects are logged and counted in the result
  (coldStart.reconnects, per change, and "reconnects"): a run with any did not hold every stream.

--vs-istiod [--rounds 2] [--istiod PATH] [--only pilot|istiod] [--change-prof DIR]: the same mesh and load against pilot AND istiod
  (pilot-discovery from tools/istio/ensure-istiod.sh, or PATH), interleaved (pilot, istiod,
  istiod, pilot, … over 2 × rounds runs), both reading the mesh as CRDs from one real
  kube-apiserver (tools/k8s/start-cluster.sh) and the endpoint changes PATCHed there; every
  stream is a sidecar (istiod sends no clusters to a proxyless client's wildcard CDS). Per round:
  startup to config loaded, cold start, endpoint changes, bytes, and memory per proxy before and
  after a forced collection (V8 inspector / Go pprof gc=1). Ends with a median table and the
  ratios pilot ÷ istiod. See docs/benchmarks.md "Pilot vs istiod". --only runs one side's
  rounds (no ratios), e.g. to profile; --change-prof DIR writes a V8 CPU profile of pilot
  covering only the endpoint changes of each round (through the inspector it already has).
`;
const cli = benchArgs(USAGE, {
  preset: 'string', services: 'string', endpoints: 'string', streams: 'string', namespaces: 'string', batch: 'string',
  visibility: 'string', changes: 'string', pin: 'boolean', 'cpu-prof': 'string', 'cold-prof': 'string', 'cold-heap-prof': 'string', 'cold-heap-all': 'boolean', 'gc-memory': 'boolean',
  'pilot-log': 'string', 'node-flags': 'string', pilot: 'string', 'heap-snapshot': 'string', delta: 'boolean',
  'vs-istiod': 'boolean', rounds: 'string', istiod: 'string', only: 'string', 'change-prof': 'string', 'load-flags': 'string',
});
const arg = (name: string, fallback: string): string => cli.str(name, fallback);
const flag = (name: string): boolean => cli.flag(name);

/**
 * Named configurations (`--preset NAME`): defaults for the size flags, each still overridable.
 * - `default`: 1,000 services × 10 endpoints in 10 namespaces, 1,000 streams (issue 5, item 7).
 * - `scale-10k`: 10,000 services × 10 endpoints in 100 namespaces, 5,000 streams (issue 19,
 *   item 4). With the per-namespace Sidecar every proxy still sees the 100 services of its
 *   namespace, as in `default`, so the mesh is 10× larger and the proxies 5× more while each
 *   proxy's config keeps its size. Batches of 5,000 documents keep the REST apply at 23 POSTs.
 */
const presets: Record<string, Record<string, string>> = {
  default: { services: '1000', endpoints: '10', streams: '1000', namespaces: '10', batch: '500' },
  'scale-10k': { services: '10000', endpoints: '10', streams: '5000', namespaces: '100', batch: '5000' },
};
const PRESET = arg('preset', 'default');
const preset = presets[PRESET];
if (!preset) throw new Error(`--preset ${PRESET}: unknown; one of ${Object.keys(presets).join(', ')}`);
const SERVICES = cli.int('services', Number(preset['services']!), 1);
const ENDPOINTS = cli.int('endpoints', Number(preset['endpoints']!), 1);
const STREAMS = cli.int('streams', Number(preset['streams']!), 1);
const NAMESPACES = cli.int('namespaces', Number(preset['namespaces']!), 1);
const VISIBILITY = arg('visibility', 'namespace');
const CHANGES = cli.int('changes', 5, 0);
const PIN = flag('pin');
const CPU_PROF = arg('cpu-prof', '');
const COLD_PROF = arg('cold-prof', ''); // a directory: pilot's CPU profile of the cold start only (pilot-only run)
const COLD_HEAP_PROF = arg('cold-heap-prof', ''); // a directory: pilot's sampling heap profile of the cold start (promoted objects)
const COLD_HEAP_ALL = flag('cold-heap-all'); // … of every allocation instead
const PILOT = arg('pilot', 'dist/apps/pilot/main.js'); // relative to the repository root
const HEAP_SNAPSHOT = arg('heap-snapshot', ''); // a directory: pilot writes a heap snapshot there once converged
const PILOT_LOG = arg('pilot-log', ''); // a file: pilot's stdout (its log, and e.g. --trace-gc output from --node-flags) is written there
const NODE_FLAGS = arg('node-flags', '').split(' ').filter((f) => f !== ''); // extra node flags for pilot, e.g. "--max-semi-space-size=32"
const LOAD_FLAGS = arg('load-flags', '').split(' ').filter((f) => f !== ''); // extra node flags for the load generator, e.g. "--trace-gc"
const VS_ISTIOD = flag('vs-istiod');
const GC_MEMORY = flag('gc-memory'); // pilot-only run: memory also after two forced collections (pilot gets --inspect)
const DELTA = flag('delta'); // delta ADS instead of state of the world, for every stream
const ROUNDS = cli.int('rounds', 2, 1);
const ISTIOD = arg('istiod', ''); // a pilot-discovery binary; default: tools/istio/ensure-istiod.sh
const ONLY = arg('only', ''); // --vs-istiod with one side only: 'pilot' or 'istiod'
const CHANGE_PROF = arg('change-prof', ''); // a directory: pilot's CPU profile of each round's endpoint changes
if (ONLY !== '' && ONLY !== 'pilot' && ONLY !== 'istiod') throw new Error(`--only: want pilot or istiod, got ${JSON.stringify(ONLY)}`);
const TOKEN = 'bench-token';
const BATCH = cli.int('batch', Number(preset['batch']!), 1); // documents per POST /api/v1/config (and pilot's AVIARY_MAX_CONFIG_DOCUMENTS)
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- the mesh ----

const { nsOf, hostOf, workloadEntry, allDocuments, loadNodes } = benchMesh({ services: SERVICES, endpoints: ENDPOINTS, namespaces: NAMESPACES, streams: STREAMS, visibility: VISIBILITY });

// ---- processes ----

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, CLK_TCK 100
}

/**
 * CPU of `pid` split: user and system time of the whole process, the time of its main thread
 * (the JS thread), and of every other thread alive (`tid` → ms): V8's platform workers
 * (concurrent marking, parallel scavenges, compilers), libuv's pool, the inspector. Node names
 * them all `node`, so they are told apart only by thread id.
 */
function cpuSplitMs(pid: number): { userMs: number; sysMs: number; mainThreadMs: number; threadsMs: Map<string, number> } {
  const fields = (path: string): string[] => readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
  const ms = (f: string[]): number => ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  const all = fields(`/proc/${pid}/stat`);
  const threadsMs = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (tid === String(pid)) continue;
    try {
      threadsMs.set(tid, ms(fields(`/proc/${pid}/task/${tid}/stat`)));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return { userMs: (Number(all[11]) * 1000) / 100, sysMs: (Number(all[12]) * 1000) / 100, mainThreadMs: ms(fields(`/proc/${pid}/task/${pid}/stat`)), threadsMs };
}

/**
 * The CPU between two `cpuSplitMs` readings: `mainThread` and `otherThreads` (the whole process
 * minus the main thread, so also threads that ended in between) add up to `user + sys`;
 * `byThread` is the other threads' share, busiest first, of those alive at the second reading.
 */
function cpuSplitBetween(a: ReturnType<typeof cpuSplitMs>, b: ReturnType<typeof cpuSplitMs>): Record<string, unknown> {
  const user = b.userMs - a.userMs;
  const sys = b.sysMs - a.sysMs;
  const mainThread = b.mainThreadMs - a.mainThreadMs;
  const byThread = [...b.threadsMs]
    .map(([tid, ms]) => ({ tid: Number(tid), ms: ms - (a.threadsMs.get(tid) ?? 0) }))
    .filter((t) => t.ms > 0)
    .sort((x, y) => y.ms - x.ms);
  return { user, sys, mainThread, otherThreads: user + sys - mainThread, byThread };
}

/**
 * The CPU `pid` uses while nothing changes, in ms per second over `windowMs`: with its streams
 * open this is its steady cost (keepalives, timers, metrics), which every change's CPU window
 * (the PATCH, 3 s, then `idle`) also contains.
 */
async function idleCpuRate(pid: number, windowMs = 10_000): Promise<number> {
  const c0 = cpuMs(pid);
  const t0 = now();
  await sleep(windowMs);
  return Math.round(((cpuMs(pid) - c0) * 1000 * 10) / (now() - t0)) / 10;
}

/** Waits until `pid` used under 5 % of a CPU for two consecutive 500 ms windows. */
async function idle(pid: number, maxMs = 300_000): Promise<number> {
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
  throw new Error(`process ${pid} did not settle within ${maxMs} ms`);
}

async function startPilot(natsUrl: string, adminPort: number, xdsPort: number, extra: { env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<ChildProcess> {
  const nodeArgs = [
    '--enable-source-maps',
    ...NODE_FLAGS,
    ...(extra.nodeArgs ?? []),
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
      AVIARY_MAX_CONFIG_KEYS: String(Math.max(20_000, BATCH * 40)), // a WorkloadEntry has about 15 keys
      AVIARY_ADMIN_BODY_LIMIT: String(8 * 1024 * 1024),
      ...extra.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stopOnInterrupt(child);
  let out = '';
  let ready = false;
  const logFile = PILOT_LOG ? createWriteStream(PILOT_LOG, { flags: 'a' }) : undefined;
  child.stdout!.on('data', (d: Buffer) => {
    logFile?.write(d);
    if (ready) return;
    out += d.toString();
    if (/"msg":"ready"/.test(out)) ready = true;
  });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`pilot: ${d.toString()}`));
  const deadline = Date.now() + 120_000;
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
    const execArgv = ['--enable-source-maps', ...LOAD_FLAGS];
    // Its stdout (e.g. --trace-gc) goes to this driver's stderr: stdout is the result's JSON.
    const stdio: Array<'ignore' | 'inherit' | 'ipc' | number> = ['ignore', 2, 'inherit', 'ipc'];
    const child = PIN ? spawn('taskset', ['-c', '0', process.execPath, ...execArgv, script], { stdio }) : fork(script, [], { execArgv, stdio });
    stopOnInterrupt(child);
    return new LoadProcess(child);
  }
  next(evt: string, timeoutMs = 600_000): Promise<LoadMsg> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`load generator: no ${evt} within ${timeoutMs} ms`)), timeoutMs);
      t.unref(); // the child's IPC channel keeps the process alive while a reply can come
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

/** A service with DR subsets, in the middle namespace; its last endpoint has no sidecar. */
const changedService = (): number => Math.floor((SERVICES * 0.35) / 10) * 10;
/** The API server path of the WorkloadEntry the endpoint changes PATCH (its last endpoint: no sidecar runs at that address). */
const changedWorkloadEntryPath = (): string => {
  const svc = changedService();
  return `/apis/networking.istio.io/v1/namespaces/${nsOf(svc)}/workloadentries/svc-${svc}-${ENDPOINTS - 1}`;
};

type Log = (msg: string) => void;

/** Opens the streams against an idle, loaded control plane (process `pid`) and waits until every one converged. */
async function coldStart(load: LoadProcess, pid: number, port: number, nodes: LoadNode[], log: Log): Promise<Record<string, unknown>> {
  const cpuCold0 = cpuMs(pid);
  const split0 = cpuSplitMs(pid);
  const convergedP = load.next('converged', 600_000);
  load.send({ cmd: 'start', port, nodes, mode: DELTA ? 'delta' : 'sotw' });
  // One status request at a time, its reply logged whenever it comes: a load generator busy for
  // seconds answers late, and a reply dropped on a timeout would lose the reading (its event-loop
  // maximum is reset by every answer).
  let asking = false;
  const progress = setInterval(() => {
    if (asking) return;
    asking = true;
    load.send({ cmd: 'status' });
    void load
      .next('status', 120_000)
      .then((st) => log(`status ${JSON.stringify(st)}`), () => undefined)
      .finally(() => (asking = false));
  }, 10_000);
  const conv = await convergedP.finally(() => clearInterval(progress));
  const cold = {
    allConvergedMs: Math.round((conv['lastAt'] as number) - (conv['startedAt'] as number)),
    perStreamP50Ms: Math.round(conv['p50ms'] as number),
    perStreamP99Ms: Math.round(conv['p99ms'] as number),
    pilotCpuMs: cpuMs(pid) - cpuCold0,
    pilotCpuSplitMs: cpuSplitBetween(split0, cpuSplitMs(pid)),
    loadCpuMs: Math.round(conv['loadCpuMs'] as number),
    resourcesHeldByAllStreams: conv['resourcesHeld'],
    endpointsHeldByAllStreams: conv['endpointsHeld'],
    responses: conv['responses'],
    bytesToProxies: conv['bytesIn'],
    reconnects: conv['reconnects'],
    streamsReconnected: conv['streamsReconnected'],
    loadGenerator: { memory: conv['memory'], eventLoop: conv['eventLoop'] },
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  };
  log(`cold start ${JSON.stringify(cold)}`);
  if ((conv['reconnects'] as number) > 0) log(`WARNING: converged only after ${String(conv['reconnects'])} reconnects of ${String(conv['streamsReconnected'])} streams (see the status lines' firstError)`);
  return cold;
}

/**
 * CHANGES changes of endpoint ENDPOINTS-1 of `svc` to a new address each (10.9.<seq>.1 from
 * `firstSeq`), applied by `apply`; per change, which streams were interested, when each ACKed the
 * EDS response carrying the address (ms after `apply` was called), and which got any push.
 */
async function endpointChanges(
  load: LoadProcess,
  pid: number,
  svc: number,
  firstSeq: number,
  apply: (address: string) => Promise<void>,
  log: Log,
  idleMsPerS: number,
  profile?: () => Promise<() => Promise<unknown>>,
): Promise<{ changes: Array<Record<string, unknown>>; allAcks: number[]; profiles: unknown[]; reconnects: Reconnects | undefined }> {
  const changes: Array<Record<string, unknown>> = [];
  let reconnects: Reconnects | undefined;
  const allAcks: number[] = [];
  // Each profile covers the PATCH and the 3 s after it, not the wait for idleness (the profiler's own cost would delay that).
  const profiles: unknown[] = [];
  for (let c = 0; c < CHANGES; c++) {
    const seq = firstSeq + c;
    const address = `10.9.${Math.floor(seq / 250)}.${(seq % 250) + 1}`;
    load.send({ cmd: 'mark', id: c, address, host: hostOf(svc) });
    await load.next('marked');
    const stopProfile = await profile?.();
    const cpu0 = cpuMs(pid);
    const split0 = cpuSplitMs(pid);
    const t0 = now();
    await apply(address);
    const restMs = now() - t0;
    await sleep(3_000);
    if (stopProfile) profiles.push(await stopProfile());
    await idle(pid);
    load.send({ cmd: 'report', id: c });
    const r = await load.next('report');
    reconnects = { total: r['reconnects'] as number, streams: r['streamsReconnected'] as number };
    const cpu1 = cpuMs(pid);
    const split1 = cpuSplitMs(pid);
    const windowMs = now() - t0;
    const interested = r['interested'] as number[];
    const acked = r['acked'] as Array<{ stream: number; ms: number }>;
    const pushed = r['pushed'] as Array<{ stream: number; types: Record<string, number> }>;
    const lat = acked.map((a) => a.ms - t0);
    allAcks.push(...lat);
    const interestedSet = new Set(interested);
    const ackedSet = new Set(acked.map((a) => a.stream));
    const byType: Record<string, number> = {};
    for (const p of pushed) for (const t of Object.keys(p.types)) byType[t.split('.').at(-1)!] = (byType[t.split('.').at(-1)!] ?? 0) + 1;
    const change = {
      change: c,
      address,
      restMs: Math.round(restMs),
      interestedStreams: interested.length,
      ackedNewEds: acked.length,
      missing: interested.filter((i) => !ackedSet.has(i)).length,
      streamsPushed: pushed.length,
      streamsPushedNotInterested: pushed.filter((p) => !interestedSet.has(p.stream)).length,
      streamsPushedByType: byType,
      bytesToProxies: r['bytesSinceMark'],
      reconnects: r['reconnectsSinceMark'],
      ackMs: quantiles(lat),
      pilotCpuMs: cpu1 - cpu0,
      // The same window's CPU less what the idle process uses in that time (`idleCpuRate`).
      pilotCpuAboveIdleMs: Math.max(0, Math.round(cpu1 - cpu0 - (idleMsPerS * windowMs) / 1000)),
      windowMs: Math.round(windowMs),
      pilotCpuSplitMs: cpuSplitBetween(split0, split1),
    };
    changes.push(change);
    log(`change ${JSON.stringify(change)}`);
    if ((r['reconnectsSinceMark'] as number) > 0) log(`WARNING: ${String(r['reconnectsSinceMark'])} reconnects during change ${c}: ${JSON.stringify(r['errors'])}`);
  }
  return { changes, allAcks, profiles, reconnects };
}

/** Reconnects of all streams since they were opened, and how many streams reconnected. */
type Reconnects = { total: number; streams: number };

/** The run's reconnects (cold start and changes): any means some stream's connection dropped. */
function reconnectsOf(cold: Record<string, unknown>, afterChanges: Reconnects | undefined): Reconnects & { duringColdStart: number; heldEveryStream: boolean } {
  const total = afterChanges ?? { total: cold['reconnects'] as number, streams: cold['streamsReconnected'] as number };
  return { ...total, duringColdStart: cold['reconnects'] as number, heldEveryStream: total.total === 0 };
}

// ---- main ----

async function main(): Promise<void> {
  const result: Record<string, unknown> = {
    machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100) },
    params: { preset: PRESET, batch: BATCH, ads: DELTA ? 'delta' : 'sotw', pilot: PILOT, services: SERVICES, endpointsPerService: ENDPOINTS, streams: STREAMS, namespaces: NAMESPACES, visibility: VISIBILITY, pin: PIN, registry: 'ServiceEntry (workloadSelector) + WorkloadEntry' },
  };
  const log = (msg: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
  const nats = await NatsServer.start();
  onInterrupt(() => nats.stop());
  let pilot: ChildProcess | undefined;
  let load: LoadProcess | undefined;
  let statusNc: NatsConnection | undefined;
  let statusCounts: Record<string, number> = {};
  try {
    const [adminPort, xdsPort, inspectPort] = await Promise.all([freePort(), freePort(), freePort()]);
    // --gc-memory: pilot runs with an inspector port, used only to force collections for the memory
    // readings. Opt-in: whether the open inspector costs pilot CPU has not been measured apart yet.
    pilot = await startPilot(nats.url, adminPort, xdsPort, GC_MEMORY || COLD_PROF || COLD_HEAP_PROF ? { nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`] } : {});
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
    const gc0 = GC_MEMORY ? await v8CollectGarbage(inspectPort) : undefined;
    if (gc0) await sleep(2_000);
    const rssBeforeGc = rssKiB(pid);
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
    const stopColdProfile = COLD_PROF ? await v8StartProfile(inspectPort) : undefined;
    const stopColdHeapProfile = COLD_HEAP_PROF ? await v8StartHeapSampling(inspectPort, !COLD_HEAP_ALL) : undefined;
    result['coldStart'] = await coldStart(load, pid, xdsPort, loadNodes(), log);
    if (stopColdHeapProfile) {
      mkdirSync(COLD_HEAP_PROF, { recursive: true });
      const file = join(COLD_HEAP_PROF, `pilot-cold-start-${COLD_HEAP_ALL ? 'all' : 'promoted'}.heapprofile`);
      writeFileSync(file, JSON.stringify(await stopColdHeapProfile()));
      log(`heap profile (${COLD_HEAP_ALL ? 'all allocations' : 'promoted objects'}) of the cold start in ${file}`);
    }
    if (stopColdProfile) {
      mkdirSync(COLD_PROF, { recursive: true });
      const file = join(COLD_PROF, 'pilot-cold-start.cpuprofile');
      writeFileSync(file, JSON.stringify(await stopColdProfile()));
      log(`CPU profile of the cold start in ${file}`);
    }
    await idle(pid);
    await sleep(2_000);
    const rssAfter = rssKiB(pid);
    const gc1 = gc0 ? await v8CollectGarbage(inspectPort) : undefined;
    if (gc1) await sleep(2_000);
    const rssAfterGc = rssKiB(pid);
    result['memory'] = {
      rssKiBBeforeStreams: rssBefore,
      rssKiBWithStreams: rssAfter,
      kiBPerProxy: Math.round(((rssAfter - rssBefore) / STREAMS) * 10) / 10,
      // As in --vs-istiod: two forced full collections before each reading, per proxy from the collected baseline.
      ...(gc0 &&
        gc1 && {
          afterGc: {
            rssKiB: { beforeStreams: rssBeforeGc, withStreams: rssAfterGc },
            liveKiB: { beforeStreams: Math.round(kib(gc0.liveBytes)), withStreams: Math.round(kib(gc1.liveBytes)) },
            kiBPerProxy: { rssBeforeGc: perProxy(rssBeforeGc, rssAfter), rssAfterGc: perProxy(rssBeforeGc, rssAfterGc), liveAfterGc: perProxy(kib(gc0.liveBytes), kib(gc1.liveBytes)) },
          },
        }),
    };
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
    const svc = changedService();
    const ep = ENDPOINTS - 1; // no sidecar runs at this address
    const idleMsPerS = await idleCpuRate(pid);
    result['idleCpuWithStreams'] = { msPerSecond: idleMsPerS };
    log(`idle CPU with ${STREAMS} streams: ${idleMsPerS} ms per s`);
    const { changes, allAcks, reconnects } = await endpointChanges(load, pid, svc, 0, (address) => post(adminPort, workloadEntry(svc, ep, address)), log, idleMsPerS);
    result['endpointChange'] = { service: hostOf(svc), workloadEntry: `${nsOf(svc)}/svc-${svc}-${ep}`, changes, allChanges: quantiles(allAcks) };
    result['reconnects'] = reconnectsOf(result['coldStart'] as Record<string, unknown>, reconnects);

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

// ---- pilot vs istiod (--vs-istiod) ----

interface Target {
  readonly name: 'pilot' | 'istiod';
  readonly pid: number;
  readonly xdsPort: number;
  forceGc(): Promise<AfterGc>;
  /** Starts a CPU profile; the returned function stops it and gives the profile (pilot only). */
  profile?(): Promise<() => Promise<unknown>>;
  stop(): Promise<void>;
}

const kib = (bytes: number): number => bytes / 1024;
const perProxy = (before: number, after: number): number => Math.round(((after - before) / STREAMS) * 10) / 10;

/** The mesh as CRDs in the API server: the chart's CRDs, the namespaces, then every document. */
async function loadKube(kube: Kube, log: Log): Promise<Record<string, unknown>> {
  const t0 = now();
  await kube.kubectl(['apply', '-f', join(root, 'charts', 'aviary', 'crds')]);
  await kube.kubectl(['wait', '--for', 'condition=Established', '--timeout=120s', 'crd', '--all']);
  const namespaces = ['istio-system', ...Array.from({ length: NAMESPACES }, (_, n) => `bench-${n}`)];
  await kube.kubectl(['create', '-f', '-'], namespaces.map((n) => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${n}}\n`).join('---\n'));
  const docs = allDocuments();
  // Parallel kubectl processes, each creating a slice: one process would take minutes.
  const parts = 4;
  const size = Math.ceil(docs.length / parts);
  await Promise.all(Array.from({ length: parts }, (_, i) => kube.kubectl(['create', '-f', '-', '-o', 'name'], docs.slice(i * size, (i + 1) * size).join('---\n'))));
  const ms = Math.round(now() - t0);
  log(`created ${docs.length} mesh objects in the API server in ${ms} ms`);
  return { documents: docs.length, createMs: ms };
}

/**
 * The API server's first PATCH of a WorkloadEntry takes 45–55 ms, later ones 10–15 ms (its
 * patch and managed-fields machinery for the CRD is built on first use). ABBA order puts pilot
 * first, so every run's first change was pilot's and paid it. Two PATCHes of an annotation that
 * neither control plane reads, on the WorkloadEntry the changes patch and before any round, keep
 * that one-time cost out of the rounds, as istiod's CA bootstrap is.
 */
async function warmPatchPath(kube: Kube, log: Log): Promise<Record<string, number>> {
  const path = changedWorkloadEntryPath();
  const ms: number[] = [];
  for (const value of ['1', '2']) {
    const t0 = now();
    await kube.mergePatch(path, { metadata: { annotations: { 'bench.aviary.dev/warm-up': value } } });
    ms.push(Math.round(now() - t0));
  }
  log(`API server PATCH warm-up: ${ms.join(' ms, ')} ms`);
  return { firstPatchMs: ms[0]!, secondPatchMs: ms[1]! };
}

async function startPilotTarget(natsUrl: string, kubeconfig: string): Promise<Target> {
  const [adminPort, xdsPort, inspectPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const child = await startPilot(natsUrl, adminPort, xdsPort, {
    env: { AVIARY_CONFIG_SOURCE: 'kubernetes', AVIARY_KUBECONFIG: kubeconfig },
    nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`],
  });
  return {
    name: 'pilot',
    pid: child.pid!,
    xdsPort,
    forceGc: () => v8CollectGarbage(inspectPort),
    profile: () => v8StartProfile(inspectPort),
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
    },
  };
}

async function startIstiodTarget(binary: string, kubeconfig: string): Promise<Target> {
  const istiod = await startIstiod(binary, kubeconfig, PIN ? { cpus: '1' } : {});
  return { name: 'istiod', pid: istiod.child.pid!, xdsPort: istiod.xdsPort, forceGc: () => goCollectGarbage(istiod.httpPort), stop: () => istiod.stop() };
}

/** One round: start the target against the loaded API server, cold start, changes, memory; stop it. */
async function round(start: () => Promise<Target>, kube: Kube, seq: number, log: Log): Promise<{ detail: Record<string, unknown>; metrics: RoundMetrics }> {
  const t0 = now();
  const target = await start();
  const pid = target.pid;
  let load: LoadProcess | undefined;
  try {
    const readyMs = now() - t0;
    await idle(pid);
    const startupMs = now() - t0 - 1_000; // idle() needs two quiet 500 ms windows
    const startupCpuMs = cpuMs(pid);
    const rss0 = rssKiB(pid);
    const gc0 = await target.forceGc();
    await sleep(2_000);
    const rss0gc = rssKiB(pid);
    log(`${target.name}: ready after ${Math.round(readyMs)} ms, idle after ${Math.round(startupMs)} ms, ${startupCpuMs} ms CPU; RSS ${rss0} KiB, after GC ${rss0gc} KiB, live ${Math.round(kib(gc0.liveBytes))} KiB`);

    load = LoadProcess.start();
    await load.next('ready');
    const cold = await coldStart(load, pid, target.xdsPort, loadNodes(true), log);
    await idle(pid);
    await sleep(2_000);
    const rss1 = rssKiB(pid);
    const gc1 = await target.forceGc();
    await sleep(2_000);
    const rss1gc = rssKiB(pid);
    const memory = {
      rssKiB: { idleBeforeStreams: rss0, idleBeforeStreamsAfterGc: rss0gc, withStreams: rss1, withStreamsAfterGc: rss1gc },
      liveKiBAfterGc: { beforeStreams: Math.round(kib(gc0.liveBytes)), withStreams: Math.round(kib(gc1.liveBytes)) },
      runtimeAfterGc: { beforeStreams: gc0.detail, withStreams: gc1.detail },
      // Both from the collected baseline: what the streams add, with and without the garbage they left.
      kiBPerProxy: { rssBeforeGc: perProxy(rss0gc, rss1), rssAfterGc: perProxy(rss0gc, rss1gc), liveAfterGc: perProxy(kib(gc0.liveBytes), kib(gc1.liveBytes)) },
    };
    log(`${target.name}: memory ${JSON.stringify(memory.kiBPerProxy)}`);

    const svc = changedService();
    const path = changedWorkloadEntryPath();
    const profile = CHANGE_PROF && target.profile ? target.profile : undefined;
    const idleMsPerS = await idleCpuRate(pid);
    log(`${target.name}: idle CPU with ${STREAMS} streams: ${idleMsPerS} ms per s`);
    const { changes, allAcks, profiles, reconnects } = await endpointChanges(load, pid, svc, seq, (address) => kube.mergePatch(path, { spec: { address } }), log, idleMsPerS, profile);
    if (profiles.length > 0) mkdirSync(CHANGE_PROF, { recursive: true });
    profiles.forEach((p, c) => {
      const file = join(CHANGE_PROF, `${target.name}-change-${seq + c}.cpuprofile`);
      writeFileSync(file, JSON.stringify(p));
      log(`${target.name}: CPU profile of change ${seq + c} in ${file}`);
    });
    const all = quantiles(allAcks);
    const byChange = (k: string): number[] => changes.map((c) => c[k] as number);
    const coldBytes = cold['bytesToProxies'] as number;
    const runReconnects = reconnectsOf(cold, reconnects);
    const metrics: Record<string, number> = {
      'startup: process start → config loaded and idle (ms)': Math.round(startupMs),
      'startup CPU (ms)': startupCpuMs,
      [`cold start: ${STREAMS} streams → all ACKed (ms)`]: cold['allConvergedMs'] as number,
      'cold start CPU (ms)': cold['pilotCpuMs'] as number,
      'cold start, per-stream p99 (ms)': cold['perStreamP99Ms'] as number,
      'bytes to proxies, cold start (MiB)': coldBytes / 1024 / 1024,
      'endpoint change → interested ACKed, p50 (ms)': all.p50,
      'endpoint change → interested ACKed, p99 (ms)': all.p99,
      'CPU per endpoint change, median (ms)': median(byChange('pilotCpuMs')),
      [`idle CPU with ${STREAMS} streams (ms per s)`]: idleMsPerS,
      'CPU per endpoint change above idle, median (ms)': median(byChange('pilotCpuAboveIdleMs')),
      'interested streams per change (median)': median(byChange('interestedStreams')),
      'interested streams missing the change (max)': Math.max(...byChange('missing')),
      'streams pushed, not interested, per change (max)': Math.max(...byChange('streamsPushedNotInterested')),
      'bytes to proxies per change, median (KiB)': median(byChange('bytesToProxies')) / 1024,
      'streams reconnected (cold start and changes; 0 = every stream held)': runReconnects.streams,
      'RSS per proxy before GC (KiB)': memory.kiBPerProxy.rssBeforeGc,
      'RSS per proxy after GC (KiB)': memory.kiBPerProxy.rssAfterGc,
      'live heap per proxy after GC (KiB)': memory.kiBPerProxy.liveAfterGc,
      [`RSS with ${STREAMS} proxies after GC (MiB)`]: rss1gc / 1024,
    };
    return {
      detail: { target: target.name, readyMs: Math.round(readyMs), startupMs: Math.round(startupMs), startupCpuMs, coldStart: cold, memory, idleCpuWithStreams: { msPerSecond: idleMsPerS }, endpointChange: { changes, allChanges: all }, reconnects: runReconnects },
      metrics: { target: target.name, metrics },
    };
  } finally {
    load?.send({ cmd: 'stop' });
    await sleep(500);
    await target.stop();
  }
}

async function mainVsIstiod(): Promise<void> {
  const log: Log = (msg) => void process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
  const istiodBinary = ONLY === 'pilot' ? '' : ISTIOD ? join(root, ISTIOD) : await ensureIstiod(root);
  const istiodVersion = istiodBinary === '' ? '' : (await run(istiodBinary, ['version', '-s']).catch((e: Error) => e.message)).trim();
  const result: Record<string, unknown> = {
    machine: { nproc: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100) },
    params: { preset: PRESET, pilot: PILOT, istiod: istiodBinary, istiodVersion, services: SERVICES, endpointsPerService: ENDPOINTS, streams: STREAMS, namespaces: NAMESPACES, visibility: VISIBILITY, rounds: ROUNDS, changes: CHANGES, pin: PIN, ads: DELTA ? 'delta' : 'sotw', source: 'kube-apiserver CRDs: ServiceEntry (workloadSelector) + WorkloadEntry, DestinationRule, VirtualService, Sidecar' },
  };
  const nats = await NatsServer.start();
  onInterrupt(() => nats.stop());
  let kube: Kube | undefined;
  const rounds: Array<Record<string, unknown>> = [];
  const metrics: RoundMetrics[] = [];
  try {
    kube = await startKube(root);
    result['mesh'] = await loadKube(kube, log);
    result['apiServerWarmup'] = await warmPatchPath(kube, log);
    // istiod's first start in a cluster creates its self-signed CA (istio-ca-secret) and the
    // istio-ca-root-cert ConfigMaps: a one-time install cost, measured apart and kept out of the rounds.
    if (ONLY !== 'pilot') {
      const w0 = now();
      const warm = await startIstiod(istiodBinary, kube.kubeconfig);
      await idle(warm.child.pid!);
      result['istiodFirstStart'] = { toIdleMs: Math.round(now() - w0 - 1_000), cpuMs: cpuMs(warm.child.pid!) };
      await warm.stop();
      log(`istiod first start (CA bootstrap) ${JSON.stringify(result['istiodFirstStart'])}`);
    }
    const starters = { pilot: () => startPilotTarget(nats.url, kube!.kubeconfig), istiod: () => startIstiodTarget(istiodBinary, kube!.kubeconfig) };
    // ABBA order: pilot, istiod, istiod, pilot, … so drift in the machine's load hits both alike.
    const order: Array<'pilot' | 'istiod'> = [];
    for (let r = 0; r < ROUNDS; r++) order.push(...(r % 2 === 0 ? (['pilot', 'istiod'] as const) : (['istiod', 'pilot'] as const)).filter((n) => ONLY === '' || n === ONLY));
    let seq = 0;
    for (const name of order) {
      log(`round ${rounds.length + 1}/${order.length}: ${name} (load average ${loadavg()[0]!.toFixed(2)})`);
      const la = loadavg()[0]!;
      const r = await round(starters[name], kube, seq, log);
      seq += CHANGES;
      rounds.push({ ...r.detail, loadavgAtStart: Math.round(la * 100) / 100 });
      metrics.push(r.metrics);
    }
    result['rounds'] = rounds;
    if (ONLY !== '') {
      result['loadavgAtEnd'] = loadavg().map((x) => Math.round(x * 100) / 100);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    const compared = compareRounds(metrics, 'pilot', 'istiod');
    result['compared'] = compared;
    result['loadavgAtEnd'] = loadavg().map((x) => Math.round(x * 100) / 100);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`\n${comparisonTable(compared, 'pilot', 'istiod')}`);
  } finally {
    await kube?.stop();
    await nats.stop();
  }
}

await (VS_ISTIOD ? mainVsIstiod() : main());
