import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { structToJs } from '@aviary/xds-protos';

/** Where `tools/setup` installs the pinned Envoy. */
export const CACHED_ENVOY_PATH = join(homedir(), '.cache', 'aviary-envoy', '1.40.0', 'bin', 'envoy');

/** The Envoy binary tests run: `override` (a spec's `AVIARY_ENVOY_PATH`) or the cached pinned one. */
export function envoyBinary(override?: string): string {
  return override !== undefined && override !== '' ? override : CACHED_ENVOY_PATH;
}

export function hasEnvoy(override?: string): boolean {
  return existsSync(envoyBinary(override));
}

type Msg = Record<string, unknown>;

/** pilot's resources for one proxy, as `translate` returns them. */
export interface XdsSet {
  readonly listeners: readonly { name: string; resource: unknown }[];
  readonly routes: readonly { name: string; resource: unknown }[];
  readonly clusters: readonly { name: string; resource: unknown }[];
  readonly endpoints: readonly { name: string; resource: unknown }[];
}

/** RDS references replaced by the named route configuration. */
export function inlineRoutes<T>(value: T, xds: XdsSet): T {
  const routes = new Map(xds.routes.map((r) => [r.name, r.resource]));
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x === null || typeof x !== 'object') return x;
    const o = x as Msg;
    if (o.rds !== undefined) {
      const { rds, ...rest } = o;
      const name = (rds as { route_config_name: string }).route_config_name;
      const route = routes.get(name);
      if (route === undefined) throw new Error(`RDS ${name} is not among the resources`);
      return walk({ ...rest, route_config: route });
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, walk(v)]));
  };
  return toBootstrapJson(walk(value)) as T;
}

/**
 * pilot's resources hold `google.protobuf.Struct`s in canonical proto form (`{ fields: { k:
 * { string_value } } }`, what goes on the wire); a JSON bootstrap spells a Struct as a plain
 * object. Converts the Structs pilot emits: `filter_metadata` values and transport socket `match`.
 */
export function toBootstrapJson<T>(value: T): T {
  const walk = (x: unknown, key: string): unknown => {
    if (Array.isArray(x)) return x.map((v) => walk(v, key));
    if (x === null || typeof x !== 'object') return x;
    const o = x as Msg;
    if (key === 'filter_metadata') return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, structToJs(v as Parameters<typeof structToJs>[0])]));
    return Object.fromEntries(
      Object.entries(o).map(([k, v]) => [k, key === 'transport_socket_matches' && k === 'match' ? structToJs(v as Parameters<typeof structToJs>[0]) : walk(v, k)]),
    );
  };
  return walk(value, '') as T;
}

/** pilot's clusters with EDS replaced by their load assignments (STATIC), for a bootstrap without pilot. */
export function staticClusters(xds: XdsSet): Msg[] {
  const eds = new Map(xds.endpoints.map((e) => [e.name, e.resource]));
  return xds.clusters.map(({ name, resource }) => {
    const c = resource as Msg;
    if (c.type !== 'EDS') return toBootstrapJson(c);
    const { eds_cluster_config: _eds, ...rest } = c;
    return toBootstrapJson({ ...rest, type: 'STATIC', load_assignment: eds.get(name) ?? { cluster_name: name } });
  });
}

/** A static cluster speaking HTTP/2 (gRPC) to a Unix socket, like the agent's `aviary-als` and `sds-grpc`. */
export function unixGrpcCluster(name: string, socketPath: string): Msg {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socketPath } } } }] }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

interface ListenerStatus {
  readonly name: string;
  readonly local_address?: { socket_address?: { address: string; port_value: number } };
}

/**
 * One Envoy with a static bootstrap: admin on an ephemeral loopback port (read from
 * `--admin-address-path`), `--use-dynamic-base-id` so several run at once, logs kept for
 * failure messages. Listeners may bind port 0; `listenerPort` reads the bound port.
 */
export class EnvoyProcess {
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly adminUrl: string,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-64_000)));
    child.stderr?.on('data', (d: Buffer) => (this.output = (this.output + d.toString()).slice(-64_000)));
  }

  /** Envoy's own log so far (last 64 KB). */
  get log(): string {
    return this.output;
  }

  /** `env`: extra environment for Envoy (e.g. `ISTIO_META_WORKLOAD_NAME`, which pilot's config reads). */
  static async start(bootstrap: Msg, options: { envoyPath?: string; logLevel?: string; timeoutMs?: number; env?: Readonly<Record<string, string>> } = {}): Promise<EnvoyProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'aviary-envoy-'));
    const config = join(dir, 'envoy.json');
    const adminPath = join(dir, 'admin.txt');
    writeFileSync(config, JSON.stringify({ admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } }, ...bootstrap }));
    const child = spawn(envoyBinary(options.envoyPath), ['-c', config, '--use-dynamic-base-id', '--admin-address-path', adminPath, '-l', options.logLevel ?? 'warning', '--concurrency', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.env !== undefined && { env: { PATH: '/usr/bin:/bin', ...options.env } }),
    });
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));
    let early = '';
    child.stderr.on('data', (d: Buffer) => (early = (early + d.toString()).slice(-16_000)));
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    while (!existsSync(adminPath) || readFileSync(adminPath, 'utf8').trim() === '') {
      if (exited !== undefined) throw new Error(`envoy exited with ${String(exited)} before serving admin:\n${early}`);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`envoy did not serve admin in time:\n${early}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const envoy = new EnvoyProcess(child, dir, `http://${readFileSync(adminPath, 'utf8').trim()}`);
    envoy.output = early;
    while ((await fetch(`${envoy.adminUrl}/ready`).catch(() => undefined))?.status !== 200) {
      if (exited !== undefined || Date.now() > deadline) {
        await envoy.stop();
        throw new Error(`envoy did not become ready:\n${envoy.log}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return envoy;
  }

  /** The port a listener bound (its configured port, or the one the kernel chose for 0). */
  async listenerPort(name: string): Promise<number> {
    const res = await fetch(`${this.adminUrl}/listeners?format=json`);
    const body = (await res.json()) as { listener_statuses?: ListenerStatus[] };
    const port = body.listener_statuses?.find((l) => l.name === name)?.local_address?.socket_address?.port_value;
    if (port === undefined) throw new Error(`envoy has no listener ${name}: ${JSON.stringify(body)}`);
    return port;
  }

  /** A counter or gauge from `/stats` (0 when absent). */
  async stat(name: string): Promise<number> {
    const text = await (await fetch(`${this.adminUrl}/stats?filter=${encodeURIComponent(`^${name.replace(/\./g, '\\.')}$`)}`)).text();
    const m = new RegExp(`^${name.replace(/\./g, '\\.')}: (\\d+)$`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
