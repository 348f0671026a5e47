import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import {
  applyHeaderEdits,
  CircuitBreaker,
  decide,
  hash53,
  LoadBalancer,
  originalDstListener,
  OutlierDetector,
  retryBackoffMs,
  RoutingTable,
  evaluateRbac,
  selectFilterChain,
  shouldRetry,
  TokenBucket,
  type AttemptOutcome,
  type Clock,
  type Cluster,
  type Decision,
  type Endpoint,
  type FilterChain,
  type HeaderOps,
  type HttpRequestFacts,
  type Listener,
  type Rng,
} from '../domain';
import { ListenerServer, type ConnInfo, type DownstreamRequest, type DownstreamResponse } from './listen';
import { ProxyStats } from './stats';
import { resolveTls, secureContextFor, type ResolvedTls, type WorkloadIdentity } from './tls-material';
import { classify, UpstreamPools, type AttemptHandle, type OutgoingHeaders, type UpstreamError, type UpstreamResponse } from './upstream';
import { newSpanId, newTraceId, parseTraceparent, type TraceContext } from './trace';

/** Who this proxy is (from the node metadata), for telemetry. */
export interface ProxyNode {
  readonly id: string;
  readonly mode: 'router' | 'sidecar';
  readonly workload: string;
  readonly namespace: string;
  readonly app?: string;
  readonly version?: string;
  /** Our SPIFFE id once we have a certificate. */
  readonly principal?: string;
}

/** One finished request, in the shape of `RequestRecord` (libs/events). */
export interface ProxyRequestRecord {
  reporter: 'source' | 'destination';
  sourceWorkload: string;
  sourceNamespace: string;
  sourcePrincipal: string;
  sourceApp?: string;
  sourceVersion?: string;
  destinationWorkload: string;
  destinationNamespace: string;
  destinationPrincipal: string;
  destinationApp?: string;
  destinationService: string;
  destinationVersion: string;
  protocol: 'http' | 'grpc' | 'tcp';
  responseCode: number;
  responseFlags: string;
  connectionSecurityPolicy: 'mutual_tls' | 'none' | 'unknown';
  durationMs: number;
  requestBytes: number;
  responseBytes: number;
  startTime: string;
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
}

export interface AccessLogEntry {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly status: number;
  readonly flags: string;
  readonly cluster: string;
  readonly upstream: string;
  readonly durationMs: number;
  readonly attempts: number;
  readonly listener: string;
  readonly requestId: string;
  readonly traceId: string;
}

export interface ProxyOptions {
  readonly node: ProxyNode;
  /** Replaces every listener's bind address (local mode binds loopback). */
  readonly bindHost?: string;
  /** Maps a listener to the port to bind (undefined: do not bind it). Default: its own port. */
  readonly portFor?: (listener: Listener) => number | undefined;
  readonly clock?: Clock;
  readonly rng?: Rng;
  readonly onRecord?: (record: ProxyRequestRecord) => void;
  readonly onAccessLog?: (entry: AccessLogEntry) => void;
  readonly onEvent?: (event: string, details: Record<string, unknown>) => void;
  /** Largest request body buffered for retries and mirroring (bigger bodies are streamed, not retried). */
  readonly maxBufferedBody?: number;
}

interface ClusterRuntime {
  readonly cb: CircuitBreaker;
  outlier: OutlierDetector | undefined;
  lb: LoadBalancer;
  lbKey: string;
  cluster: Cluster;
  readonly active: Map<string, number>;
}

/**
 * Metadata exchange (Istio's x-envoy-peer-metadata, reduced): a proxy originating mesh mTLS
 * names its workload; the receiving sidecar trusts it only on an authenticated mTLS connection
 * and never forwards it to the app.
 */
export const PEER_WORKLOAD_HEADER = 'x-aviary-peer-workload';

const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings', 'expect']);

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The service host from pilot's inbound route decorator (`<host>:<port>/*`) or an Istio SNI (`outbound_.80_.v1_.<host>`). */
export function serviceOfInbound(operation: string | undefined, serverName: string | undefined): string {
  const fromOp = operation === undefined ? '' : (/^([^:/]+)(?::\d+)?\//.exec(operation)?.[1] ?? '');
  if (fromOp !== '' && fromOp !== '*') return fromOp;
  const sni = /^outbound_\.\d+_\.[^_]*_\.(.+)$/.exec(serverName ?? '');
  return sni?.[1] ?? '';
}

/** `spiffe://<td>/ns/<namespace>/sa/<account>` → namespace and service account. */
export function spiffeParts(principal: string | undefined): { namespace: string; serviceAccount: string } {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal ?? '');
  return { namespace: m?.[1] ?? '', serviceAccount: m?.[2] ?? '' };
}

/** `outbound|80|v1|reviews.default.svc.cluster.local` → service, namespace, subset. */
function describeCluster(name: string): { service: string; namespace: string; version: string; workload: string } {
  const parts = name.split('|');
  if (parts.length === 4) {
    const host = parts[3] ?? '';
    const labels = host.split('.');
    return { service: host, namespace: labels.length > 2 ? (labels[1] ?? '') : '', version: parts[2] ?? '', workload: labels[0] ?? '' };
  }
  return { service: name, namespace: '', version: '', workload: '' };
}

/**
 * The traffic engine: holds the current routing table (swapped atomically; a request keeps
 * the table it started with), binds the listeners the table names, and proxies HTTP/1.1,
 * HTTP/2 (h2c and TLS) and TCP by the compiled config.
 */
export class Proxy {
  private tableRef: RoutingTable = RoutingTable.empty();
  private identity: WorkloadIdentity | undefined;
  private readonly listeners = new Map<string, { server: ListenerServer; addr: string }>();
  private readonly runtimes = new Map<string, ClusterRuntime>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly pools = new UpstreamPools();
  private readonly clock: Clock;
  private readonly rng: Rng;
  readonly stats = new ProxyStats();
  private inflight = 0;
  draining = false;
  private applying: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ProxyOptions) {
    this.clock = opts.clock ?? (() => performance.now());
    this.rng = opts.rng ?? Math.random;
    this.stats.gauge('cluster_outlier_detection_ejections_active', () =>
      [...this.runtimes.entries()].map(([name, rt]) => ({ labels: { envoy_cluster_name: name }, value: rt.outlier?.ejectedCount(rt.lb.endpoints.map((e) => e.key)) ?? 0 })),
    );
    this.stats.gauge('cluster_upstream_rq_active', () => [...this.runtimes.entries()].map(([name, rt]) => ({ labels: { envoy_cluster_name: name }, value: rt.cb.active })));
    this.stats.gauge('server_live', () => [{ labels: {}, value: this.draining ? 0 : 1 }]);
  }

  get table(): RoutingTable {
    return this.tableRef;
  }

  get requestsInFlight(): number {
    return this.inflight;
  }

  /** Bound ports by listener name. */
  ports(): Record<string, number> {
    return Object.fromEntries([...this.listeners].map(([n, l]) => [n, l.server.boundPort]));
  }

  /**
   * Swaps in a new table: new requests use it at once; in-flight ones finish on the old. Then
   * binds new listeners and closes removed ones (their open connections drain).
   */
  apply(table: RoutingTable): Promise<void> {
    this.tableRef = table;
    this.applying = this.applying.then(() => this.reconcile(table)).catch((err: unknown) => this.opts.onEvent?.('listener_bind_failed', { err: String(err) }));
    return this.applying;
  }

  /** A new workload certificate or trust bundle: new connections use it; pools built with the old one close once idle. */
  setIdentity(identity: WorkloadIdentity): void {
    this.identity = identity;
    const v = identity.version;
    this.pools.retireTls((key) => {
      for (const m of key.matchAll(/\|(?:id|roots):(\d+)/g)) if (Number(m[1]) !== v) return false;
      return true;
    });
  }

  /**
   * Envoy's drain: stop accepting new connections on every listener (they are not re-bound
   * while draining); open connections finish, HTTP/1.1 responses carry `connection: close`.
   */
  async drain(graceMs = 5_000): Promise<void> {
    this.draining = true;
    const servers = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(servers.map((l) => l.server.close(graceMs)));
  }

  private async reconcile(table: RoutingTable): Promise<void> {
    if (this.tableRef !== table) return; // a newer table is already queued
    if (this.draining) return;
    const wanted = new Map<string, { listener: Listener; host: string; port: number }>();
    for (const l of table.listeners.values()) {
      if (!l.bindToPort) continue;
      const port = this.opts.portFor === undefined ? l.port : this.opts.portFor(l);
      if (port === undefined) continue;
      wanted.set(l.name, { listener: l, host: this.opts.bindHost ?? l.host, port });
    }
    for (const [name, cur] of this.listeners) {
      const w = wanted.get(name);
      if (w === undefined || cur.addr !== `${w.host}:${w.port}`) {
        this.listeners.delete(name);
        void cur.server.close();
      }
    }
    for (const [name, w] of wanted) {
      if (this.listeners.has(name)) continue;
      const server = new ListenerServer(name, {
        listener: () => this.tableRef.listeners.get(name),
        secureContext: (chain) => this.secureContextFor(chain),
        onRequest: (req, res, conn) => void this.handle(req, res, conn),
        onTcp: (socket, conn, chain) => this.tcp(socket, conn, chain),
        onConnectionRefused: (reason, conn) => {
          this.stats.inc('listener_downstream_cx_refused', { envoy_listener: name, reason });
          this.opts.onEvent?.('connection_refused', { reason, ...conn });
        },
      });
      this.listeners.set(name, { server, addr: `${w.host}:${w.port}` });
      await server.listen(w.host, w.port);
      this.opts.onEvent?.('listener_bound', { listener: name, host: w.host, port: server.boundPort });
    }
    this.pools.retain((c) => table.clusters.has(c));
    for (const name of this.runtimes.keys()) if (!table.clusters.has(name)) this.runtimes.delete(name);
  }

  private secureContextFor(chain: FilterChain) {
    if (chain.tls === undefined) return undefined;
    const t = resolveTls(chain.tls, this.tableRef.secrets, this.identity);
    if (t === undefined || t.cert === undefined || t.key === undefined) return undefined;
    return { context: secureContextFor(t), material: t };
  }

  private readonly lbKeys = new WeakMap<readonly Endpoint[], string>();

  private runtime(cluster: Cluster, endpoints: readonly Endpoint[]): ClusterRuntime {
    let rt = this.runtimes.get(cluster.name);
    if (rt !== undefined && rt.cluster === cluster && rt.lb.endpoints === endpoints) return rt; // the hot path
    let epKey = this.lbKeys.get(endpoints);
    if (epKey === undefined) {
      epKey = endpoints.map((e) => `${e.key}/${e.weight}/${e.priority}/${e.healthy ? 1 : 0}`).join(',');
      this.lbKeys.set(endpoints, epKey);
    }
    const lbKey = `${cluster.lbPolicy}|${epKey}`;
    if (rt === undefined) {
      rt = {
        cb: new CircuitBreaker(cluster.limits),
        outlier: cluster.outlier === undefined ? undefined : new OutlierDetector(cluster.outlier, this.clock, this.rng),
        lb: new LoadBalancer(cluster.lbPolicy, endpoints, this.rng, cluster.ringSize, cluster.choiceCount),
        lbKey,
        cluster,
        active: new Map(),
      };
      this.runtimes.set(cluster.name, rt);
    } else if (rt.cluster !== cluster || rt.lbKey !== lbKey) {
      rt.cb.update(cluster.limits);
      if (cluster.outlier === undefined) rt.outlier = undefined;
      else if (rt.outlier === undefined) rt.outlier = new OutlierDetector(cluster.outlier, this.clock, this.rng);
      else rt.outlier.update(cluster.outlier);
      // Same endpoints under a new array (a re-sent EDS): keep the balancer's state.
      rt.lb = rt.lbKey !== lbKey ? new LoadBalancer(cluster.lbPolicy, endpoints, this.rng, cluster.ringSize, cluster.choiceCount) : rt.lb.withEndpoints(endpoints);
      rt.lbKey = lbKey;
      rt.cluster = cluster;
    }
    return rt;
  }

  /** Outlier and endpoint state for `/clusters`. */
  clusterStatus(): Record<string, { endpoints: { address: string; healthy: boolean; ejected: boolean; active: number; weight: number }[]; active: number; limits: Cluster['limits'] }> {
    const out: ReturnType<Proxy['clusterStatus']> = {};
    for (const cluster of this.tableRef.clusters.values()) {
      const eps = this.tableRef.endpointsOf(cluster);
      const rt = this.runtimes.get(cluster.name);
      out[cluster.name] = {
        endpoints: eps.map((e) => ({ address: e.key, healthy: e.healthy, ejected: rt?.outlier?.isEjected(e.key) ?? false, active: rt?.active.get(e.key) ?? 0, weight: e.weight })),
        active: rt?.cb.active ?? 0,
        limits: cluster.limits,
      };
    }
    return out;
  }

  private decisionState = {
    rng: () => this.rng(),
    bucket: (key: string, c: { maxTokens: number; tokensPerFill: number; fillIntervalMs: number }) => {
      let b = this.buckets.get(key);
      if (b === undefined) {
        b = new TokenBucket(c.maxTokens, c.tokensPerFill, c.fillIntervalMs, this.clock);
        this.buckets.set(key, b);
      }
      return b;
    },
  };

  private async handle(req: DownstreamRequest, res: DownstreamResponse, conn: ConnInfo): Promise<void> {
    const table = this.tableRef; // the table this request lives on
    const started = this.clock();
    const startTime = new Date().toISOString();
    this.inflight++;
    const h = req.headers as IncomingHttpHeaders & Record<string, string | string[] | undefined>;
    const method = req.method ?? 'GET';
    const authority = first(h[':authority']) ?? first(h.host) ?? '';
    const path = req.url ?? '/';
    const scheme = conn.tls ? 'https' : 'http';
    const trace = parseTraceparent(first(h.traceparent));
    const spanId = newSpanId();
    const requestId = first(h['x-request-id']) ?? newTraceId();
    const grpc = (first(h['content-type']) ?? '').startsWith('application/grpc');
    const bound = table.listeners.get(conn.listenerName);
    const listener = bound?.useOriginalDst === true && !conn.tls ? (originalDstListener(table.listeners.values(), authority) ?? bound) : bound;
    const ctx: RequestCtx = {
      table,
      conn,
      req,
      res: res as unknown as ResLike,
      method,
      authority,
      path,
      scheme,
      trace,
      spanId,
      requestId,
      grpc,
      started,
      startTime,
      status: 0,
      flags: '-',
      cluster: '',
      upstream: '',
      attempts: 0,
      requestBytes: 0,
      responseBytes: 0,
      inbound: listener?.direction === 'INBOUND',
      operation: undefined,
      destinationPrincipal: '',
      mutualTls: false,
      peerWorkload: conn.principal === undefined ? '' : (first(h[PEER_WORKLOAD_HEADER]) ?? ''),
    };
    try {
      const destinationPort = listener === bound ? conn.destinationPort : (listener?.port ?? 0);
      const chain = listener === undefined ? undefined : selectFilterChain(listener, { tls: conn.tls, serverName: conn.serverName, destinationPort, alpn: conn.alpn ? [conn.alpn] : [] });
      if (chain === undefined || chain.terminal.kind !== 'http') {
        this.localReply(ctx, 503, 'listener removed', 'NR', {}, []);
        return;
      }
      const hcm = chain.terminal;
      const rc = hcm.inlineRoutes ?? (hcm.rdsName === undefined ? undefined : table.routeConfigs.get(hcm.rdsName));
      const facts: HttpRequestFacts = {
        method,
        scheme,
        authority,
        path,
        header: (name) => {
          if (name.charCodeAt(0) === 58) {
            if (name === ':method') return method;
            if (name === ':path') return path;
            if (name === ':authority') return authority;
            if (name === ':scheme') return scheme;
          }
          return first(h[name]);
        },
        principal: conn.principal,
        sourceIp: conn.remoteAddress,
        destinationPort,
      };
      const d = decide(hcm, rc, facts, this.decisionState);
      if (d.kind === 'forward') ctx.operation = d.route.operation;
      if (d.delayMs > 0) await sleep(d.delayMs);
      if (d.kind === 'respond') {
        this.localReply(ctx, d.response.status, d.response.body, d.flag, d.response.headers, d.responseOps);
        return;
      }
      await this.forward(ctx, d);
    } catch (err) {
      this.opts.onEvent?.('request_failed', { err: String(err) });
      if (!res.headersSent) this.localReply(ctx, 500, 'internal error', 'UF', {}, []);
      else res.destroy();
    } finally {
      this.inflight--;
    }
  }

  private localReply(ctx: RequestCtx, status: number, body: string, flag: string, headers: Readonly<Record<string, string>>, ops: readonly HeaderOps[]): void {
    const out: Record<string, string | string[] | undefined> = { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    for (const o of ops) applyHeaderEdits(out, o.responseRemove, o.responseAdd);
    if (this.draining && ctx.req.httpVersionMajor === 1) out.connection = 'close';
    ctx.status = status;
    ctx.flags = flag;
    ctx.responseBytes = Buffer.byteLength(body);
    // Drain the request body so keep-alive connections stay usable.
    if (!ctx.req.readableEnded) ctx.req.resume();
    ctx.res.writeHead(status, cleanHeaders(out));
    ctx.res.end(body);
    this.finish(ctx);
  }

  private hasBody(ctx: RequestCtx): boolean {
    const h = ctx.req.headers;
    if (h['content-length'] !== undefined) return h['content-length'] !== '0';
    if (h['transfer-encoding'] !== undefined) return true;
    if (ctx.req.httpVersionMajor === 2) return !(ctx.req as unknown as { stream: { endAfterHeaders: boolean } }).stream.endAfterHeaders;
    return false;
  }

  private async readBody(req: DownstreamRequest, limit: number): Promise<Buffer | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > limit) return undefined;
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }

  private upstreamHeaders(ctx: RequestCtx, d: Extract<Decision, { kind: 'forward' }>): OutgoingHeaders {
    const out: Record<string, string | string[] | undefined> = {};
    const src = ctx.req.headers as Record<string, string | string[] | undefined>;
    for (const k of Object.keys(src)) {
      if (k.charCodeAt(0) === 58 || hopByHop.has(k) || k === PEER_WORKLOAD_HEADER) continue;
      out[k] = src[k];
    }
    if (src.te === 'trailers') out.te = 'trailers';
    out.host = d.upstreamAuthority;
    const xff = first(src['x-forwarded-for']);
    out['x-forwarded-for'] = xff === undefined ? ctx.conn.remoteAddress : `${xff}, ${ctx.conn.remoteAddress}`;
    out['x-forwarded-proto'] = ctx.scheme;
    out['x-request-id'] = ctx.requestId;
    ctx.trace ??= { traceId: newTraceId(), parentId: undefined, flags: '01' };
    out.traceparent = `00-${ctx.trace.traceId}-${ctx.spanId}-${ctx.trace.flags}`;
    for (const o of d.requestOps) applyHeaderEdits(out, o.requestRemove, o.requestAdd);
    return cleanHeaders(out);
  }

  private hashFor(ctx: RequestCtx, d: Extract<Decision, { kind: 'forward' }>): number | undefined {
    for (const p of d.action.hashPolicies) {
      let v: string | undefined;
      if (p.kind === 'header') v = first(ctx.req.headers[p.name]);
      else if (p.kind === 'source_ip') v = ctx.conn.remoteAddress;
      else if (p.kind === 'query') v = new URLSearchParams(ctx.path.split('?')[1] ?? '').get(p.name) ?? undefined;
      else v = (first(ctx.req.headers.cookie) ?? '').split(/;\s*/).find((c) => c.startsWith(`${p.name}=`))?.slice(p.name.length + 1);
      if (v !== undefined) return hash53(v);
    }
    return undefined;
  }

  private async forward(ctx: RequestCtx, d: Extract<Decision, { kind: 'forward' }>): Promise<void> {
    const table = ctx.table;
    ctx.cluster = d.cluster.name;
    const cluster = table.clusters.get(d.cluster.name);
    if (cluster === undefined) {
      this.localReply(ctx, 503, 'no cluster', 'NC', {}, d.responseOps);
      return;
    }
    let endpoints = table.endpointsOf(cluster);
    if (cluster.type === 'ORIGINAL_DST') {
      // No socket-level original destination without iptables: the target comes from
      // x-envoy-original-dst-host or the authority (local mode calls the proxy directly).
      const ep = originalDestination(first(ctx.req.headers['x-envoy-original-dst-host']) ?? ctx.authority);
      endpoints = ep === undefined ? [] : [ep];
    }
    const rt = this.runtime(cluster, endpoints);
    if (!endpoints.some((e) => e.healthy)) {
      this.localReply(ctx, 503, 'no healthy upstream', 'UH', {}, d.responseOps);
      return;
    }
    let tls: ResolvedTls | undefined;
    if (cluster.tls !== undefined) {
      tls = resolveTls(cluster.tls, table.secrets, this.identity);
      if (tls === undefined) {
        this.localReply(ctx, 503, 'upstream TLS secrets not ready', 'UF', {}, d.responseOps);
        return;
      }
      ctx.mutualTls = tls.cert !== undefined && tls.key !== undefined;
    }
    if (rt.cb.tryAcquire() === 'overflow') {
      this.stats.inc('cluster_upstream_rq_pending_overflow', { envoy_cluster_name: cluster.name });
      this.localReply(ctx, 503, 'upstream connect error or disconnect/reset before headers. reset reason: overflow', 'UO', {}, d.responseOps);
      return;
    }
    try {
      await this.attempts(ctx, d, cluster, rt, endpoints, tls);
    } finally {
      rt.cb.release();
    }
  }

  private async attempts(ctx: RequestCtx, d: Extract<Decision, { kind: 'forward' }>, cluster: Cluster, rt: ClusterRuntime, endpoints: readonly Endpoint[], tls: ResolvedTls | undefined): Promise<void> {
    const headers = this.upstreamHeaders(ctx, d);
    if (ctx.mutualTls && !ctx.inbound) headers[PEER_WORKLOAD_HEADER] = this.opts.node.workload;
    const retry = d.action.retry;
    const wantsBuffer = (retry !== undefined && retry.numRetries > 0) || d.action.mirrors.length > 0;
    let body: Buffer | Readable | null = null;
    if (this.hasBody(ctx)) {
      if (wantsBuffer) {
        const buffered = await this.readBody(ctx.req, this.opts.maxBufferedBody ?? 1024 * 1024);
        if (buffered === undefined) {
          this.localReply(ctx, 413, 'payload too large', '-', {}, d.responseOps);
          return;
        }
        body = buffered;
        ctx.requestBytes = buffered.length;
        headers['content-length'] = String(buffered.length);
        delete headers['transfer-encoding'];
      } else {
        body = ctx.req as unknown as Readable;
        ctx.req.on('data', (c: Buffer) => (ctx.requestBytes += c.length));
      }
    }
    for (const m of d.action.mirrors) if (this.rng() < m.fraction) this.mirror(ctx, m.cluster, headers, body instanceof Buffer || body === null ? body : null);
    const deadline = d.action.timeoutMs > 0 ? this.clock() + d.action.timeoutMs : Infinity;
    const maxAttempts = 1 + (retry?.numRetries ?? 0);
    const tried = new Set<string>();
    const hash = this.hashFor(ctx, d);
    const keys = endpoints.map((e) => e.key);
    let downstreamGone = false;
    let handle: AttemptHandle = {};
    (ctx.res as unknown as EventEmitter).once('close', () => {
      if (!ctx.res.writableFinished) {
        downstreamGone = true;
        handle.abort?.('reset');
      }
    });
    let lastFailure: UpstreamError | undefined;
    let retrying = false;
    const releaseRetry = (): void => {
      if (retrying) rt.cb.releaseRetry();
      retrying = false;
    };
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      if (downstreamGone) break;
      releaseRetry();
      if (attempt > 0) {
        // max_retries bounds the retries outstanding on the cluster (back-off and attempt).
        if (!rt.cb.tryRetry()) {
          this.stats.inc('cluster_upstream_rq_retry_overflow', { envoy_cluster_name: cluster.name });
          break;
        }
        retrying = true;
        this.stats.inc('cluster_upstream_rq_retry', { envoy_cluster_name: cluster.name });
        await sleep(retryBackoffMs(retry as NonNullable<typeof retry>, attempt - 1, this.rng));
      }
      const remaining = deadline - this.clock();
      if (remaining <= 0) break;
      const ep = rt.lb.pick((e) => !(rt.outlier?.isEjected(e.key) ?? false), (k) => rt.active.get(k) ?? 0, { hash, avoid: retry?.avoidPreviousHosts ? tried : undefined });
      if (ep === undefined) {
        this.localReply(ctx, 503, 'no healthy upstream', 'UH', {}, d.responseOps);
        return;
      }
      tried.add(ep.key);
      ctx.attempts = attempt + 1;
      ctx.upstream = ep.key;
      headers['x-envoy-attempt-count'] = String(attempt + 1);
      const perTry = Math.min(retry?.perTryTimeoutMs ?? Infinity, remaining);
      const attemptHandle: AttemptHandle = {};
      handle = attemptHandle;
      const timer = Number.isFinite(perTry) ? setTimeout(() => attemptHandle.abort?.('timeout'), perTry) : undefined;
      rt.active.set(ep.key, (rt.active.get(ep.key) ?? 0) + 1);
      let response: UpstreamResponse | undefined;
      let outcome: AttemptOutcome;
      try {
        response = await this.pools.request(cluster, ep, tls, endpoints.length, { method: ctx.method, path: d.upstreamPath, headers, body: attempt > 0 && body !== null && !(body instanceof Buffer) ? null : body }, attemptHandle);
        outcome = { kind: 'response', status: response.status };
      } catch (err) {
        const e = classify(err, false);
        lastFailure = e;
        outcome = { kind: e.failure };
      }
      const status = outcome.kind === 'response' ? outcome.status : 0;
      if (rt.outlier?.record(ep.key, outcome.kind === 'timeout' ? 504 : status, keys) === true) {
        this.stats.inc('cluster_outlier_detection_ejections_enforced_total', { envoy_cluster_name: cluster.name });
        this.opts.onEvent?.('outlier_ejected', { cluster: cluster.name, endpoint: ep.key });
      }
      const canRetry = retry !== undefined && attempt + 1 < maxAttempts && !(body !== null && !(body instanceof Buffer)) && shouldRetry(retry, outcome);
      if (response !== undefined && !canRetry) {
        // The response goes downstream; the overall route timeout keeps running over the body.
        if (timer !== undefined) clearTimeout(timer);
        const up = response;
        const overall = Number.isFinite(deadline) ? setTimeout(() => up.abort(), Math.max(0, deadline - this.clock())) : undefined;
        releaseRetry();
        try {
          await this.relay(ctx, d, response, attempt > 0 ? 'URX' : ctx.flags === '-' ? d.flag : ctx.flags);
        } finally {
          if (overall !== undefined) clearTimeout(overall);
          this.releaseActive(rt, ep.key);
        }
        return;
      }
      if (timer !== undefined) clearTimeout(timer);
      this.releaseActive(rt, ep.key);
      if (response !== undefined) response.discard(); // free the connection
      if (!canRetry) break;
    }
    releaseRetry();
    if (downstreamGone) {
      ctx.flags = 'DC';
      this.finish(ctx);
      return;
    }
    const f = lastFailure?.failure ?? 'timeout';
    const retried = ctx.attempts > 1 ? 'URX,' : '';
    if (f === 'timeout') this.localReply(ctx, 504, 'upstream request timeout', `${retried}UT`, {}, d.responseOps);
    else if (f === 'connect-failure') this.localReply(ctx, 503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure`, `${retried}UF`, {}, d.responseOps);
    else this.localReply(ctx, 503, 'upstream connect error or disconnect/reset before headers. reset reason: connection termination', `${retried}UC`, {}, d.responseOps);
  }

  private releaseActive(rt: ClusterRuntime, key: string): void {
    rt.active.set(key, Math.max(0, (rt.active.get(key) ?? 1) - 1));
  }

  private relay(ctx: RequestCtx, d: Extract<Decision, { kind: 'forward' }>, up: UpstreamResponse, flag: string): Promise<void> {
    const out: Record<string, string | string[] | undefined> = {};
    for (const [k, v] of Object.entries(up.headers)) if (!hopByHop.has(k) && k.charCodeAt(0) !== 58) out[k] = v;
    for (const o of d.responseOps) applyHeaderEdits(out, o.responseRemove, o.responseAdd);
    Object.assign(out, d.extraResponseHeaders);
    if (this.draining && ctx.req.httpVersionMajor === 1) out.connection = 'close';
    ctx.status = up.status;
    ctx.flags = flag;
    if (up.peerPrincipal !== undefined) ctx.destinationPrincipal = up.peerPrincipal;
    const res = ctx.res;
    res.writeHead(up.status, cleanHeaders(out));
    return new Promise<void>((resolve) => {
      let done = false;
      const end = (): void => {
        if (done) return;
        done = true;
        this.finish(ctx);
        resolve();
      };
      (res as unknown as EventEmitter).once('close', () => {
        if (!done && !res.writableFinished) {
          ctx.flags = 'DC';
          up.abort();
          end();
        }
      });
      up.stream({
        data: (chunk) => {
          ctx.responseBytes += chunk.length;
          const ok = res.write(chunk);
          if (!ok) (res as unknown as EventEmitter).once('drain', () => up.resume());
          return ok;
        },
        end: (trailers) => {
          if (Object.keys(trailers).length > 0) res.addTrailers(trailers);
          res.end();
          end();
        },
        error: () => {
          // A late error (the upstream connection failing after the response completed) must
          // not mark, or cut, a request that already finished.
          if (done || res.writableFinished) return;
          if (bodyComplete(up.headers, ctx.responseBytes)) {
            // Every byte the upstream announced arrived: finish the response normally.
            res.end();
            end();
            return;
          }
          if (ctx.flags === '-') ctx.flags = 'UPE';
          res.destroy();
          end();
        },
      });
    });
  }

  private mirror(ctx: RequestCtx, clusterName: string, headers: OutgoingHeaders, body: Buffer | null): void {
    const table = ctx.table;
    const cluster = table.clusters.get(clusterName);
    if (cluster === undefined) return;
    const endpoints = table.endpointsOf(cluster);
    const rt = this.runtime(cluster, endpoints);
    const ep = rt.lb.pick((e) => !(rt.outlier?.isEjected(e.key) ?? false), (k) => rt.active.get(k) ?? 0, { hash: undefined, avoid: undefined });
    if (ep === undefined) return;
    const tls = cluster.tls === undefined ? undefined : resolveTls(cluster.tls, table.secrets, this.identity);
    if (cluster.tls !== undefined && tls === undefined) return;
    const host = String(headers.host ?? '');
    const colon = host.lastIndexOf(':');
    const shadowHost = colon > 0 ? `${host.slice(0, colon)}-shadow${host.slice(colon)}` : `${host}-shadow`;
    const mirrorHandle: AttemptHandle = {};
    const timer = setTimeout(() => mirrorHandle.abort?.('timeout'), 10_000);
    this.stats.inc('cluster_upstream_rq_mirrored', { envoy_cluster_name: clusterName });
    this.pools
      .request(cluster, ep, tls, endpoints.length, { method: ctx.method, path: ctx.path, headers: { ...headers, host: shadowHost }, body }, mirrorHandle)
      .then((r) => r.discard())
      .catch(() => undefined)
      .finally(() => clearTimeout(timer));
  }

  private finish(ctx: RequestCtx): void {
    const durationMs = this.clock() - ctx.started;
    const codeClass = ctx.status === 0 ? '0xx' : `${Math.floor(ctx.status / 100)}xx`;
    if (ctx.cluster !== '') this.stats.inc('cluster_upstream_rq_total', { envoy_cluster_name: ctx.cluster, envoy_response_code_class: codeClass });
    this.stats.inc('http_downstream_rq_total', { envoy_listener: ctx.conn.listenerName, envoy_response_code_class: codeClass });
    if (ctx.flags !== '-') this.stats.inc('http_downstream_rq_flagged', { envoy_listener: ctx.conn.listenerName, response_flags: ctx.flags });
    const node = this.opts.node;
    if (this.opts.onRecord !== undefined) {
      const dest = describeCluster(ctx.cluster);
      const self = { workload: node.workload, namespace: node.namespace, principal: node.principal ?? '', app: node.app, version: node.version };
      const record: ProxyRequestRecord = ctx.inbound
        ? {
            reporter: 'destination',
            sourceWorkload: ctx.peerWorkload,
            sourceNamespace: spiffeParts(ctx.conn.principal).namespace,
            sourcePrincipal: ctx.conn.principal ?? '',
            destinationWorkload: self.workload,
            destinationNamespace: self.namespace,
            destinationPrincipal: ctx.conn.tls ? self.principal : '',
            ...(self.app === undefined ? {} : { destinationApp: self.app }),
            destinationService: dest.service || serviceOfInbound(ctx.operation, ctx.conn.serverName),
            destinationVersion: self.version ?? '',
            protocol: ctx.grpc ? 'grpc' : 'http',
            responseCode: ctx.status,
            responseFlags: ctx.flags,
            connectionSecurityPolicy: ctx.conn.tls && ctx.conn.principal !== undefined ? 'mutual_tls' : 'none',
            durationMs,
            requestBytes: ctx.requestBytes,
            responseBytes: ctx.responseBytes,
            startTime: ctx.startTime,
          }
        : {
            reporter: 'source',
            sourceWorkload: self.workload,
            sourceNamespace: self.namespace,
            sourcePrincipal: self.principal,
            ...(self.app === undefined ? {} : { sourceApp: self.app }),
            ...(self.version === undefined ? {} : { sourceVersion: self.version }),
            destinationWorkload: dest.workload,
            destinationNamespace: dest.namespace,
            destinationPrincipal: ctx.destinationPrincipal,
            destinationService: dest.service || ctx.authority,
            destinationVersion: dest.version,
            protocol: ctx.grpc ? 'grpc' : 'http',
            responseCode: ctx.status,
            responseFlags: ctx.flags,
            connectionSecurityPolicy: ctx.mutualTls ? 'mutual_tls' : ctx.cluster === '' ? 'unknown' : 'none',
            durationMs,
            requestBytes: ctx.requestBytes,
            responseBytes: ctx.responseBytes,
            startTime: ctx.startTime,
          };
      if (ctx.trace !== undefined) {
        record.traceId = ctx.trace.traceId;
        record.spanId = ctx.spanId;
        if (ctx.trace.parentId !== undefined) record.parentSpanId = ctx.trace.parentId;
      }
      this.opts.onRecord(record);
    }
    this.opts.onAccessLog?.({
      method: ctx.method,
      authority: ctx.authority,
      path: ctx.path,
      status: ctx.status,
      flags: ctx.flags,
      cluster: ctx.cluster,
      upstream: ctx.upstream,
      durationMs: Math.round(durationMs * 1000) / 1000,
      attempts: ctx.attempts,
      listener: ctx.conn.listenerName,
      requestId: ctx.requestId,
      traceId: ctx.trace?.traceId ?? '',
    });
  }

  private tcp(socket: Socket, conn: ConnInfo, chain: FilterChain): void {
    const table = this.tableRef;
    if (chain.terminal.kind !== 'tcp') return;
    // Network RBAC: connection facts only (no headers, no path on TCP).
    const facts = { header: () => undefined, path: '', principal: conn.principal, sourceIp: conn.remoteAddress, destinationPort: conn.destinationPort };
    if (chain.terminal.rbac.some((r) => !evaluateRbac(r, facts).allowed)) {
      socket.destroy();
      return;
    }
    const cluster = table.clusters.get(chain.terminal.cluster);
    const started = this.clock();
    if (cluster === undefined) {
      socket.destroy();
      return;
    }
    const endpoints = table.endpointsOf(cluster);
    const rt = this.runtime(cluster, endpoints);
    const ep = rt.lb.pick((e) => !(rt.outlier?.isEjected(e.key) ?? false), (k) => rt.active.get(k) ?? 0, { hash: undefined, avoid: undefined });
    if (ep === undefined) {
      socket.destroy();
      return;
    }
    const tls = cluster.tls === undefined ? undefined : resolveTls(cluster.tls, table.secrets, this.identity);
    const upstream =
      tls === undefined
        ? netConnect({ host: ep.host, port: ep.port })
        : tlsConnect({ host: ep.host, port: ep.port, ca: tls.ca, cert: tls.cert, key: tls.key, servername: cluster.tls?.sni, checkServerIdentity: () => undefined });
    let rx = 0;
    let tx = 0;
    socket.on('data', (c: Buffer) => (rx += c.length));
    upstream.on('data', (c: Buffer) => (tx += c.length));
    socket.pipe(upstream).pipe(socket);
    const close = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    socket.once('close', close);
    upstream.once('close', close);
    upstream.once('error', close);
    socket.once('close', () => {
      const d = describeCluster(cluster.name);
      this.opts.onRecord?.({
        reporter: this.tableRef.listeners.get(conn.listenerName)?.direction === 'INBOUND' ? 'destination' : 'source',
        sourceWorkload: '',
        sourceNamespace: '',
        sourcePrincipal: conn.principal ?? '',
        destinationWorkload: d.workload,
        destinationNamespace: d.namespace,
        destinationPrincipal: '',
        destinationService: d.service,
        destinationVersion: d.version,
        protocol: 'tcp',
        responseCode: 0,
        responseFlags: '-',
        connectionSecurityPolicy: conn.tls && conn.principal !== undefined ? 'mutual_tls' : 'unknown',
        durationMs: this.clock() - started,
        requestBytes: rx,
        responseBytes: tx,
        startTime: new Date().toISOString(),
      });
    });
  }

  /** Stops accepting, waits for in-flight requests (bounded), closes pools. */
  async close(graceMs = 5_000): Promise<void> {
    this.draining = true;
    await Promise.all([...this.listeners.values()].map((l) => l.server.close(graceMs)));
    this.listeners.clear();
    const until = Date.now() + graceMs;
    while (this.inflight > 0 && Date.now() < until) await sleep(20);
    await this.pools.close();
  }
}

/** The part of ServerResponse / Http2ServerResponse the proxy uses. */
interface ResLike {
  writeHead(status: number, headers: Record<string, string | string[]>): unknown;
  write(chunk: Buffer): boolean;
  end(data?: string | Buffer): unknown;
  addTrailers(trailers: Record<string, string>): void;
  destroy(err?: Error): unknown;
  readonly headersSent: boolean;
  readonly writableFinished: boolean;
}

interface RequestCtx {
  readonly table: RoutingTable;
  readonly conn: ConnInfo;
  readonly req: DownstreamRequest;
  readonly res: ResLike;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly scheme: string;
  trace: TraceContext | undefined;
  readonly spanId: string;
  readonly requestId: string;
  readonly grpc: boolean;
  readonly started: number;
  readonly startTime: string;
  readonly inbound: boolean;
  /** The matched route's decorator operation. */
  operation: string | undefined;
  /** Outbound: the upstream's verified SPIFFE id, and whether this hop originated mutual TLS. */
  destinationPrincipal: string;
  mutualTls: boolean;
  /** Inbound: the source workload named by an authenticated peer. */
  peerWorkload: string;
  status: number;
  flags: string;
  cluster: string;
  upstream: string;
  attempts: number;
  requestBytes: number;
  responseBytes: number;
}

function originalDestination(hostPort: string): Endpoint | undefined {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hostPort);
  if (m === null || m[1] === undefined) return undefined;
  const host = m[1];
  const port = Number(m[2] ?? 80);
  return { key: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, host, port, weight: 1, priority: 0, healthy: true, locality: '' };
}

/** True when a body with a content-length has been received in full. */
export function bodyComplete(headers: Record<string, string | string[] | undefined>, received: number): boolean {
  const cl = headers['content-length'];
  const v = Array.isArray(cl) ? cl[0] : cl;
  if (v === undefined || !/^\d+$/.test(v.trim())) return false;
  return Number(v) === received;
}

function cleanHeaders(h: Record<string, string | string[] | undefined>): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
