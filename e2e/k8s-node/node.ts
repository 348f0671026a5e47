// Test harness of the e2e/k8s-node tier: a real single-node Kubernetes on this machine
// (tools/k8s/start-node.sh --foreground: etcd, kube-apiserver, controller-manager, scheduler,
// containerd, kubelet, kube-proxy, CoreDNS), the Aviary images (`npm run images`) imported into
// its containerd, and a teardown whose audit (tools/k8s/stop-node.sh) must find nothing left.
// Needs root (a bridge, iptables, cgroups); see tools/k8s/README.md.
import { eventually as poll } from '../support/eventually';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chartDir, ensurePeers, repoRoot, run, type RunResult } from '../k8s/cluster';

const toolsDir = join(repoRoot, 'tools', 'k8s');

/** Root is required: bridges, iptables, cgroups and containerd. */
export const canRunNode = typeof process.getuid === 'function' && process.getuid() === 0 && process.platform === 'linux';

export interface BuiltImage {
  readonly app: string;
  readonly name: string;
  readonly digest: string;
  readonly file: string;
  readonly compressedBytes: number;
  readonly uncompressedBytes: number;
}

/** `npm run images` (esbuild bundles + tools/images), then dist/images/images.json. */
export async function buildImages(): Promise<BuiltImage[]> {
  const res = await run('npm', ['run', '--silent', 'images']);
  if (res.code !== 0) throw new Error(`npm run images failed (${res.code}):\n${res.stderr}\n${res.stdout}`);
  const index = JSON.parse(await readFile(join(repoRoot, 'dist', 'images', 'images.json'), 'utf8')) as { images: BuiltImage[] };
  return index.images;
}

export interface KubeNode {
  readonly dir: string;
  readonly binDir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly containerdSocket: string;
  /** How long start-node.sh took until the node and CoreDNS were Ready. */
  readonly startMs: number;
  kubectl(args: readonly string[], input?: string): Promise<RunResult>;
  helm(args: readonly string[]): Promise<RunResult>;
  /** `ctr -n k8s.io images import` of OCI layout tars. */
  importImages(files: readonly string[]): Promise<void>;
  /** Stops everything; returns the audit of a second stop-node.sh run (exit code 0: nothing left). */
  stop(): Promise<{ readonly audit: RunResult; readonly stopMs: number }>;
}

export async function startNode(opts: { readonly readyTimeoutMs?: number } = {}): Promise<KubeNode> {
  const binDir = await ensurePeers();
  const dir = await mkdtemp(join(tmpdir(), 'aviary-node-'));
  const started = Date.now();
  const child = spawn('bash', [join(toolsDir, 'start-node.sh'), '--foreground', dir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  let stopped: Promise<{ audit: RunResult; stopMs: number }> | undefined;
  const stop = (): Promise<{ audit: RunResult; stopMs: number }> => {
    stopped ??= (async () => {
      const t0 = Date.now();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
        await exited;
        clearTimeout(timer);
      }
      const stopMs = Date.now() - t0;
      // Idempotent: tears down whatever a SIGKILLed script left, then audits the host.
      const audit = await run('bash', [join(toolsDir, 'stop-node.sh'), dir]);
      if (audit.code === 0) await run('bash', [join(toolsDir, 'stop-node.sh'), '--clean', dir]);
      return { audit, stopMs };
    })();
    return stopped;
  };

  try {
    await waitForReady(child, dir, opts.readyTimeoutMs ?? 600_000, () => log);
  } catch (err) {
    await stop();
    throw err;
  }
  const startMs = Date.now() - started;
  const env = parseEnv(await readFile(join(dir, 'env'), 'utf8'));
  const need = (k: string): string => {
    const v = env[k];
    if (v === undefined) throw new Error(`start-node.sh wrote no ${k}`);
    return v;
  };
  const kubeconfig = need('KUBECONFIG');
  const containerdSocket = need('AVIARY_CONTAINERD_SOCKET');
  const toolEnv = {
    KUBECONFIG: kubeconfig,
    NO_PROXY: '127.0.0.1,localhost,10.244.0.1,10.96.0.0/16',
    HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
    HELM_DATA_HOME: join(dir, 'helm', 'data'),
  };
  return {
    dir,
    binDir,
    kubeconfig,
    server: need('AVIARY_K8S_SERVER'),
    containerdSocket,
    startMs,
    kubectl: (args, input) => run(join(binDir, 'kubectl'), args, toolEnv, input),
    helm: (args) => run(join(binDir, 'helm'), args, toolEnv),
    importImages: async (files) => {
      for (const f of files) {
        const res = await run('ctr', ['--address', containerdSocket, '-n', 'k8s.io', 'images', 'import', f]);
        if (res.code !== 0) throw new Error(`ctr images import ${f} failed: ${res.stderr}`);
      }
    },
    stop,
  };
}

async function waitForReady(child: ChildProcess, dir: string, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(join(dir, 'ready'))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`start-node.sh exited (${child.exitCode ?? child.signalCode}) before the node was ready:\n${log()}`);
    }
    if (Date.now() > deadline) throw new Error(`node not ready within ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return env;
}

/** Tears a started node down (nothing if it never started) and fails when its audit found anything left behind. */
export async function stopNode(node: KubeNode | undefined): Promise<void> {
  if (node === undefined) return;
  const { audit } = await node.stop();
  if (audit.code !== 0) throw new Error(`teardown left something behind:\n${audit.stderr}`);
}

/** Polls `check` until it returns a value (not undefined) or the timeout passes, once a second. */
export function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  return poll(what, check, timeoutMs, 1000);
}

/** The namespace the README installs into. */
export const ISTIO_SYSTEM = 'istio-system';
/** The control-plane apps (label app.kubernetes.io/name) `helm install` brings up. */
export const CONTROL_PLANE_APPS = ['pilot', 'citadel', 'injector-webhook', 'telemetry-collector', 'gateway', 'nats'] as const;
const oneNodeValues = join(repoRoot, 'e2e', 'k8s-node', 'values', 'one-node.yaml');

export interface PodLike {
  metadata: { name: string; namespace?: string; labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: { name: string; image: string }[]; initContainers?: { name: string; image: string; restartPolicy?: string }[]; serviceAccountName?: string };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; ready: boolean; restartCount: number }[] };
}

export function isPodReady(p: PodLike | undefined): boolean {
  return p?.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** `kubectl` that throws with stderr on a non-zero exit. */
export async function kubectlOk(node: KubeNode, args: readonly string[], input?: string): Promise<string> {
  const res = await node.kubectl(args, input);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

/**
 * The README's install: `helm install aviary charts/aviary -n istio-system --create-namespace`
 * with the one-node values (images imported, never pulled) and then `valuesFiles` in order, then
 * every control-plane pod Ready.
 * Resolves with the helm output's stderr (empty when helm had nothing to complain about).
 */
export async function installAviary(node: KubeNode, images: readonly BuiltImage[], opts: { readonly timeoutMs?: number; readonly valuesFiles?: readonly string[] } = {}): Promise<{ readonly helmStderr: string; readonly readyApps: readonly string[] }> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const nats = images.find((i) => i.app === 'nats');
  if (nats === undefined) throw new Error('npm run images built no nats image');
  const install = await node.helm(['install', 'aviary', chartDir, '--namespace', ISTIO_SYSTEM, '--create-namespace', '-f', oneNodeValues, ...(opts.valuesFiles ?? []).flatMap((f) => ['-f', f]), '--set', `nats.image.tag=${nats.name.split(':').at(-1)}`]);
  if (install.code !== 0) throw new Error(`helm install failed (${install.code}): ${install.stderr}`);
  let notReady: PodLike[] = [];
  const readyApps = await eventually('all control-plane pods Ready', timeoutMs, async () => {
    const pods = JSON.parse(await kubectlOk(node, ['-n', ISTIO_SYSTEM, 'get', 'pods', '-o', 'json'])) as { items: PodLike[] };
    notReady = pods.items.filter((p) => !isPodReady(p));
    // Every app has a pod, and every replica of each is Ready.
    const appOf = (p: PodLike): string => p.metadata.labels['app.kubernetes.io/name'] ?? p.metadata.name;
    const ready = CONTROL_PLANE_APPS.every((a) => pods.items.some((p) => appOf(p) === a)) && pods.items.filter((p) => (CONTROL_PLANE_APPS as readonly string[]).includes(appOf(p))).every(isPodReady);
    return ready ? [...CONTROL_PLANE_APPS] : undefined;
  }).catch(async (err: unknown) => {
    // Say which pods are not Ready and why (their last log lines and events), not only that they are not.
    const why = await Promise.all(
      notReady.map(async (p) => {
        const logs = await node.kubectl(['-n', ISTIO_SYSTEM, 'logs', p.metadata.name, '--all-containers', '--tail', '15']);
        const events = await node.kubectl(['-n', ISTIO_SYSTEM, 'get', 'events', '--field-selector', `involvedObject.name=${p.metadata.name}`]);
        return `--- ${p.metadata.name}\n${logs.stdout}${events.stdout}`;
      }),
    );
    throw new Error(`${String(err)}\n${why.join('\n')}`);
  });
  return { helmStderr: install.stderr, readyApps };
}

/** A webhook served by a pod is unreachable for a moment after it is Ready: poll a server-side dry run until injection answers. */
export async function waitForInjector(node: KubeNode, namespace: string, timeoutMs = 60_000): Promise<void> {
  const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'injector-probe', namespace }, spec: { containers: [{ name: 'c', image: 'docker.io/aviary/demo-service:0.1.0' }] } });
  await eventually('the injector webhook answers', timeoutMs, async () => {
    const res = await node.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], pod);
    if (res.code !== 0) throw new Error(res.stderr);
    const injected = JSON.parse(res.stdout) as PodLike;
    return injected.spec.containers.some((c) => c.name === 'istio-proxy') || (injected.spec.initContainers ?? []).some((c) => c.name === 'istio-proxy') ? true : undefined;
  });
}
