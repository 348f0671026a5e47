import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ConfigStore, Watch } from '@aviary/config-store';
import { Subjects, type Bus } from '@aviary/events';
import type { ExtensionProvider } from '@aviary/mesh-api';
import { lenientNodeParser, proxyKinds, SnapshotBuilder, type GatewayCredential, type MeshSnapshot, type ProxyInfo, type SnapshotDelta } from '@aviary/mesh-model';
import type * as grpc from '@grpc/grpc-js';
import { XdsServer, type PushDebounce, type XdsStreamLimits } from '@aviary/xds-server';
import { BuildPacer } from './build-pacer';
import { defaultJwksOptions, JwksResolver, type JwksResolverOptions } from './jwks';
import { applyDelta, meshSource, type MeshSource } from './mesh-source';
import { StatusPublisher, type StatusBatching } from './status-publisher';
import { identityRefusalReasons, proxyIdentityAuthorizer } from './xds-identity';

export interface DiscoveryOptions {
  readonly store: ConfigStore;
  readonly bus: Bus;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly trustDomain: string;
  readonly debounce: PushDebounce;
  /** How `aviary.xds.v1.status` ACK events are coalesced (see `StatusPublisher`). */
  readonly status?: StatusBatching;
  /** MeshConfig `extensionProviders` (validated at boot). */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /** How RequestAuthentication `jwksUri` key sets are fetched (defaults: `defaultJwksOptions`). */
  readonly jwks?: Partial<Omit<JwksResolverOptions, 'logger' | 'onChange'>>;
  /** Labels of the proxies serving every Gateway API Gateway (MeshOptions.gatewayApiSelector). */
  readonly gatewayApiSelector?: Readonly<Record<string, string>>;
  /** Called with each model whose Gateway API output changed (the status writer). */
  readonly onGatewayApi?: (snapshot: MeshSnapshot) => void;
  /** Stream capacity and connection-age rebalancing of this replica. */
  readonly limits?: XdsStreamLimits;
  /** Bound of a make-before-break hold (the xDS server's `warmingTimeoutMs`). */
  readonly warmingTimeoutMs?: number;
  /** `control_plane.identifier` in every response: which replica served it. */
  readonly controlPlaneId?: string;
}

/**
 * Pilot's discovery pipeline: config store watch → incremental mesh model → per-proxy
 * translation (memoized per proxy group) → ADS server. An endpoint-only change pushes only EDS
 * (plus the inbound side of the proxies whose own endpoints changed).
 */
export class Discovery {
  private readonly builder: SnapshotBuilder;
  private readonly source: MeshSource;
  readonly server: XdsServer<ProxyInfo>;
  private readonly pacer: BuildPacer<SnapshotDelta>;
  private watch: Watch | undefined;
  private initialized = false;
  private listening = false;
  private readonly stopStatus: () => void;
  private readonly status: StatusPublisher;
  private readonly jwks: JwksResolver;

  constructor(private readonly opts: DiscoveryOptions) {
    this.builder = new SnapshotBuilder({
      trustDomain: opts.trustDomain,
      extensionProviders: opts.extensionProviders ?? [],
      ...(opts.gatewayApiSelector && { gatewayApiSelector: opts.gatewayApiSelector }),
    });
    // The JWKS source (I/O) feeds fetched key sets into the model; a change rebuilds it.
    this.jwks = new JwksResolver({
      ...defaultJwksOptions,
      ...opts.jwks,
      logger: opts.logger.child({ component: 'jwks' }),
      onChange: (resolutions) => {
        if (this.builder.setJwks(resolutions) && this.initialized) this.pacer.request();
      },
    });
    const first = this.builder.build();
    this.source = meshSource(first.snapshot, {
      onRejected: (proxy, error) => opts.logger.error({ proxy: proxy.id, err: error }, 'translation refused; serving the last good config'),
    });
    this.server = new XdsServer({
      source: this.source,
      nodeParser: lenientNodeParser(opts.trustDomain),
      kinds: proxyKinds,
      metrics: opts.registry,
      logger: opts.logger.child({ component: 'xds' }),
      debounce: opts.debounce,
      refusalReasons: identityRefusalReasons,
      ...(opts.limits && { limits: opts.limits }),
      ...(opts.warmingTimeoutMs !== undefined && { warmingTimeoutMs: opts.warmingTimeoutMs }),
      ...(opts.controlPlaneId !== undefined && { controlPlaneId: opts.controlPlaneId }),
    });
    this.status = new StatusPublisher((data) => {
      try {
        opts.bus.publish(Subjects.xdsStatus, data);
      } catch (err) {
        opts.logger.warn({ err }, 'could not publish xDS status');
      }
    }, opts.status);
    this.stopStatus = this.server.onStatus((e) => this.status.push(e));
    this.pacer = new BuildPacer({
      build: () => this.builder.build(),
      publish: (delta, observedAt) => {
        if (delta.previous === undefined || delta.changedKinds.includes('RequestAuthentication')) this.jwks.sync(delta.snapshot.requestAuthentications.jwksUris());
        applyDelta(this.source, delta, observedAt);
        if (delta.snapshot.gatewayApi !== delta.previous?.gatewayApi) opts.onGatewayApi?.(delta.snapshot);
      },
    });
  }

  /**
   * Replaces the gateway credentials (Kubernetes Secrets, by `namespace/name`); a change pushes
   * only Secrets. Held in memory only.
   */
  setCredentials(credentials: ReadonlyMap<string, GatewayCredential>): void {
    if (this.builder.setCredentials(credentials) && this.initialized) this.pacer.request();
  }

  /** Replaces the namespaces' labels (Gateway listeners' `allowedRoutes` Selector); a change rebuilds the model. */
  setNamespaceLabels(labels: ReadonlyMap<string, Readonly<Record<string, string>>>): void {
    if (this.builder.setNamespaceLabels(labels) && this.initialized) this.pacer.request();
  }

  /** The mesh model pilot serves now (undefined before the first build). */
  get model(): MeshSnapshot | undefined {
    return this.builder.current();
  }

  get ready(): boolean {
    return this.initialized && this.listening;
  }

  /** Loads every stored object, then follows changes. */
  async start(): Promise<void> {
    this.watch = await this.opts.store.watch((event) => {
      const changed = this.builder.apply(event);
      if (changed && this.initialized) this.pacer.request();
    });
    await this.watch.initialized;
    this.pacer.buildNow();
    this.initialized = true;
  }

  /** The plaintext port: no authentication, so loopback development only. */
  async listen(host: string, port: number): Promise<number> {
    const bound = await this.server.listen(`${host}:${port}`);
    this.listening = true;
    return bound;
  }

  /**
   * The mTLS port: `credentials` require a client certificate chained to the mesh roots, and
   * every stream's SPIFFE ID must match the namespace and service account its node claims.
   */
  async listenTls(host: string, port: number, credentials: grpc.ServerCredentials): Promise<number> {
    const bound = await this.server.listen(`${host}:${port}`, credentials, proxyIdentityAuthorizer(this.opts.trustDomain));
    this.listening = true;
    return bound;
  }

  async stop(): Promise<void> {
    this.jwks.stop();
    this.stopStatus();
    this.status.close();
    this.pacer.cancel();
    await this.watch?.stop();
    await this.server.stop(2_000);
  }
}
