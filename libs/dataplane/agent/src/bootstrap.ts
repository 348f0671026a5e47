import { isIP } from 'node:net';
import { AviaryError } from '@aviary/errors';
import type { AgentNode } from './node';
import { ROOT_SECRET, WORKLOAD_SECRET } from './sds-server';

/**
 * Envoy's bootstrap, written by the agent before it starts Envoy (CONTRACT.md): static clusters
 * `xds-grpc` (pilot's ADS), `sds-grpc` and `aviary-als` (the agent's gRPC servers on Unix sockets
 * in its work dir), admin on 127.0.0.1, LDS and CDS from ADS. Optional static listeners as
 * Istio's bootstrap has them: Prometheus stats (15090, `/stats/prometheus` → the admin) and
 * readiness (15021, `/healthz/ready` → the agent's `/readyz`). A pure function: same input,
 * same JSON.
 */
export const XDS_CLUSTER = 'xds-grpc';
export const SDS_CLUSTER = 'sds-grpc';
export const ALS_CLUSTER = 'aviary-als';

export type XdsProtocol = 'sotw' | 'delta';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface BootstrapInput {
  readonly node: AgentNode;
  /** pilot's ADS (`host:port`; a DNS name is resolved by Envoy, every address it has is used). */
  readonly pilot: HostPort;
  /**
   * Further pilot replicas (local mode, where no Service spreads connections): every address is
   * an endpoint of `xds-grpc`; Envoy opens the ADS stream to one (round robin) and, when that
   * replica goes away or refuses the stream, re-opens it to the next after its back-off.
   */
  readonly otherPilots?: readonly HostPort[];
  /**
   * Reach pilot over mutual TLS (its 15012): the client certificate is the SDS secret `default`,
   * the trust anchors `ROOTCA`, both from `sds-grpc`; pilot's certificate must carry
   * `subjectAltName` (a DNS name, or an IP address for an IP literal), also sent as SNI for a name.
   * Absent: plaintext (pilot's loopback-only 15010).
   */
  readonly pilotTls?: { readonly subjectAltName: string };
  readonly xdsProtocol: XdsProtocol;
  readonly adminPort: number;
  readonly sdsSocket: string;
  readonly alsSocket: string;
  /** Prometheus stats listener (Istio's 15090), absent: none. */
  readonly stats?: HostPort;
  /** Readiness listener (Istio's 15021): `/healthz/ready` answered by the agent admin at `agentAdminPort`. */
  readonly readiness?: HostPort & { readonly agentAdminPort: number };
}

const T = 'type.googleapis.com/';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** pilot's mTLS xDS port (Istio's 15012). */
export const PILOT_MTLS_PORT = 15012;

/**
 * Whether `xds-grpc` uses mTLS: `on`/`off` as set; `auto` turns it on in Kubernetes and whenever
 * the pilot address is the mTLS port. The SAN pilot must present is `subjectAltName`, else the
 * host of the pilot address.
 */
export function pilotTlsSetting(opts: { readonly xdsTls: 'auto' | 'on' | 'off'; readonly platform: 'local' | 'kubernetes'; readonly pilot: HostPort; readonly subjectAltName: string }): BootstrapInput['pilotTls'] {
  const on = opts.xdsTls === 'on' || (opts.xdsTls === 'auto' && (opts.platform === 'kubernetes' || opts.pilot.port === PILOT_MTLS_PORT));
  return on ? { subjectAltName: opts.subjectAltName !== '' ? opts.subjectAltName : opts.pilot.host } : undefined;
}

/** Splits `host:port` (`[v6]:port` too), with a clear error naming the option. */
/** A comma-separated list of `host:port` (at least one; no duplicates), with errors naming the option. */
export function parseHostPorts(text: string, option: string): HostPort[] {
  const out = text.split(',').map((part) => parseHostPort(part.trim(), option));
  const seen = new Set<string>();
  for (const a of out) {
    const key = `${a.host}:${a.port}`;
    if (seen.has(key)) throw new AviaryError('INVALID_ARGUMENT', 'AGENT_ADDRESS_INVALID', `${option}: ${key} is listed twice`, { option });
    seen.add(key);
  }
  return out;
}

export function parseHostPort(text: string, option: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port > 0 && port < 65536)) throw new AviaryError('INVALID_ARGUMENT', 'AGENT_ADDRESS_INVALID', `${option}: expected host:port, got "${text}"`, { option });
  return { host: (m[1] ?? m[2]) as string, port };
}

function socketAddress(a: HostPort) {
  return { socket_address: { address: a.host, port_value: a.port } };
}

/**
 * How Envoy re-opens the ADS stream after pilot went away (`GrpcService.EnvoyGrpc.retry_policy`,
 * honoured for xDS streams only). Envoy's back-off is fully jittered (each wait is uniform in
 * [0, min(base·2ⁿ, max)]), so a fleet whose pilot restarts does not come back in lockstep; its
 * default (0.5 s doubling to 30 s) left proxies 9–13 s without a pilot that was back after 1 s.
 * With 0.25 s doubling to 2 s a proxy is at most ~2 s behind a returning pilot. The back-off
 * restarts from `base` once a response arrives on the new stream.
 */
export const XDS_RECONNECT = { baseInterval: '0.250s', maxInterval: '2s' } as const;

/**
 * HTTP/2 PINGs on the `xds-grpc` connection: a pilot that vanished without closing the
 * connection (its node lost, a network partition) is noticed within interval + timeout instead
 * of the kernel's TCP timeouts, and the stream is re-opened elsewhere behind the Service.
 */
const XDS_KEEPALIVE = { interval: '15s', timeout: '5s' } as const;

function grpcCluster(name: string, address: object | readonly object[], type: 'STATIC' | 'STRICT_DNS', http2: object = {}) {
  const addresses = Array.isArray(address) ? address : [address];
  return {
    name,
    type,
    connect_timeout: '1s',
    ...(type === 'STRICT_DNS' ? { dns_lookup_family: 'V4_PREFERRED' } : {}),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: addresses.map((a: object) => ({ endpoint: { address: a } })) }] },
    typed_extension_protocol_options: {
      [`envoy.extensions.upstreams.http.v3.HttpProtocolOptions`]: {
        '@type': T + HTTP_PROTOCOL_OPTIONS,
        explicit_http_config: { http2_protocol_options: http2 },
      },
    },
  };
}

/** An SDS secret from the agent's `sds-grpc` (as pilot's own references: no fetch deadline). */
function agentSecret(name: string) {
  return {
    name,
    sds_config: {
      api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }], set_node_on_first_message_only: true },
      initial_fetch_timeout: '0s',
      resource_api_version: 'V3',
    },
  };
}

/** `xds-grpc` over mTLS with the workload certificate; pilot is verified by its SAN. */
function pilotTransportSocket(subjectAltName: string) {
  const ip = isIP(subjectAltName) !== 0;
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': `${T}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
      ...(ip ? {} : { sni: subjectAltName }),
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2', tls_maximum_protocol_version: 'TLSv1_3' },
        alpn_protocols: ['h2'],
        tls_certificate_sds_secret_configs: [agentSecret(WORKLOAD_SECRET)],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: ip ? 'IP_ADDRESS' : 'DNS', matcher: { exact: subjectAltName } }] },
          validation_context_sds_secret_config: agentSecret(ROOT_SECRET),
        },
      },
    },
  };
}

function staticHttpCluster(name: string, address: HostPort) {
  return { name, type: 'STATIC', connect_timeout: '1s', load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address) } }] }] } };
}

/** A static listener with one route: exact `path` → `cluster` (rewritten to `rewrite`). */
function staticListener(name: string, address: HostPort, path: string, cluster: string, rewrite: string) {
  return {
    name,
    address: socketAddress(address),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
              stat_prefix: name,
              codec_type: 'AUTO',
              route_config: {
                virtual_hosts: [
                  {
                    name: 'backend',
                    domains: ['*'],
                    routes: [{ match: { path }, route: { cluster, ...(rewrite === path ? {} : { prefix_rewrite: rewrite }) } }],
                  },
                ],
              },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': `${T}envoy.extensions.filters.http.router.v3.Router` } }],
            },
          },
        ],
      },
    ],
  };
}

/**
 * Istio's stat tags (its envoy_bootstrap.json): a cluster name such as
 * `outbound|80||hello.demo.svc.cluster.local` stays one `cluster_name` label instead of being
 * split at its dots by Envoy's default extractors, and the labels are named as Istio names them.
 */
const STATS_TAGS = [
  { tag_name: 'cluster_name', regex: '^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)' },
  { tag_name: 'tcp_prefix', regex: '^tcp\\.((.*?)\\.)\\w+?$' },
  { tag_name: 'response_code', regex: '_rq(_(\\d{3}))$' },
  { tag_name: 'response_code_class', regex: '_rq(_(\\dxx))$' },
  { tag_name: 'http_conn_manager_listener_prefix', regex: '^listener(?=\\.).*?\\.http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)' },
  { tag_name: 'http_conn_manager_prefix', regex: '^http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)' },
  { tag_name: 'listener_address', regex: '^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)' },
];

export function envoyBootstrap(input: BootstrapInput): Record<string, unknown> {
  const { node } = input;
  const pilots = [input.pilot, ...(input.otherPilots ?? [])];
  const pilotType = pilots.every((p) => isIP(p.host) !== 0) ? 'STATIC' : 'STRICT_DNS';
  // Envoy waits for its first CDS and LDS without a deadline (Istio: initial_fetch_timeout 0s):
  // the agent holds readiness meanwhile instead of letting Envoy go live without config.
  const fromAds = { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '0s' };
  const clusters: object[] = [
    {
      ...grpcCluster(XDS_CLUSTER, pilots.map(socketAddress), pilotType, { connection_keepalive: XDS_KEEPALIVE }),
      ...(input.pilotTls === undefined ? {} : { transport_socket: pilotTransportSocket(input.pilotTls.subjectAltName) }),
    },
    grpcCluster(SDS_CLUSTER, { pipe: { path: input.sdsSocket } }, 'STATIC'),
    grpcCluster(ALS_CLUSTER, { pipe: { path: input.alsSocket } }, 'STATIC'),
  ];
  const listeners: object[] = [];
  if (input.stats !== undefined) {
    clusters.push(staticHttpCluster('prometheus_stats', { host: '127.0.0.1', port: input.adminPort }));
    listeners.push(staticListener('prometheus_stats', input.stats, '/stats/prometheus', 'prometheus_stats', '/stats/prometheus'));
  }
  if (input.readiness !== undefined) {
    clusters.push(staticHttpCluster('agent', { host: '127.0.0.1', port: input.readiness.agentAdminPort }));
    listeners.push(staticListener('agent', input.readiness, '/healthz/ready', 'agent', '/readyz'));
  }
  return {
    node: { id: node.id, cluster: node.cluster, metadata: node.metadata, locality: node.locality },
    stats_config: { use_all_default_tags: false, stats_tags: STATS_TAGS },
    // Envoy's OpenTelemetry tracer (pilot's config exports spans to aviary-als) would call the
    // agent every 5 spans; flush on its 5 s timer instead (see @aviary/access-log).
    layered_runtime: { layers: [{ name: 'static', static_layer: { 'tracing.opentelemetry.min_flush_spans': 1000 } }] },
    // As Istio: an explicit (unbounded) downstream connection limit, so Envoy does not warn about a missing one.
    overload_manager: {
      resource_monitors: [
        {
          name: 'envoy.resource_monitors.global_downstream_max_connections',
          typed_config: { '@type': `${T}envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig`, max_active_downstream_connections: 2147483647 },
        },
      ],
    },
    admin: { address: socketAddress({ host: '127.0.0.1', port: input.adminPort }) },
    dynamic_resources: {
      ads_config: {
        api_type: input.xdsProtocol === 'delta' ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER, retry_policy: { retry_back_off: { base_interval: XDS_RECONNECT.baseInterval, max_interval: XDS_RECONNECT.maxInterval } } } }],
        set_node_on_first_message_only: true,
      },
      cds_config: fromAds,
      lds_config: fromAds,
    },
    static_resources: { clusters, ...(listeners.length > 0 ? { listeners } : {}) },
  };
}
