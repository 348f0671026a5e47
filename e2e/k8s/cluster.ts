// Test helpers for the e2e/k8s tier: the cached Kubernetes peers (tools/k8s/ensure-peers.sh) and
// a real control plane on loopback (tools/k8s/start-cluster.sh --foreground: etcd,
// kube-apiserver, kube-controller-manager). No kubelet runs: Pods are created and stay Pending.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const chartDir = join(repoRoot, 'charts', 'aviary');
const toolsDir = join(repoRoot, 'tools', 'k8s');

/** A cold cache builds helm and the Kubernetes binaries from Go modules (about 40 min on 2 cores). */
export const PEERS_TIMEOUT_MS = 80 * 60_000;
/** Kubernetes version the peers are built at (tools/k8s/ensure-peers.sh K8S_VERSION). */
export const KUBE_VERSION = '1.34.4';

let peers: Promise<string> | undefined;

/** Builds (once, cached in ~/.cache/aviary-k8s) and returns the bin dir with helm, kubectl, … */
export function ensurePeers(): Promise<string> {
  peers ??= execFileP('bash', [join(toolsDir, 'ensure-peers.sh')], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
    timeout: PEERS_TIMEOUT_MS,
  }).then(({ stdout }) => {
    const bin = stdout.trim().split('\n').at(-1) ?? '';
    if (!existsSync(join(bin, 'helm'))) throw new Error(`ensure-peers.sh printed no bin dir: ${stdout}`);
    return bin;
  });
  return peers;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** Runs a command to completion; never throws on a non-zero exit (the caller asserts `code`). */
export async function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ stdout, stderr, code: code ?? -1 }));
    // A command that exits without reading its input (e.g. a `kubectl exec` whose pod went away)
    // makes this write fail with EPIPE; its exit code already says what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

export interface KubeCluster {
  /** State dir: pki/, logs/, admin.kubeconfig, env. Removed by stop(). */
  readonly dir: string;
  readonly binDir: string;
  readonly kubeconfig: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** Bearer token of the admin (system:masters) identity. */
  readonly token: string;
  readonly caFile: string;
  /** KUBECONFIG, ports, … as printed by start-cluster.sh. */
  readonly env: Readonly<Record<string, string>>;
  kubectl(args: readonly string[], input?: string): Promise<RunResult>;
  helm(args: readonly string[]): Promise<RunResult>;
  /** Stops every process and removes the state dir; safe to call twice. */
  stop(): Promise<void>;
}

/** Starts etcd, kube-apiserver and kube-controller-manager on free loopback ports. */
export async function startCluster(opts: { readonly readyTimeoutMs?: number } = {}): Promise<KubeCluster> {
  const binDir = await ensurePeers();
  const dir = await mkdtemp(join(tmpdir(), 'aviary-k8s-'));
  const child = spawn('bash', [join(toolsDir, 'start-cluster.sh'), '--foreground', dir], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    // start-cluster.sh stops its processes on SIGTERM; this catches a SIGKILLed script.
    await run('bash', [join(toolsDir, 'stop-cluster.sh'), '--clean', dir]);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitForReady(child, dir, opts.readyTimeoutMs ?? 240_000, () => log);
  } catch (err) {
    await stop();
    throw err;
  }
  const env = parseEnv(await readFile(join(dir, 'env'), 'utf8'));
  const need = (k: string): string => {
    const v = env[k];
    if (v === undefined) throw new Error(`start-cluster.sh wrote no ${k}`);
    return v;
  };
  const kubeconfig = need('KUBECONFIG');
  const toolEnv = { KUBECONFIG: kubeconfig, NO_PROXY: '127.0.0.1,localhost', HELM_CACHE_HOME: join(dir, 'helm', 'cache'), HELM_CONFIG_HOME: join(dir, 'helm', 'config'), HELM_DATA_HOME: join(dir, 'helm', 'data') };
  return {
    dir,
    binDir,
    kubeconfig,
    server: need('AVIARY_K8S_SERVER'),
    token: need('AVIARY_K8S_TOKEN'),
    caFile: need('AVIARY_K8S_CA_FILE'),
    env,
    kubectl: (args, input) => run(join(binDir, 'kubectl'), args, toolEnv, input),
    helm: (args) => run(join(binDir, 'helm'), args, toolEnv),
    stop,
  };
}

async function waitForReady(child: ChildProcess, dir: string, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(join(dir, 'ready'))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`start-cluster.sh exited (${child.exitCode ?? child.signalCode}) before the cluster was ready:\n${log()}`);
    }
    if (Date.now() > deadline) throw new Error(`cluster not ready within ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 200));
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
