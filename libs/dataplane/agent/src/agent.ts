import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { envoyBootstrap, type BootstrapInput } from './bootstrap';
import { EnvoyAdmin } from './envoy-admin';
import { ENVOY_LOG_FORMAT, EnvoySupervisor, reapStaleEnvoy, type EnvoyLogger } from './envoy-process';
import { IdentityManager, type IdentityEvent, type IdentityOptions, type WorkloadCertificate } from './identity';
import { ROOT_SECRET, SdsServer, tlsCertificateSecret, validationContextSecret, WORKLOAD_SECRET, type SdsEvent } from './sds-server';

export interface AgentLogger extends EnvoyLogger {
  child(bindings: Record<string, unknown>): AgentLogger;
}

export interface AgentOptions {
  /** Where the bootstrap and the SDS/ALS sockets live (created if missing). */
  readonly workDir: string;
  readonly envoyBinary: string;
  /** Everything but the paths and the admin port, which the agent fills in. */
  readonly bootstrap: Omit<BootstrapInput, 'sdsSocket' | 'alsSocket' | 'adminPort'>;
  /** Envoy's admin port on 127.0.0.1; 0 picks a free one at start. */
  readonly envoyAdminPort: number;
  readonly concurrency: number;
  /** Extra environment for Envoy. */
  readonly envoyEnv?: Readonly<Record<string, string>>;
  /** Envoy's own log level (`-l`). */
  readonly envoyLogLevel: 'trace' | 'debug' | 'info' | 'warning' | 'error' | 'critical' | 'off';
  /** How long a drain lets open connections finish before Envoy is told to quit. */
  readonly drainMs: number;
  readonly logger: AgentLogger;
  readonly registry?: Registry;
  /** The workload certificate from citadel (omitted: no `default` secret is served). */
  readonly identity?: Omit<IdentityOptions, 'onCertificate' | 'onEvent' | 'registry'>;
  /** Envoy restart back-off (see EnvoySupervisor). */
  readonly restartBackoff?: { readonly initialMs: number; readonly maxMs: number; readonly stableMs: number };
  readonly readinessPollMs?: number;
}

export interface AgentStatus {
  readonly envoy: { readonly pid: number | undefined; readonly state: string | undefined; readonly restarts: number; readonly adminPort: number };
  readonly configReceived: boolean;
  readonly pilotConnected: boolean;
  readonly draining: boolean;
  readonly secrets: readonly string[];
  readonly certificate?: { readonly serial: string; readonly notAfter: string; readonly version: number; readonly valid: boolean };
}

/** A free TCP port on 127.0.0.1 (for Envoy's admin when none is configured). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The mesh agent around one Envoy (Istio's pilot-agent): writes the bootstrap, serves SDS on a
 * Unix socket (workload certificate from citadel, trust bundle), runs and restarts Envoy, and
 * knows when Envoy is ready (LIVE, CDS and LDS received, a valid certificate when one is
 * configured) and how to drain it.
 */
export class EnvoyAgent {
  readonly sds: SdsServer;
  readonly identity: IdentityManager | undefined;
  private envoy: EnvoySupervisor | undefined;
  private adminClient: EnvoyAdmin | undefined;
  private bundleRoots: readonly string[] = [];
  private caRoots: readonly string[] = [];
  private poll: NodeJS.Timeout | undefined;
  private envoyState: string | undefined;
  private received = false;
  private pilotConnected: boolean | undefined;
  private draining = false;
  private readonly log: AgentLogger;
  readonly paths: { readonly bootstrap: string; readonly sds: string; readonly als: string; readonly envoyPid: string };

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.paths = { bootstrap: join(opts.workDir, 'envoy-bootstrap.json'), sds: join(opts.workDir, 'sds.sock'), als: join(opts.workDir, 'als.sock'), envoyPid: join(opts.workDir, 'envoy.pid') };
    const sdsLog = this.log.child({ component: 'sds' });
    this.sds = new SdsServer((e: SdsEvent) => {
      if (e.event === 'nack') sdsLog.warn({ protocol: e.protocol, error: e.error }, 'Envoy rejected a secret (NACK)');
      else if (e.event === 'unknown_secret') sdsLog.warn({ names: e.names }, 'Envoy asks for a secret the agent does not serve (it serves default and ROOTCA); what uses it stays warming');
      else if (e.event === 'pushed') sdsLog.debug({ protocol: e.protocol, names: e.names, version: e.version }, 'secrets pushed to Envoy');
      else sdsLog.debug({ protocol: e.protocol }, `SDS ${e.event.replace('_', ' ')}`);
    });
    if (opts.identity !== undefined) {
      const idLog = this.log.child({ component: 'identity' });
      this.identity = new IdentityManager({
        ...opts.identity,
        ...(opts.registry === undefined ? {} : { registry: opts.registry }),
        onCertificate: (c) => this.onCertificate(c),
        onEvent: (event: IdentityEvent, details) => {
          const msg = event.replace(/_/g, ' ');
          if (event === 'certificate_issued') idLog.info(details, msg);
          else if (event === 'certificate_expired') idLog.error(details, 'workload certificate expired; not ready until a new one arrives');
          else idLog.warn(details, msg);
        },
      });
    }
  }

  get admin(): EnvoyAdmin {
    if (this.adminClient === undefined) throw new Error('the agent has not started');
    return this.adminClient;
  }

  /** Writes the bootstrap, opens the SDS socket, asks citadel for the certificate and starts Envoy. */
  async start(): Promise<void> {
    mkdirSync(this.opts.workDir, { recursive: true });
    const adminPort = this.opts.envoyAdminPort !== 0 ? this.opts.envoyAdminPort : await freeLoopbackPort();
    this.adminClient = new EnvoyAdmin(adminPort);
    const bootstrap = envoyBootstrap({ ...this.opts.bootstrap, adminPort, sdsSocket: this.paths.sds, alsSocket: this.paths.als });
    const envoyLog = this.log.child({ component: 'envoy' });
    const stale = await reapStaleEnvoy(this.paths.envoyPid, this.paths.bootstrap);
    if (stale !== undefined) envoyLog.warn({ pid: stale }, 'stopped the Envoy a previous agent left running (that agent was killed)');
    writeFileSync(this.paths.bootstrap, `${JSON.stringify(bootstrap, null, 2)}\n`);
    await this.sds.listen(this.paths.sds);
    this.identity?.start();
    this.envoy = new EnvoySupervisor({
      binary: this.opts.envoyBinary,
      args: [
        '-c', this.paths.bootstrap,
        '--use-dynamic-base-id',
        '--concurrency', String(this.opts.concurrency),
        '-l', this.opts.envoyLogLevel,
        '--log-format', ENVOY_LOG_FORMAT,
        '--log-format-escaped',
        '--drain-time-s', String(Math.max(1, Math.ceil(this.opts.drainMs / 1000))),
        '--drain-strategy', 'immediate',
      ],
      logger: envoyLog,
      ...(this.opts.envoyEnv === undefined ? {} : { env: this.opts.envoyEnv }),
      ...(this.opts.restartBackoff === undefined ? {} : { backoff: this.opts.restartBackoff }),
      onStart: (pid, restarts) => {
        writeFileSync(this.paths.envoyPid, `${pid}\n`);
        envoyLog.info({ pid, restarts, adminPort, bootstrap: this.paths.bootstrap }, restarts === 0 ? 'Envoy started' : 'Envoy restarted');
      },
      onExit: (code, signal, restartInMs) => {
        this.received = false;
        this.envoyState = undefined;
        this.pilotConnected = undefined;
        if (restartInMs === undefined) envoyLog.info({ code, signal }, 'Envoy stopped');
        else envoyLog.error({ code, signal, restartInMs }, 'Envoy exited unexpectedly; restarting');
      },
    });
    this.envoy.start();
    const pollMs = this.opts.readinessPollMs ?? 500;
    const xdsLog = this.log.child({ component: 'xds' });
    const tick = async (): Promise<void> => {
      this.envoyState = await this.admin.state();
      const xds = this.envoyState === undefined ? undefined : await this.admin.xdsState();
      if (xds === undefined) return;
      this.received ||= xds.configReceived;
      if (xds.connected !== this.pilotConnected) {
        // Once per change: Envoy retries on its own and keeps serving what it has.
        if (xds.connected) xdsLog.info({ pilot: this.opts.bootstrap.pilot }, `Envoy ${this.pilotConnected === false ? 'reconnected' : 'connected'} to pilot over ${this.opts.bootstrap.xdsProtocol === 'delta' ? 'delta' : 'state-of-the-world'} ADS`);
        else if (this.pilotConnected === true) xdsLog.warn({ pilot: this.opts.bootstrap.pilot }, 'pilot unreachable; Envoy keeps serving the last config');
        this.pilotConnected = xds.connected;
      }
    };
    const loop = (): void => {
      this.poll = setTimeout(() => void tick().finally(() => this.poll !== undefined && loop()), pollMs);
    };
    loop();
  }

  /** The trust bundle (every root currently trusted) from citadel: the `ROOTCA` secret. */
  setTrustBundle(roots: readonly string[]): void {
    this.bundleRoots = roots;
    this.publishRoots();
  }

  /** Ready: Envoy LIVE with CDS and LDS received, a valid certificate if one is configured, not draining. */
  ready(): boolean {
    return !this.draining && this.envoyState === 'LIVE' && this.received && (this.identity === undefined || this.identity.valid());
  }

  status(): AgentStatus {
    const cert = this.identity?.certificate;
    return {
      envoy: { pid: this.envoy?.pid, state: this.envoyState, restarts: this.envoy?.restarts ?? 0, adminPort: this.adminClient?.port ?? 0 },
      configReceived: this.received,
      pilotConnected: this.pilotConnected ?? false,
      draining: this.draining,
      secrets: this.sds.names(),
      ...(cert === undefined ? {} : { certificate: { serial: cert.serial, notAfter: cert.notAfter.toISOString(), version: cert.version, valid: this.identity?.valid() ?? false } }),
    };
  }

  /** Envoy stops accepting new connections and asks open ones to close (`/drain_listeners?graceful`). */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    if (this.envoy?.running !== true) return;
    try {
      await this.admin.post('/drain_listeners?graceful', 2_000);
    } catch (err) {
      this.log.warn({ err }, 'Envoy did not take the drain request');
    }
  }

  /** Graceful stop: drain, wait `drainMs`, `/quitquitquit`; SIGTERM/SIGKILL if Envoy does not leave. */
  async stop(): Promise<void> {
    if (this.poll !== undefined) clearTimeout(this.poll);
    this.poll = undefined;
    const envoy = this.envoy;
    if (envoy?.running === true) {
      await this.drain();
      await new Promise((r) => setTimeout(r, this.opts.drainMs));
      envoy.expectExit();
      await this.admin.post('/quitquitquit', 1_000).catch(() => 0);
      if (!(await envoy.waitExit(3_000))) await envoy.stop(2_000);
    } else await envoy?.stop(0);
    this.identity?.stop();
    await this.sds.stop();
  }

  private onCertificate(c: WorkloadCertificate): void {
    this.caRoots = c.caRoots;
    this.sds.set(tlsCertificateSecret(WORKLOAD_SECRET, c.certChain, c.privateKey));
    this.publishRoots();
  }

  private publishRoots(): void {
    // The bundle plus the roots citadel returned with the certificate (a rotation may sign with a
    // new root before its bundle message arrives here).
    const roots = [...new Set([...this.bundleRoots, ...this.caRoots].map((r) => r.trim()))];
    if (roots.length > 0) this.sds.set(validationContextSecret(ROOT_SECRET, roots));
  }
}
