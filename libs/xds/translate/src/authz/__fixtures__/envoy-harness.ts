import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeMessageOf } from '@aviary/xds-protos';
import type { Msg } from '../../envoy';
import type { XdsResources } from '../../translate';
import { inlineRds, pipeCluster, staticCluster } from '../../__fixtures__/static-bootstrap';

/**
 * Tests only: run pilot-translated resources in a real upstream Envoy (not `--mode validate`:
 * that is ../../envoy-validate.spec.ts over every golden) with a static bootstrap whose listeners
 * the caller picks and rebinds. RDS references are inlined; EDS clusters become STATIC with their
 * ClusterLoadAssignment; SDS references keep the agent's `sds-grpc` cluster (a Unix socket nobody
 * serves). The caller loads `envoy/config/bootstrap/v3/bootstrap.proto` into the xDS root first.
 */

export const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';

/** Listeners (already rewritten by the caller if needed) and clusters in one static bootstrap. */
export function staticBootstrap(nodeId: string, r: Pick<XdsResources, 'routes' | 'clusters' | 'endpoints'>, listeners: readonly Msg[]): Msg {
  const routes = new Map(r.routes.map((x) => [x.name, x.resource]));
  const endpoints = new Map(r.endpoints.map((x) => [x.name, x.resource]));
  return {
    node: { id: nodeId, cluster: 'aviary-authz-test' },
    static_resources: {
      listeners: listeners.map((l) => inlineRds(l, routes)),
      clusters: [
        ...r.clusters.map((c) => staticCluster(c.resource, endpoints)),
        // The agent's SDS and access-log services; nobody serves them here (logs are dropped).
        pipeCluster('sds-grpc', join(tmpdir(), 'aviary-authz-absent-sds.sock')),
        pipeCluster('aviary-als', join(tmpdir(), 'aviary-authz-absent-als.sock')),
      ],
    },
  };
}

function writeBootstrap(dir: string, bootstrap: Msg): string {
  const file = join(dir, 'bootstrap.pb');
  writeFileSync(file, encodeMessageOf(BOOTSTRAP, bootstrap));
  return file;
}

/** A free loopback port (bound and released; the caller binds it right away). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port }, () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export interface RunningEnvoy {
  readonly output: () => string;
  stop(): Promise<void>;
}

/** Starts Envoy on a bootstrap and waits until every port in `ports` accepts connections. */
export async function startEnvoy(envoy: string, bootstrap: Msg, ports: readonly number[], timeoutMs = 20_000): Promise<RunningEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), 'aviary-authz-envoy-'));
  const child: ChildProcess = spawn(envoy, ['-c', writeBootstrap(dir, bootstrap), '--use-dynamic-base-id', '--disable-hot-restart', '--concurrency', '1', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`envoy exited ${child.exitCode}:\n${log}`);
    if ((await Promise.all(ports.map(accepts))).every(Boolean)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`envoy did not open ${ports.join(', ')} within ${timeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { output: () => log, stop };
}
