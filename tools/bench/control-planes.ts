// Processes of the side-by-side pilot/istiod benchmark (tools/bench/pilot.ts --vs-istiod):
// a real Kubernetes control plane (tools/k8s/start-cluster.sh), istiod (pilot-discovery built by
// tools/istio/ensure-istiod.sh), and forced garbage collections in both runtimes through their
// own debug interfaces: V8's inspector protocol (HeapProfiler.collectGarbage) for pilot, Go's
// pprof handler (`/debug/pprof/heap?gc=1`, which runs runtime.GC() first) for istiod.
// Everything binds 127.0.0.1.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@aviary/nats-runner';
import { goLiveBytes, parseGoMemStats } from './compare-stats';
import { onInterrupt, stopOnInterrupt } from './interrupt';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a command to completion; rejects with its stderr on a non-zero exit. */
export function run(file: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ').slice(0, 200)}: ${err.message}\n${stderr.slice(-4000)}`));
      else resolve(stdout);
    });
    // A command that exits without reading its input (a cached build, `version`) closes the pipe.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

export interface Kube {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly bin: string;
  kubectl(args: readonly string[], input?: string): Promise<string>;
  /** A JSON merge patch of one object through the API server (one request, no kubectl process). */
  mergePatch(path: string, body: object): Promise<void>;
  /** The pid start-cluster.sh recorded for one of its processes (kube-apiserver, etcd, …). */
  pidOf(name: string): number;
  stop(): Promise<void>;
}

/**
 * etcd + kube-apiserver + kube-controller-manager through tools/k8s/start-cluster.sh
 * --foreground (the same script and peers as the e2e/k8s tier); the script stops them on SIGTERM.
 */
export async function startKube(root: string): Promise<Kube> {
  const dir = await mkdtemp(join(tmpdir(), 'aviary-bench-k8s-'));
  const child = spawn('bash', [join(root, 'tools', 'k8s', 'start-cluster.sh'), '--foreground', dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
    }
    await run('bash', [join(root, 'tools', 'k8s', 'stop-cluster.sh'), '--clean', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  onInterrupt(stop);
  const deadline = Date.now() + 40 * 60_000; // a cold peer cache builds first
  while (!existsSync(join(dir, 'ready'))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`start-cluster.sh did not get ready:\n${log.slice(-4000)}`);
    }
    await sleep(200);
  }
  const env = Object.fromEntries(
    readFileSync(join(dir, 'env'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const server = new URL(env['AVIARY_K8S_SERVER']!);
  const token = env['AVIARY_K8S_TOKEN']!;
  const ca = readFileSync(env['AVIARY_K8S_CA_FILE']!);
  const kubeconfig = env['KUBECONFIG']!;
  const bin = env['AVIARY_K8S_BIN']!;
  return {
    dir,
    kubeconfig,
    bin,
    kubectl: (args, input) => run(join(bin, 'kubectl'), args, { env: { KUBECONFIG: kubeconfig, NO_PROXY: '127.0.0.1,localhost' }, input }),
    mergePatch: (path, body) =>
      new Promise((resolve, reject) => {
        const data = Buffer.from(JSON.stringify(body));
        const req = request(
          { host: server.hostname, port: server.port, path, method: 'PATCH', ca, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/merge-patch+json', 'content-length': data.length } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PATCH ${path}: ${res.statusCode} ${text.slice(0, 1000)}`))));
          },
        );
        req.on('error', reject);
        req.end(data);
      }),
    pidOf: (name) => {
      const line = readFileSync(join(dir, 'pids'), 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[1] === name);
      if (!line) throw new Error(`start-cluster.sh recorded no ${name}`);
      return Number(line.split(' ')[0]);
    },
    stop,
  };
}

/** pilot-discovery from the cache of tools/istio/ensure-istiod.sh (built on first use, ~6 min). */
export async function ensureIstiod(root: string): Promise<string> {
  const out = await run('bash', [join(root, 'tools', 'istio', 'ensure-istiod.sh')]);
  return out.trim().split('\n').at(-1)!;
}

/**
 * istiod's own ConfigMaps as its Helm chart (istio.io/istio manifests/charts/istio-control/
 * istio-discovery, the version ensure-istiod.sh builds) renders them with default values:
 * `istio` (mesh config) and `istio-sidecar-injector` (the injection template and its values),
 * for `kubectl apply -n istio-system`. istiod reads both from the API server as in an install.
 */
export async function istiodChartConfigMaps(root: string, helm: string): Promise<string> {
  const moduleDir = (await run('bash', [join(root, 'tools', 'istio', 'ensure-istiod.sh'), '--module-dir'])).trim();
  const chart = join(moduleDir, 'manifests', 'charts', 'istio-control', 'istio-discovery');
  if (!existsSync(join(chart, 'Chart.yaml'))) throw new Error(`no istiod chart at ${chart}`);
  const home = await mkdtemp(join(tmpdir(), 'aviary-bench-helm-'));
  try {
    const helmEnv = { HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
    return await run(helm, ['template', 'istiod', chart, '-n', 'istio-system', '--show-only', 'templates/configmap.yaml', '--show-only', 'templates/istiod-injector-configmap.yaml'], { env: helmEnv });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

export interface Istiod {
  readonly child: ChildProcess;
  readonly xdsPort: number;
  readonly httpPort: number;
  /** The webhooks' port (`/inject`, validation), TLS with istiod's own DNS certificate. */
  readonly httpsPort: number;
  /** xDS and the CA (IstioCertificateService) over TLS with istiod's own DNS certificate. */
  readonly secureGrpcPort: number;
  readonly env: Readonly<Record<string, string>>;
  readonly args: readonly string[];
  stop(): Promise<void>;
}

/**
 * istiod on loopback ports, reading config and the registry from the API server (`--kubeconfig`),
 * as it does in a cluster. `PILOT_MAX_REQUESTS_PER_SECOND` is raised from its default of 25 new
 * xDS streams per second per istiod, which would otherwise make a cold start of N streams take
 * N/25 s whatever the CPU. Ready when `/ready` on the HTTP port answers 200.
 */
export async function startIstiod(binary: string, kubeconfig: string, opts: { cpus?: string } = {}): Promise<Istiod> {
  const work = await mkdtemp(join(tmpdir(), 'aviary-bench-istiod-'));
  const [xdsPort, httpPort, httpsPort, monitoringPort, secureGrpcPort, ctrlzPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const args = [
    'discovery',
    `--kubeconfig=${kubeconfig}`,
    '--domain=cluster.local',
    '--clusterID=Kubernetes',
    `--grpcAddr=127.0.0.1:${xdsPort}`,
    `--httpAddr=127.0.0.1:${httpPort}`,
    `--httpsAddr=127.0.0.1:${httpsPort}`,
    `--monitoringAddr=127.0.0.1:${monitoringPort}`,
    `--secureGRPCAddr=127.0.0.1:${secureGrpcPort}`,
    `--ctrlz_port=${ctrlzPort}`,
    '--ctrlz_address=127.0.0.1',
    `--meshConfig=${join(work, 'mesh.yaml')}`, // absent: istiod's defaults
    '--log_output_level=default:warn',
  ];
  const env = {
    POD_NAMESPACE: 'istio-system',
    POD_NAME: 'istiod-bench',
    REVISION: 'default',
    PILOT_MAX_REQUESTS_PER_SECOND: '100000',
    // No webhooks to patch: there is no MutatingWebhookConfiguration in this cluster.
    INJECTION_WEBHOOK_CONFIG_NAME: '',
    VALIDATION_WEBHOOK_CONFIG_NAME: '',
  };
  const [cmd, cmdArgs] = opts.cpus ? ['taskset', ['-c', opts.cpus, binary, ...args]] : [binary, args];
  const child = spawn(cmd, cmdArgs as string[], { cwd: work, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => void (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    await rm(work, { recursive: true, force: true });
  };
  stopOnInterrupt(child, 'SIGTERM');
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`istiod did not become ready:\n${out.slice(-6000)}`);
    }
    const ok = await fetch(`http://127.0.0.1:${httpPort}/ready`).then((r) => r.status === 200, () => false);
    if (ok) break;
    await sleep(100);
  }
  return { child, xdsPort, httpPort, httpsPort, secureGrpcPort, env, args, stop };
}

/** Live memory after a forced collection, in bytes, as the runtime itself counts it. */
export interface AfterGc {
  /** V8: used heap size; Go: HeapInuse + StackInuse. */
  readonly liveBytes: number;
  readonly detail: Readonly<Record<string, number>>;
}

/**
 * runtime.GC() in istiod through pprof's `gc=1`, twice, then its runtime.MemStats. Twice because a
 * sync.Pool (grpc-go's buffer pools, protobuf marshal buffers) survives one collection in its
 * victim cache and is dropped by the next.
 */
export async function goCollectGarbage(httpPort: number): Promise<AfterGc> {
  let text = '';
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${httpPort}/debug/pprof/heap?gc=1&debug=1`);
    if (res.status !== 200) throw new Error(`istiod /debug/pprof/heap: ${res.status}`);
    text = await res.text();
  }
  const stats = parseGoMemStats(text);
  const pick = ['HeapInuse', 'HeapIdle', 'HeapReleased', 'StackInuse', 'Sys', 'NumGC'];
  return { liveBytes: goLiveBytes(stats), detail: Object.fromEntries(pick.map((k) => [k, stats[k] ?? NaN])) };
}

/** A session on a Node process's inspector (`--inspect=127.0.0.1:<port>`): protocol calls, then `close()`. */
export interface InspectorSession {
  call(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): void;
}

export async function inspectorSession(inspectPort: number): Promise<InspectorSession> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${inspectPort}`);
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`inspector ${url}: connection failed`)), { once: true });
  });
  let nextId = 0;
  const pending = new Map<number, (r: { result?: Record<string, unknown>; error?: { message: string } }) => void>();
  ws.addEventListener('message', (e: MessageEvent) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
    if (m.id !== undefined) pending.get(m.id)?.(m);
  });
  return {
    call: (method, params) =>
      new Promise((resolve, reject) => {
        const id = ++nextId;
        const t = setTimeout(() => reject(new Error(`inspector ${method}: no answer in 60 s`)), 60_000);
        pending.set(id, (r) => {
          clearTimeout(t);
          pending.delete(id);
          if (r.error) reject(new Error(`inspector ${method}: ${r.error.message}`));
          else resolve(r.result ?? {});
        });
        ws.send(JSON.stringify({ id, method, ...(params && { params }) }));
      }),
    close: () => ws.close(),
  };
}

/**
 * Two full collections in a Node process started with `--inspect=127.0.0.1:<port>`, over the
 * inspector protocol (HeapProfiler.collectGarbage), then Runtime.getHeapUsage. The session is
 * closed again at once; nothing else of the inspector is used.
 */
export async function v8CollectGarbage(inspectPort: number): Promise<AfterGc> {
  const session = await inspectorSession(inspectPort);
  try {
    // Twice, as for Go: the same number of forced collections on both sides.
    await session.call('HeapProfiler.collectGarbage');
    await session.call('HeapProfiler.collectGarbage');
    const usage = (await session.call('Runtime.getHeapUsage')) as Record<string, number>;
    return { liveBytes: usage['usedSize']!, detail: { usedSize: usage['usedSize']!, totalSize: usage['totalSize']! } };
  } finally {
    session.close();
  }
}

/**
 * Starts V8's sampling CPU profiler in a Node process with an inspector; the returned function
 * stops it and gives the profile (Chrome DevTools `.cpuprofile` JSON). For profiling one window
 * of a run (the endpoint changes) rather than the whole process as `--cpu-prof` does.
 */
/**
 * Starts V8's sampling heap profiler through the inspector. With `promotedOnly`, objects that a
 * young-generation collection freed are left out: the profile then shows what was allocated and
 * lived long enough to be promoted (still live at the end, or freed by a full collection), the
 * objects that make full collections happen. Returns a function that stops it and returns the
 * profile (Chrome DevTools' `.heapprofile` format).
 */
export async function v8StartHeapSampling(inspectPort: number, promotedOnly: boolean, intervalBytes = 16_384): Promise<() => Promise<unknown>> {
  const session = await inspectorSession(inspectPort);
  await session.call('HeapProfiler.enable');
  await session.call('HeapProfiler.startSampling', {
    samplingInterval: intervalBytes,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: !promotedOnly,
  });
  return async () => {
    try {
      return (await session.call('HeapProfiler.stopSampling'))['profile'];
    } finally {
      session.close();
    }
  };
}

export async function v8StartProfile(inspectPort: number, intervalUs = 500): Promise<() => Promise<unknown>> {
  const session = await inspectorSession(inspectPort);
  await session.call('Profiler.enable');
  await session.call('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.call('Profiler.start');
  return async () => {
    try {
      return (await session.call('Profiler.stop'))['profile'];
    } finally {
      session.close();
    }
  };
}
