import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Where tools/nats/ensure-nats-server.mjs puts a nats-server it built. */
export const cachedNatsServerPath = join(homedir(), '.cache', 'aviary', 'bin', 'nats-server');

export function findNatsServer(): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'nats-server');
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  if (existsSync(cachedNatsServerPath)) return cachedNatsServerPath;
  throw new Error('nats-server not found on PATH or in ~/.cache/aviary/bin; run `node tools/nats/ensure-nats-server.mjs`');
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(host: string, port: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = tcpConnect({ host, port }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server did not listen on ${host}:${port} within ${timeoutMs} ms`);
}

export interface NatsServerOptions {
  /** Port to listen on; a free one when omitted. */
  readonly port?: number;
  /** JetStream store directory; a fresh temporary one (removed on stop) when omitted. */
  readonly storeDir?: string;
  readonly host?: string;
  /** Forward the server's log to this process's stderr. */
  readonly verbose?: boolean;
  /**
   * nats-server config text (e.g. an `authorization { users: [...] }` block from
   * @aviary/events' natsAuthorizationConfig); written beside the store and passed with `-c`.
   * Without it the server takes any client.
   */
  readonly config?: string;
  /** Server name (`-n`; JetStream clustering needs it unique); `aviary-<port>` when omitted. */
  readonly name?: string;
  /** Joins a cluster: this server's route port and the routes to its peers (see NatsCluster). */
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly string[] };
  /** Monitoring port (`/healthz`); a free one is picked when omitted. */
  readonly monitorPort?: number;
}

/**
 * A real nats-server with JetStream on a loopback port. `stop()` ends it (and removes a
 * temporary store); `restart()` brings it back on the same port with the same store.
 */
export interface NatsExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class NatsServer {
  private child: ChildProcess | undefined;
  private exit: Promise<NatsExit> = Promise.resolve({ code: null, signal: null });

  private constructor(
    readonly host: string,
    readonly port: number,
    readonly storeDir: string,
    private readonly ownsStore: boolean,
    private readonly verbose: boolean,
    private readonly configFile: string | undefined,
    private readonly extraArgs: readonly string[],
    /** The monitoring port (`GET /healthz`). */
    readonly monitorPort: number,
  ) {}

  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves when the current process exits, whoever ended it (a supervisor tells a crash from `kill()`). */
  get exited(): Promise<NatsExit> {
    return this.exit;
  }

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port === undefined || opts.port === 0 ? await freePort(host) : opts.port;
    const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'aviary-nats-')));
    let configFile: string | undefined;
    if (opts.config !== undefined) {
      configFile = join(storeDir, 'nats-server.conf');
      await writeFile(configFile, opts.config, { mode: 0o600 });
    }
    const monitorPort = opts.monitorPort ?? (await freePort(host));
    const extra = [
      '-n',
      opts.name ?? `aviary-${port}`,
      ...(opts.cluster === undefined ? [] : ['--cluster_name', opts.cluster.name, '--cluster', `nats://${host}:${opts.cluster.port}`, '--routes', opts.cluster.routes.join(',')]),
    ];
    const server = new NatsServer(host, port, storeDir, opts.storeDir === undefined, opts.verbose ?? false, configFile, extra, monitorPort);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    const args = [...(this.configFile === undefined ? [] : ['-c', this.configFile]), '-a', this.host, '-p', String(this.port), '-js', '-sd', this.storeDir, '--http_port', String(this.monitorPort), ...this.extraArgs];
    const child = spawn(findNatsServer(), args, {
      stdio: ['ignore', 'ignore', this.verbose ? 'inherit' : 'ignore'],
    });
    this.child = child;
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await waitForPort(this.host, this.port, 10_000, child);
  }

  async stop(): Promise<void> {
    await this.kill();
    if (this.ownsStore) await rm(this.storeDir, { recursive: true, force: true });
  }

  /** Ends the process at once with SIGKILL, as a crash would (the store is kept; `restart()` brings it back). */
  async crash(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /**
   * Resolves once the monitoring endpoint's `/healthz` says the server is healthy (with JetStream
   * clustered: it has a meta leader and its streams are current).
   */
  async healthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`http://${this.host}:${this.monitorPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return;
        last = await res.text();
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`nats-server on ${this.host}:${this.port} not healthy within ${timeoutMs} ms: ${last}`);
  }

  /** Stops the process but keeps the store, for restart tests. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }
}

export interface NatsClusterOptions {
  /** Nodes (default 3: JetStream keeps a quorum when one is lost). */
  readonly size?: number;
  readonly host?: string;
  readonly verbose?: boolean;
  /** nats-server config text for every node (e.g. an authorization block). */
  readonly config?: string;
  /** Client port of each node (0 or missing: a free one). */
  readonly ports?: readonly number[];
  /** JetStream stores under this directory (`node-<i>`), kept on stop; fresh temporary ones when omitted. */
  readonly storeDir?: string;
}

/** How many times a cluster on picked ports is started before its error is thrown. */
const START_ATTEMPTS = 3;

/**
 * A JetStream cluster of real nats-server processes on loopback ports, each with its own
 * store; `url` lists every node (what an app's AVIARY_NATS_URL takes). A node can be crashed
 * (`nodes[i].crash()`) and brought back with its store (`nodes[i].restart()`).
 */
export class NatsCluster {
  private constructor(readonly nodes: readonly NatsServer[]) {}

  get url(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  static async start(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
    // Ports are picked free and then bound by nats-server: another process may take one in
    // between (a busy machine running several suites). Picked ports get fresh ones and another try.
    for (let attempt = 1; ; attempt++) {
      try {
        return await NatsCluster.startOnce(opts);
      } catch (err) {
        if (opts.ports !== undefined || attempt >= START_ATTEMPTS) throw err;
      }
    }
  }

  private static async startOnce(opts: NatsClusterOptions): Promise<NatsCluster> {
    const size = opts.size ?? 3;
    const host = opts.host ?? '127.0.0.1';
    if (opts.storeDir !== undefined) for (let i = 0; i < size; i++) await mkdir(join(opts.storeDir, `node-${i}`), { recursive: true });
    const routePorts: number[] = [];
    for (let i = 0; i < size; i++) routePorts.push(await freePort(host));
    // Stable names: a node restarted on the same store (or a launcher run again on its state
    // directory) is the same JetStream peer in the same cluster.
    const name = 'aviary';
    const started = await Promise.allSettled(
      routePorts.map((port, i) =>
        NatsServer.start({
          host,
          name: `${name}-${i}`,
          ...(opts.ports?.[i] === undefined ? {} : { port: opts.ports[i] }),
          ...(opts.storeDir === undefined ? {} : { storeDir: join(opts.storeDir, `node-${i}`) }),
          cluster: { name, port, routes: routePorts.filter((p) => p !== port).map((p) => `nats://${host}:${p}`) },
          ...(opts.verbose === undefined ? {} : { verbose: opts.verbose }),
          ...(opts.config === undefined ? {} : { config: opts.config }),
        }),
      ),
    );
    const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      // No node of a cluster that did not form is left running.
      await Promise.all(nodes.map((n) => n.stop()));
      throw failed.reason;
    }
    const cluster = new NatsCluster(nodes);
    try {
      await cluster.healthy();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** Every running node healthy (a JetStream meta leader elected, streams current). */
  async healthy(timeoutMs = 30_000): Promise<void> {
    await Promise.all(this.nodes.filter((n) => n.pid !== undefined).map((n) => n.healthy(timeoutMs)));
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
