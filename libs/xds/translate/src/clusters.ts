import { parseDuration, type ConnectionPoolSettings, type LoadBalancerSettings, type OutlierDetection } from '@aviary/mesh-api';
import { compareStrings, isIpLiteral, labelsMatch, type Endpoint, type Service, type ServicePortInfo } from '@aviary/mesh-model';
import { clusterName, effectivePolicy, isHttp2Port, isHttpPort, type Ctx, type EffectivePolicy } from './context';
import { clusterTelemetryMetadata, endpointMetadata, sharedPrincipal, TRANSPORT_SOCKET_MATCH, type UpstreamTls } from './accesslog';
import { adsConfigSource, duration, durationMs, N, stringStruct, T, typed, wrap, type Msg } from './envoy';
import { clientTlsUpstream, istioMutualUpstream, proxylessUpstream, rawBufferSocket, transportSocket, type UpstreamAlpn } from './tls';

/** One outbound cluster and the endpoints it reads over EDS (none for a DNS cluster: its endpoints are inline). */
export interface OutboundCluster {
  readonly name: string;
  readonly cluster: Msg;
  readonly loadAssignment: Msg | undefined;
}

const UINT32_MAX = 4294967295;
const DEFAULT_CONNECT_TIMEOUT = durationMs(10_000);

/** Istio's SNI for ISTIO_MUTUAL: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
export function istioSni(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/** Default cluster plus one per DestinationRule subset, for one service port. */
export function outboundClusters(ctx: Ctx, service: Service, port: ServicePortInfo): OutboundCluster[] {
  const dr = ctx.destinationRule(service);
  const all = ctx.snapshot.endpoints.forServicePort(service.hostname, port.number);
  const out: OutboundCluster[] = [buildCluster(ctx, service, port, '', effectivePolicy(dr, port.number), all)];
  const seen = new Set<string>();
  for (const subset of dr?.spec.subsets ?? []) {
    if (seen.has(subset.name)) continue;
    seen.add(subset.name);
    const endpoints = all.filter((e) => labelsMatch(subset.labels, e.labels));
    out.push(buildCluster(ctx, service, port, subset.name, effectivePolicy(dr, port.number, subset.name), endpoints));
  }
  return out;
}

/**
 * ServiceEntry `resolution: DNS` → STRICT_DNS (every address each name resolves to is an
 * endpoint), `DNS_ROUND_ROBIN` → LOGICAL_DNS (one connection target at a time), as Istio: the
 * endpoints (hostnames or IPs) are inline and the proxy resolves them, IPv4 only. gRPC clients
 * take EDS only: hostname endpoints are left out for them, with a problem.
 */
function dnsType(ctx: Ctx, service: Service): 'STRICT_DNS' | 'LOGICAL_DNS' | undefined {
  if (ctx.proxy.kind === 'proxyless') return undefined;
  if (service.resolution === 'DNS') return 'STRICT_DNS';
  return service.resolution === 'DNS_ROUND_ROBIN' ? 'LOGICAL_DNS' : undefined;
}

function buildCluster(ctx: Ctx, service: Service, port: ServicePortInfo, subset: string, policy: EffectivePolicy, all: readonly Endpoint[]): OutboundCluster {
  const name = clusterName('outbound', port.number, subset, service.hostname);
  const proxyless = ctx.proxy.kind === 'proxyless';
  const dns = dnsType(ctx, service);
  let endpoints = all;
  if (proxyless && endpoints.some((e) => !isIpLiteral(e.address))) {
    ctx.problem(`${name}: gRPC clients accept only IP endpoints over EDS; the hostname endpoints of this DNS service are left out`);
    endpoints = endpoints.filter((e) => isIpLiteral(e.address));
  }
  // Sidecars and routers log the upstream principal: on the cluster when its endpoints share one.
  const principal = proxyless ? undefined : sharedPrincipal(endpoints);
  const assignment = loadAssignment(name, endpoints, !proxyless, principal !== undefined);
  const cluster: Msg = {
    name,
    ...(dns ? { type: dns, dns_lookup_family: 'V4_ONLY', load_assignment: assignment } : { type: 'EDS', eds_cluster_config: { eds_config: adsConfigSource(), service_name: name } }),
    ...(!proxyless && { connect_timeout: duration(policy.connectionPool?.tcp?.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT }),
    ...loadBalancer(ctx, policy, name),
    ...circuitBreakers(policy.connectionPool),
    ...upstreamConnectionOptions(policy.connectionPool),
    ...outlierDetection(policy.outlierDetection),
    ...(!proxyless && protocolOptions(port, policy.connectionPool)),
    ...transport(ctx, service, port, subset, policy, endpoints),
    ...(!proxyless && { metadata: clusterTelemetryMetadata(upstreamTls(service, policy), principal) }),
  };
  return { name, cluster, loadAssignment: dns ? undefined : assignment };
}

function loadBalancer(ctx: Ctx, policy: EffectivePolicy, name: string): Msg {
  const chosen = lbPolicy(ctx, policy, name);
  const slowStart = ctx.proxy.kind === 'proxyless' ? undefined : slowStartConfig(policy.loadBalancer);
  const panic = policy.outlierDetection?.minHealthPercent;
  return {
    ...chosen,
    ...(slowStart && chosen.lb_policy === 'ROUND_ROBIN' && { round_robin_lb_config: { slow_start_config: slowStart } }),
    ...(slowStart && chosen.lb_policy === 'LEAST_REQUEST' && { least_request_lb_config: { slow_start_config: slowStart } }),
    ...(panic !== undefined && ctx.proxy.kind !== 'proxyless' && { common_lb_config: { healthy_panic_threshold: { value: Math.min(100, Math.max(0, panic)) } } }),
  };
}

/**
 * DestinationRule `warmup` / `warmupDurationSecs` as Envoy slow start (ROUND_ROBIN and
 * LEAST_REQUEST only, as Istio): new endpoints ramp up over the window; `aggression` (default
 * 1, linear) and `minimumPercent` (Istio's default 10%) shape the ramp.
 */
function slowStartConfig(lb: LoadBalancerSettings | undefined): Msg | undefined {
  const window = duration(lb?.warmup?.duration ?? lb?.warmupDurationSecs);
  if (!window) return undefined;
  const aggression = lb?.warmup?.aggression ?? 1;
  const minimum = lb?.warmup?.minimumPercent ?? 10;
  return {
    slow_start_window: window,
    aggression: { default_value: aggression, runtime_key: 'upstream.slow_start.aggression' },
    min_weight_percent: { value: minimum },
  };
}

function lbPolicy(ctx: Ctx, policy: EffectivePolicy, name: string): Msg {
  const lb = policy.loadBalancer;
  const proxyless = ctx.proxy.kind === 'proxyless';
  if (lb?.consistentHash) {
    const ch = lb.consistentHash;
    if (ch.maglev && !proxyless) return { lb_policy: 'MAGLEV', ...(ch.maglev.tableSize && { maglev_lb_config: { table_size: wrap(ch.maglev.tableSize) } }) };
    const min = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize;
    return { lb_policy: 'RING_HASH', ...(min ? { ring_hash_lb_config: { minimum_ring_size: wrap(min) } } : {}) };
  }
  switch (lb?.simple) {
    case 'LEAST_REQUEST':
    case 'LEAST_CONN':
      if (proxyless) {
        ctx.problem(`${name}: gRPC clients support only ROUND_ROBIN and RING_HASH; ${lb.simple} becomes ROUND_ROBIN`);
        return { lb_policy: 'ROUND_ROBIN' };
      }
      return { lb_policy: 'LEAST_REQUEST' };
    case 'RANDOM':
      if (proxyless) {
        ctx.problem(`${name}: gRPC clients support only ROUND_ROBIN and RING_HASH; RANDOM becomes ROUND_ROBIN`);
        return { lb_policy: 'ROUND_ROBIN' };
      }
      return { lb_policy: 'RANDOM' };
    case 'PASSTHROUGH':
      ctx.problem(`${name}: load balancer PASSTHROUGH is not supported; using ROUND_ROBIN`);
      return { lb_policy: 'ROUND_ROBIN' };
    default:
      return { lb_policy: 'ROUND_ROBIN' };
  }
}

export function circuitBreakers(pool: ConnectionPoolSettings | undefined): Msg {
  if (!pool?.tcp?.maxConnections && !pool?.http?.http1MaxPendingRequests && !pool?.http?.http2MaxRequests && !pool?.http?.maxRetries) return {};
  const v = (n: number | undefined) => wrap(n && n > 0 ? n : UINT32_MAX);
  return {
    circuit_breakers: {
      thresholds: [
        {
          max_connections: v(pool.tcp?.maxConnections),
          max_pending_requests: v(pool.http?.http1MaxPendingRequests),
          max_requests: v(pool.http?.http2MaxRequests),
          max_retries: v(pool.http?.maxRetries),
        },
      ],
    },
  };
}

/** TCP keepalive on upstream connections (`connectionPool.tcp.tcpKeepalive`; time and interval in whole seconds, as the socket options take them). */
export function upstreamConnectionOptions(pool: ConnectionPoolSettings | undefined): Msg {
  const ka = pool?.tcp?.tcpKeepalive;
  if (!ka) return {};
  const seconds = (d: string | undefined) => {
    const ms = d === undefined ? undefined : parseDuration(d);
    return ms === undefined ? undefined : wrap(Math.max(1, Math.round(ms / 1000)));
  };
  return {
    upstream_connection_options: {
      tcp_keepalive: {
        ...(ka.probes !== undefined && { keepalive_probes: wrap(ka.probes) }),
        ...(ka.time !== undefined && { keepalive_time: seconds(ka.time) }),
        ...(ka.interval !== undefined && { keepalive_interval: seconds(ka.interval) }),
      },
    },
  };
}

function outlierDetection(od: OutlierDetection | undefined): Msg {
  if (!od) return {};
  const c5xx = od.consecutive5xxErrors ?? (od.consecutiveErrors !== undefined ? Math.max(0, od.consecutiveErrors) : undefined);
  const out: Msg = {};
  if (c5xx !== undefined) {
    out.consecutive_5xx = wrap(c5xx);
    out.enforcing_consecutive_5xx = wrap(c5xx > 0 ? 100 : 0);
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = wrap(od.consecutiveGatewayErrors);
    out.enforcing_consecutive_gateway_failure = wrap(od.consecutiveGatewayErrors > 0 ? 100 : 0);
  }
  const interval = duration(od.interval);
  if (interval) out.interval = interval;
  const base = duration(od.baseEjectionTime);
  if (base) out.base_ejection_time = base;
  if (od.maxEjectionPercent !== undefined) out.max_ejection_percent = wrap(Math.min(100, Math.max(0, od.maxEjectionPercent)));
  if (od.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if (od.consecutiveLocalOriginFailures !== undefined) out.consecutive_local_origin_failure = wrap(od.consecutiveLocalOriginFailures);
  }
  return { outlier_detection: out };
}

function speaksH2(port: Pick<ServicePortInfo, 'protocol'>, pool: ConnectionPoolSettings | undefined): boolean {
  return isHttp2Port(port) || pool?.http?.h2UpgradePolicy === 'UPGRADE';
}

/** The protocol an ISTIO_MUTUAL connection to this port carries, offered as ALPN (see UpstreamAlpn). */
function upstreamAlpn(port: ServicePortInfo, pool: ConnectionPoolSettings | undefined): UpstreamAlpn {
  if (speaksH2(port, pool)) return 'h2';
  return isHttpPort(port) ? 'http/1.1' : 'none';
}

/** Envoy requires a PING timeout with connection_keepalive; Istio's API leaves it optional. */
const DEFAULT_H2_KEEPALIVE_TIMEOUT = durationMs(20_000);

/**
 * HTTP/2 upstream for gRPC/HTTP2 ports (or the client's protocol with `useClientProtocol`);
 * per-connection request limit, idle timeout and maximum duration; HTTP/2 stream limit and
 * keepalive PINGs.
 */
export function protocolOptions(port: Pick<ServicePortInfo, 'protocol'>, pool: ConnectionPoolSettings | undefined): Msg {
  const common: Msg = {};
  const idle = duration(pool?.http?.idleTimeout);
  if (idle) common.idle_timeout = idle;
  const maxDuration = duration(pool?.tcp?.maxConnectionDuration);
  if (maxDuration) common.max_connection_duration = maxDuration;
  if (pool?.http?.maxRequestsPerConnection && pool.http.maxRequestsPerConnection > 0) common.max_requests_per_connection = wrap(pool.http.maxRequestsPerConnection);
  // A WebSocket from an HTTP/1.1 client crosses an HTTP/2 upstream as an extended CONNECT (RFC 8441).
  const h2Options: Msg = { allow_connect: true };
  if (pool?.http?.maxConcurrentStreams && pool.http.maxConcurrentStreams > 0) h2Options.max_concurrent_streams = wrap(pool.http.maxConcurrentStreams);
  const ka = pool?.http?.http2KeepAlive;
  if (ka) h2Options.connection_keepalive = { ...(duration(ka.interval) && { interval: duration(ka.interval) }), timeout: duration(ka.timeout) ?? DEFAULT_H2_KEEPALIVE_TIMEOUT };
  const clientProtocol = pool?.http?.useClientProtocol === true;
  const h2 = speaksH2(port, pool);
  if (!h2 && !clientProtocol && Object.keys(common).length === 0) return {};
  const options: Msg = {
    ...(Object.keys(common).length > 0 && { common_http_protocol_options: common }),
    ...(clientProtocol
      ? { use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: h2Options } }
      : { explicit_http_config: h2 ? { http2_protocol_options: h2Options } : { http_protocol_options: {} } }),
  };
  return { typed_extension_protocol_options: { [N.httpProtocolOptions]: typed(T.HttpProtocolOptions, options) } };
}

function sansFor(service: Service, endpoints: readonly Endpoint[]): string[] {
  if (service.subjectAltNames.length > 0) return [...service.subjectAltNames];
  return [...new Set(endpoints.flatMap((e) => (e.identity ? [e.identity] : [])))].sort(compareStrings);
}

/**
 * Upstream TLS. Explicit DestinationRule TLS wins (DISABLE/SIMPLE/MUTUAL/ISTIO_MUTUAL). Without
 * one, sidecars and routers use Istio's auto mTLS: transport_socket_matches sending mTLS to
 * endpoints labelled `security.istio.io/tlsMode: istio` (their lb endpoint metadata
 * `envoy.transport_socket_match: {tlsMode: istio}`) and plaintext to the rest; none for
 * MESH_EXTERNAL services or a destination namespace whose PeerAuthentication is DISABLE.
 * Proxyless clients get TLS only from an explicit ISTIO_MUTUAL (as Istio's grpcgen).
 */
function transport(ctx: Ctx, service: Service, port: ServicePortInfo, subset: string, policy: EffectivePolicy, endpoints: readonly Endpoint[]): Msg {
  const mode = policy.tls?.mode;
  const sds = ctx.options.sdsClusterName;
  const sni = istioSni(port.number, subset, service.hostname);
  const alpn = upstreamAlpn(port, policy.connectionPool);
  if (ctx.proxy.kind === 'proxyless') {
    if (mode === 'ISTIO_MUTUAL') return { transport_socket: transportSocket(proxylessUpstream(ctx.options.certificateProviderInstance, sansFor(service, endpoints))) };
    if (mode === 'SIMPLE' || mode === 'MUTUAL') ctx.problem(`${clusterName('outbound', port.number, subset, service.hostname)}: TLS mode ${mode} is not supported for proxyless gRPC`);
    return {};
  }
  if (mode === 'DISABLE') return {};
  if (mode === 'ISTIO_MUTUAL') return { transport_socket: transportSocket(istioMutualUpstream(sds, sansFor(service, endpoints), sni, alpn)) };
  if (mode === 'SIMPLE' || mode === 'MUTUAL') return { transport_socket: transportSocket(clientTlsUpstream(policy.tls!, sds, service.hostname)) };
  if (service.location === 'MESH_EXTERNAL') return {};
  // As Istio's BestEffortInferServiceMTLSMode: no mTLS where the destination's namespace (or the mesh) disables it.
  if (ctx.snapshot.peerAuthentications.modeFor(service.namespace, {}) === 'DISABLE') return {};
  return {
    transport_socket_matches: [
      { name: 'tlsMode-istio', match: stringStruct({ tlsMode: 'istio' }), transport_socket: transportSocket(istioMutualUpstream(sds, sansFor(service, endpoints), sni, alpn)) },
      { name: 'tlsMode-disabled', match: {}, transport_socket: rawBufferSocket() },
    ],
  };
}

/** How a sidecar's or router's cluster originates TLS, for the source reporter's `connection_security_policy`. */
function upstreamTls(service: Service, policy: EffectivePolicy): UpstreamTls {
  const mode = policy.tls?.mode;
  if (mode === 'ISTIO_MUTUAL' || mode === 'MUTUAL' || mode === 'SIMPLE') return mode;
  if (mode === 'DISABLE' || service.location === 'MESH_EXTERNAL') return 'NONE';
  return 'AUTO';
}

/**
 * ClusterLoadAssignment: one locality group per (region, zone, subzone), each with a weight.
 * With `telemetry` (sidecars and routers) each endpoint carries the workload metadata the
 * access log reads (its principal only without `principalOnCluster`); without it (proxyless)
 * only the auto-mTLS `tlsMode`.
 */
export function loadAssignment(name: string, endpoints: readonly Endpoint[], telemetry: boolean, principalOnCluster = false): Msg {
  const groups = new Map<string, Endpoint[]>();
  const seen = new Set<string>();
  for (const e of endpoints) {
    // gRPC NACKs an assignment that lists one address twice; keep the first (sorted) one.
    const addr = `${e.address}|${e.port}`;
    if (seen.has(addr)) continue;
    seen.add(addr);
    const key = `${e.locality.region}/${e.locality.zone}/${e.locality.subzone}`;
    const list = groups.get(key);
    if (list) list.push(e);
    else groups.set(key, [e]);
  }
  const localities = [...groups.keys()].sort(compareStrings).map((key) => {
    const list = groups.get(key)!;
    const l = list[0]!.locality;
    return {
      locality: { ...(l.region && { region: l.region }), ...(l.zone && { zone: l.zone }), ...(l.subzone && { sub_zone: l.subzone }) },
      lb_endpoints: list.map((e) => ({
        endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
        load_balancing_weight: wrap(e.weight),
        ...(telemetry
          ? { metadata: endpointMetadata(e, principalOnCluster) }
          : e.tlsMode === 'istio' && { metadata: { filter_metadata: { [TRANSPORT_SOCKET_MATCH]: stringStruct({ tlsMode: 'istio' }) } } }),
      })),
      load_balancing_weight: wrap(list.reduce((sum, e) => sum + e.weight, 0)),
    };
  });
  return localities.length === 0 ? { cluster_name: name } : { cluster_name: name, endpoints: localities };
}
