import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { isAviaryError } from '@aviary/errors';
import { Debouncer, systemClock, type Clock, type ResourceSource, type SourceChange, type XdsPeer } from '@aviary/xds-cache';
import { decodeResource, type CanonicalMessage, type ResourceTypeUrl } from '@aviary/xds-protos';
import { pushOrder, type Connection, type ProxyStatus, type StreamHost, type XdsLogger, type XdsStatusEvent } from './connection';
import { DeltaConnection } from './delta';
import { framePool, installResponseFraming } from './framing';
import { XdsMetrics } from './metrics';
import { PushQueue } from './push-queue';
import { SotwConnection } from './sotw';
import type { SubscriptionKey } from './subscriptions';
import { SendBudget } from './send-budget';
import { adsServiceDefinition, resourceBytes, type DeltaDiscoveryRequest, type DiscoveryRequest, type PendingResponse, type WireNode } from './wire';

export interface XdsServerOptions<P extends XdsPeer = XdsPeer> {
  readonly source: ResourceSource<P>;
  /**
   * Node → the proxy the source is asked about (mesh semantics, e.g. Istio's node id format,
   * live there, not here). Throw an AviaryError of kind INVALID_ARGUMENT to refuse a node: the
   * stream then ends with INVALID_ARGUMENT.
   */
  readonly nodeParser: (node: WireNode) => P;
  /** Every `kind` the parser gives (a closed set): the connected-proxies gauge shows each at 0 from the start. */
  readonly kinds?: readonly string[];
  /** Where the aviary_xds_* metrics are registered; a private registry when omitted. */
  readonly metrics?: Registry;
  readonly logger?: XdsLogger;
  /** Push debouncing of source changes; default 100 ms quiet, 1 s max, no leading edge. `quietMs: 0` pushes at once. */
  readonly debounce?: PushDebounce;
  readonly clock?: Clock;
  /** `control_plane.identifier` sent in every response. */
  readonly controlPlaneId?: string;
  /**
   * Every `reason` a `StreamAuthorizer` given to `listen`/`register` may return (a closed set):
   * the refused-streams counter shows each at 0 from the start.
   */
  readonly refusalReasons?: readonly string[];
  /** Capacity and rebalancing of this replica's streams (see `XdsStreamLimits`). */
  readonly limits?: XdsStreamLimits;
  /**
   * Longest a listener/route push waits for the clusters it names to warm on the proxy, and a
   * removed cluster is kept for the routes that still name it (make-before-break, see
   * `ClusterWarming`); then the push goes anyway (`aviary_xds_warming_holds_total{outcome="timeout"}`).
   * Default `WARMING_TIMEOUT_MS`.
   */
  readonly warmingTimeoutMs?: number;
}

/**
 * The default bound of a warming hold: far above the round trips a warm-up takes (CDS ACK, EDS
 * request, EDS response and ACK: milliseconds on a healthy stream), well below Envoy's own
 * `initial_fetch_timeout` (15 s), after which a cluster whose assignment never came is warm anyway.
 */
export const WARMING_TIMEOUT_MS = 5_000;

/**
 * How source changes are coalesced into pushes (Istio: PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX,
 * PILOT_ENABLE_EDS_DEBOUNCE).
 * - `quietMs`: a burst is pushed once no change came for this long (0: every change at once);
 * - `maxDelayMs`: no change waits longer than this, however long the burst goes on;
 * - `leadingEndpoints`: a change whose `reason` is `endpoints` that follows a quiet period
 *   (no change for `quietMs`) is pushed at once, with whatever endpoint changes come in the same
 *   event-loop turn; changes after it within `quietMs` are debounced as above, so a storm of
 *   endpoint changes still costs a push per quiet period or per `maxDelayMs`, not one per change.
 *   Istio's PILOT_ENABLE_EDS_DEBOUNCE=false instead pushes every EDS change without debouncing.
 */
export interface PushDebounce {
  readonly quietMs: number;
  readonly maxDelayMs: number;
  readonly leadingEndpoints?: boolean;
}

/**
 * How a replica sheds and spreads its load when several serve the same proxies.
 * - `maxStreams`: open ADS streams this server serves at most; a stream over it ends at once with
 *   UNAVAILABLE ("try again", which Envoy and gRPC clients do after their back-off; behind a
 *   Service or with several addresses the retry lands on another replica) and counts as
 *   `aviary_xds_streams_refused_total{reason="max_streams"}`. 0: no limit.
 * - `maxConnectionAgeMs`: a client connection older than this (±10 % jitter, so a fleet that
 *   connected together does not leave together) gets an HTTP/2 GOAWAY; the ADS stream on it
 *   ends after `maxConnectionAgeGraceMs` and the proxy re-opens it on a new connection, which
 *   the Service (or Envoy's round robin over pilot addresses) may place on another replica.
 *   Proxies keep their config meanwhile. This is how a replica that was added, or came back,
 *   gets its share. 0: connections live for ever.
 */
export interface XdsStreamLimits {
  readonly maxStreams?: number;
  readonly maxConnectionAgeMs?: number;
  readonly maxConnectionAgeGraceMs?: number;
}

/** The refusal reason of a stream over `XdsStreamLimits.maxStreams`. */
export const MAX_STREAMS_REASON = 'max_streams';

/** What the transport knows of a stream's peer. */
export interface StreamPeer {
  /** `ip:port` as gRPC reports it. */
  readonly address: string;
  /** `ssl` on a TLS listener; unset on a plaintext one. */
  readonly transportSecurity?: string;
  /** The client certificate the TLS handshake verified (only on a listener that requires one). */
  readonly certificate?: PeerCertificate;
}

/** A verdict; an allowed one may hand back the proxy refined by what the transport proved (e.g. marked authenticated). */
export type StreamVerdict<P = never> = { readonly allowed: true; readonly proxy?: P } | { readonly allowed: false; readonly reason: string; readonly message: string };

/**
 * Decides, from the parsed node and the transport peer, whether a stream may be served. Called
 * once per stream, on its first request. A refusal ends the stream with PERMISSION_DENIED, a
 * warning and `aviary_xds_streams_refused_total{reason}`; `reason` must be one of
 * `XdsServerOptions.refusalReasons`.
 */
export type StreamAuthorizer<P> = (proxy: P, peer: StreamPeer) => StreamVerdict<P>;

export interface ConfigDumpEntry {
  readonly typeUrl: ResourceTypeUrl;
  readonly version?: string;
  readonly ackedVersion?: string;
  readonly resources: readonly CanonicalMessage[];
}

/**
 * Streams pushed per event-loop turn after a change. Small enough that the first responses are
 * written within a millisecond or two; each turn costs the loop a poll, far less than a push.
 */
const PUSHES_PER_TURN = 8;

/**
 * Response bytes handed to grpc-js and not yet written, across all streams (see `SendBudget`),
 * and how long an unwritten response counts against them. About 80 EDS responses of the
 * benchmark's mesh. The framing pool keeps up to twice that idle (`IDLE_MAX` in framing.ts), so
 * that buffers of every size class in use are there to be reused.
 */
const SEND_BUDGET_BYTES = 24 * 1024 * 1024;
const SEND_HOLD_MS = 2_000;

const silentLogger: XdsLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined };

type Call<Req> = grpc.ServerDuplexStream<Req, PendingResponse>;

/**
 * The ADS server (envoy.service.discovery.v3.AggregatedDiscoveryService): SotW and delta
 * streams over a `ResourceSource`. It knows nothing of mesh semantics: what a proxy gets is
 * `source.resourcesFor(proxy)`, filtered by what the proxy subscribed to.
 */
export class XdsServer<P extends XdsPeer = XdsPeer> {
  readonly metrics: XdsMetrics;
  private readonly connections = new Map<number, Connection<P>>();
  private readonly statusListeners = new Set<(event: XdsStatusEvent<P>) => void>();
  private readonly host: StreamHost<P>;
  private readonly debouncer: Debouncer<SourceChange<P>[]> | undefined;
  private readonly unsubscribe: () => void;
  private grpcServers: grpc.Server[] = [];
  /** Every ADS call being served, whether or not its first request arrived (for `maxStreams`). */
  private readonly calls = new Set<object>();
  private readonly clock: Clock;
  private readonly sendBudget: SendBudget;
  /** Streams a change concerns, pushed a few per event-loop turn (see `PushQueue`). */
  private readonly pushes = new PushQueue<Connection<P>>(PUSHES_PER_TURN, (err, conn) => this.host.log.warn({ err, proxyId: conn.proxy.id }, 'push failed; the stream gets the next change'));

  constructor(private readonly options: XdsServerOptions<P>) {
    this.clock = options.clock ?? systemClock;
    this.sendBudget = new SendBudget(SEND_BUDGET_BYTES, SEND_HOLD_MS, this.clock);
    this.metrics = new XdsMetrics(options.metrics, options.kinds, ['invalid_node', MAX_STREAMS_REASON, ...(options.refusalReasons ?? [])]);
    this.metrics.observeSending(() => ({ heldBytes: this.sendBudget.heldSize, waiting: this.sendBudget.waitingCount, poolIdleBytes: framePool.idleSize }));
    const log = options.logger ?? silentLogger;
    this.host = {
      source: options.source,
      metrics: this.metrics,
      log,
      controlPlaneId: options.controlPlaneId,
      clock: this.clock,
      warmingTimeoutMs: options.warmingTimeoutMs ?? WARMING_TIMEOUT_MS,
      now: () => this.clock.now(),
      emit: (event) => {
        for (const l of [...this.statusListeners]) {
          try {
            l(event);
          } catch (err) {
            log.warn({ err }, 'status listener failed');
          }
        }
      },
    };
    const debounce = options.debounce ?? { quietMs: 100, maxDelayMs: 1000 };
    this.debouncer =
      debounce.quietMs > 0
        ? new Debouncer<SourceChange<P>[]>({
            quietMs: debounce.quietMs,
            maxDelayMs: debounce.maxDelayMs,
            merge: (a, b) => [...a, ...b],
            flush: (c) => this.apply(c),
            clock: this.clock,
            ...(debounce.leadingEndpoints === true && { leading: (changes: SourceChange<P>[]) => changes.every((c) => c.reason === 'endpoints') }),
          })
        : undefined;
    this.unsubscribe = options.source.onChange((change) => {
      // A change of no type pushes nothing; it must not open (or prolong) a debounce window either.
      if (change.types?.length === 0) return;
      if (this.debouncer) this.debouncer.push([change]);
      else this.apply([change]);
    });
  }

  /** Subscribes to connected/ack/nack/disconnected events; returns the unsubscribe function. */
  onStatus(listener: (event: XdsStatusEvent<P>) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Adds the ADS service to a gRPC server the caller owns; `authorize` vets each of its streams. */
  register(server: grpc.Server, authorize?: StreamAuthorizer<P>): void {
    if (!installResponseFraming()) this.host.log.warn({}, 'grpc-js internals are not as expected: ADS responses are framed by grpc-js, with a copy each');
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (call: Call<DiscoveryRequest>) => this.serve(call, 'sotw', authorize),
      DeltaAggregatedResources: (call: Call<DeltaDiscoveryRequest>) => this.serve(call, 'delta', authorize),
    });
  }

  /**
   * Starts an own gRPC server on `address` (call once per listener, e.g. a loopback plaintext
   * port and an mTLS port); resolves to the bound port. `authorize` vets every stream of this
   * listener (e.g. the peer certificate against the node's claims).
   */
  async listen(address = '127.0.0.1:15010', credentials = grpc.ServerCredentials.createInsecure(), authorize?: StreamAuthorizer<P>): Promise<number> {
    const { maxConnectionAgeMs = 0, maxConnectionAgeGraceMs = 10_000 } = this.options.limits ?? {};
    const server = new grpc.Server({
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      // grpc-js adds ±10 % jitter to the age and sends GOAWAY; the grace then closes the connection.
      ...(maxConnectionAgeMs > 0 && { 'grpc.max_connection_age_ms': maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': maxConnectionAgeGraceMs }),
    });
    this.register(server, authorize);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))));
    this.grpcServers.push(server);
    return port;
  }

  /** Ends every stream, stops the own gRPC server (forced after `graceMs`) and detaches from the source. */
  async stop(graceMs = 1000): Promise<void> {
    this.unsubscribe();
    this.debouncer?.cancel();
    this.pushes.clear();
    const servers = this.grpcServers;
    this.grpcServers = [];
    if (servers.length === 0) return;
    const shutdown = Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, graceMs);
            server.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    for (const conn of this.connections.values()) conn.close();
    await shutdown;
  }

  /** Drops every stream at once, as a crash would (for restart tests). */
  kill(): void {
    this.unsubscribe();
    this.debouncer?.cancel();
    this.pushes.clear();
    for (const server of this.grpcServers) server.forceShutdown();
    this.grpcServers = [];
  }

  /** Pushes a debounced change now (the first streams at once, the others over the next event-loop turns). */
  flush(): void {
    this.debouncer?.flushNow();
  }

  /** Every open stream with its per-type state (for `GET /api/v1/proxies`). */
  proxies(): ProxyStatus<P>[] {
    return [...this.connections.values()].map((c) => c.status());
  }

  /** What the newest stream of `proxyId` holds (delta) or was last sent (SotW), decoded (for `config_dump`). */
  configDump(proxyId: string): ConfigDumpEntry[] | undefined {
    const conn = [...this.connections.values()].filter((c) => c.proxy.id === proxyId).at(-1);
    if (!conn) return undefined;
    return pushOrder
      .filter((t) => conn.types.has(t))
      .map((typeUrl) => {
        const st = conn.types.get(typeUrl)!;
        const resources = st.sentResources().map((r) => decodeResource(typeUrl, r.bytes));
        return {
          typeUrl,
          ...(st.sentVersion !== undefined && { version: st.sentVersion }),
          ...(st.ackedVersion !== undefined && { ackedVersion: st.ackedVersion }),
          resources,
        };
      });
  }

  /**
   * Pushes a debounced burst. The changes are kept apart rather than merged into one, so each
   * stream gets the union of only the changes that concern it (an EDS change for everyone plus
   * a full change for the proxies at one IP must not become a full change for everyone), and a
   * stream that watches none of the changed names is not asked to compute anything. The streams
   * concerned are decided here and pushed through `pushes`, a few per event-loop turn.
   */
  private apply(changes: readonly SourceChange<P>[]): void {
    const answers = changes.map(() => new Map<SubscriptionKey, boolean>());
    for (const conn of this.connections.values()) {
      let all = false;
      const types = new Set<ResourceTypeUrl>();
      let observedAt: number | undefined;
      let relevant = false;
      for (const [i, change] of changes.entries()) {
        if (change.affects && !change.affects(conn.proxy)) continue;
        if (change.names && change.types && !conn.watchesAnyOf(change.types, change.names, answers[i])) continue;
        relevant = true;
        if (change.types) for (const t of change.types) types.add(t);
        else all = true;
        if (change.observedAt !== undefined) observedAt = Math.min(observedAt ?? change.observedAt, change.observedAt);
      }
      if (relevant) this.pushes.add(conn, all ? undefined : [...types], observedAt);
    }
    this.pushes.run();
  }

  /** Open ADS calls (streams being served, including those whose first request has not arrived). */
  get openStreams(): number {
    return this.calls.size;
  }

  private serve(call: Call<DiscoveryRequest> | Call<DeltaDiscoveryRequest>, protocol: 'sotw' | 'delta', authorize: StreamAuthorizer<P> | undefined): void {
    const maxStreams = this.options.limits?.maxStreams ?? 0;
    if (maxStreams > 0 && this.calls.size >= maxStreams) {
      this.metrics.refused.inc({ reason: MAX_STREAMS_REASON });
      this.host.log.warn({ peer: call.getPeer(), maxStreams }, 'ADS stream refused: this replica is full');
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: `this xDS server is full (${maxStreams} streams); retry, another replica may have room` });
      return;
    }
    this.calls.add(call);
    const release = (): void => void this.calls.delete(call);
    call.on('close', release);
    call.on('error', release);
    call.on('cancelled', release);
    call.on('finish', release);
    let conn: SotwConnection<P> | DeltaConnection<P> | undefined;
    const write = (response: PendingResponse): void => {
      if (!call.writable || call.cancelled) return;
      this.sendBudget.submit(resourceBytes(response), (done) => {
        if (!call.writable || call.cancelled) return done();
        call.write(response, done);
      });
    };
    const cleanup = (): void => {
      if (!conn || conn.closed) return;
      conn.closed = true;
      conn.dispose();
      this.connections.delete(conn.streamId);
      this.metrics.connected.dec({ kind: conn.proxy.kind });
      conn.emit({ event: 'disconnected' });
    };
    call.on('data', (req: DiscoveryRequest & DeltaDiscoveryRequest) => {
      try {
        if (!conn) {
          const parsed = this.parse(req.node);
          const proxy = authorize === undefined ? parsed : this.authorized(call, parsed, authorize);
          if (proxy === undefined) return;
          conn = protocol === 'sotw' ? new SotwConnection(this.host, proxy, write) : new DeltaConnection(this.host, proxy, write);
          conn.close = () => {
            cleanup();
            call.end();
          };
          this.connections.set(conn.streamId, conn);
          this.metrics.connected.inc({ kind: proxy.kind });
          conn.emit({ event: 'connected' });
        }
        if (conn instanceof SotwConnection) conn.onRequest(req);
        else conn.onRequest(req);
        // Keys the subscription now, while serving the request, rather than in the next push decision.
        conn.types.get(req.type_url as ResourceTypeUrl)?.names.key();
      } catch (err) {
        const details = isAviaryError(err) ? err.message : `internal error: ${(err as Error).message}`;
        const code = isAviaryError(err) && err.kind === 'INVALID_ARGUMENT' ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
        this.host.log.warn({ err, proxyId: conn?.proxy.id }, 'ADS stream failed');
        if (conn === undefined && code === grpc.status.INVALID_ARGUMENT) this.metrics.refused.inc({ reason: 'invalid_node' });
        cleanup();
        call.emit('error', { code, details });
      }
    });
    call.on('end', () => {
      cleanup();
      call.end();
    });
    call.on('cancelled', cleanup);
    call.on('error', cleanup);
    call.on('close', cleanup);
  }

  /** Runs the listener's authorizer: the proxy to serve, or undefined after ending the stream with PERMISSION_DENIED. */
  private authorized(call: Call<DiscoveryRequest> | Call<DeltaDiscoveryRequest>, proxy: P, authorize: StreamAuthorizer<P>): P | undefined {
    const auth = call.getAuthContext();
    const peer: StreamPeer = {
      address: call.getPeer(),
      ...(auth.transportSecurityType !== undefined && { transportSecurity: auth.transportSecurityType }),
      ...(auth.sslPeerCertificate !== undefined && { certificate: auth.sslPeerCertificate }),
    };
    const verdict = authorize(proxy, peer);
    if (verdict.allowed) return verdict.proxy ?? proxy;
    this.metrics.refused.inc({ reason: verdict.reason });
    this.host.log.warn({ proxyId: proxy.id, peer: peer.address, reason: verdict.reason, detail: verdict.message }, 'ADS stream refused');
    call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: verdict.message });
    return undefined;
  }

  private parse(node: WireNode | undefined): P {
    return this.options.nodeParser(node ?? {});
  }
}
