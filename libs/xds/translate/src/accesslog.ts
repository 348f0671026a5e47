import type { Endpoint } from '@aviary/mesh-model';
import type { Msg } from './envoy';

/**
 * Envoy's gRPC access log (ALS) towards the mesh agent, and the contract between what pilot
 * configures here and what the agent's `@aviary/access-log` reads back (this module is the one
 * place the tag names, metadata keys and header list are written).
 *
 * Every HTTP connection manager and TCP proxy pilot sends to a sidecar or router logs to the
 * bootstrap cluster `aviary-als` (the agent's ALS server on a Unix socket) under log name
 * `aviary` (CONTRACT.md). Each entry carries custom tags:
 * - `reporter` (literal): `source` on outbound listeners and routers, `destination` on inbound;
 * - `destination_service` (literal, inbound only): the service host of the inbound chain
 *   (outbound reads it from the upstream cluster name `outbound|port|subset|host`);
 * - `upstream_workload` / `upstream_principal` / `upstream_tls_mode` (upstream host metadata,
 *   from the EDS endpoint's `filter_metadata`, see `endpointMetadata`);
 * - `upstream_tls` and `upstream_cluster_principal` (upstream cluster metadata, see
 *   `clusterTelemetryMetadata`): how the cluster originates TLS, so the source reporter can tell
 *   whether the hop was mutual TLS; and the principal every endpoint of the cluster shares, when
 *   they all share one: those endpoints then carry none of their own (`upstream_principal`
 *   wins when present). A service's endpoints usually run as one service account, and the
 *   principal in each endpoint was about a fifth of the bytes of a large mesh's cold start;
 * - `peer_workload` (inbound, request metadata): the calling workload's name. The peer
 *   certificate names only a service account, so (like Istio's metadata exchange, reduced) the
 *   calling proxy sends its workload name in `x-aviary-peer-workload`, taken from its own
 *   environment (`%ENVIRONMENT(ISTIO_META_WORKLOAD_NAME)%`: the agent sets it for Envoy), and the
 *   receiving sidecar moves it into request metadata, removing it before the app sees it. The
 *   agent trusts it only on a mutual TLS connection;
 * - `parent_traceparent` (request metadata): the `traceparent` the request came with.
 *
 * Tracing: each HCM runs Envoy's OpenTelemetry tracer, so every hop is a span: Envoy continues
 * the incoming W3C `traceparent` (or starts a trace at the edge) and forwards a `traceparent`
 * naming its own span. The access log's `traceparent` header is read after that rewrite (this
 * hop's span), `parent_traceparent` before it (the caller's span). The tracer must export
 * somewhere: it exports to the agent (`aviary-als`), whose server accepts and drops the spans,
 * since the request records already carry the same ids to the collector.
 * Proxyless gRPC clients have no access log (no Envoy, no agent).
 */

/** Bootstrap cluster of the agent's ALS server (CONTRACT.md). */
export const ALS_CLUSTER = 'aviary-als';
/** `common_config.log_name` of every access log pilot configures (CONTRACT.md). */
export const ALS_LOG_NAME = 'aviary';

/** Custom tag names in `AccessLogCommon.custom_tags`. */
export const AlsTag = {
  reporter: 'reporter',
  destinationService: 'destination_service',
  upstreamWorkload: 'upstream_workload',
  upstreamPrincipal: 'upstream_principal',
  upstreamClusterPrincipal: 'upstream_cluster_principal',
  upstreamTlsMode: 'upstream_tls_mode',
  upstreamTls: 'upstream_tls',
  peerWorkload: 'peer_workload',
  parentTraceparent: 'parent_traceparent',
} as const;

/** The header a calling proxy names its workload in, and the environment variable of Envoy's it reads the name from. */
export const PEER_WORKLOAD_HEADER = 'x-aviary-peer-workload';
export const WORKLOAD_NAME_ENV = 'ISTIO_META_WORKLOAD_NAME';
const PEER_WORKLOAD_KEY = 'peer_workload';
const PARENT_TRACEPARENT_KEY = 'parent_traceparent';

/** Request headers logged in `HTTPRequestProperties.request_headers`. */
export const ALS_REQUEST_HEADERS: readonly string[] = Object.freeze(['traceparent', 'content-type']);

/**
 * Endpoint metadata namespaces. `istio.workload` is Istio's own encoding,
 * `<workload>;<namespace>;<canonical service>;<canonical revision>;<cluster>`; the SPIFFE id of
 * the endpoint's service account goes under `aviary.principal` (of the endpoint, or of the
 * cluster when all its endpoints share it); `envoy.transport_socket_match` `tlsMode` is what
 * auto mTLS already matches on.
 */
export const ISTIO_METADATA = 'istio';
export const AVIARY_METADATA = 'aviary';
export const TRANSPORT_SOCKET_MATCH = 'envoy.transport_socket_match';

/** Values of the cluster metadata `aviary.tls`: the DestinationRule TLS mode, `AUTO` for Istio's auto mTLS, `NONE` without TLS. */
export type UpstreamTls = 'ISTIO_MUTUAL' | 'MUTUAL' | 'SIMPLE' | 'AUTO' | 'NONE';

export type Reporter = 'source' | 'destination';

const KUBERNETES_POD_ENTRY = 'k8s-pod.';

/**
 * The workload an endpoint belongs to, as Istio names it: a WorkloadEntry's name; for a pod
 * (the Kubernetes registry's `k8s-pod.<pod>` entries) its Deployment, i.e. the pod name without
 * the `-<pod-template-hash>-<suffix>` tail; else the `app` label.
 */
export function workloadNameOf(e: Endpoint): string {
  const [kind, , rawName] = e.source.split('/');
  const name = (rawName ?? '').split('#')[0] ?? '';
  if (kind === 'WorkloadEntry' && name !== '') {
    if (!name.startsWith(KUBERNETES_POD_ENTRY)) return name;
    const pod = name.slice(KUBERNETES_POD_ENTRY.length);
    const hash = e.labels['pod-template-hash'];
    const cut = hash === undefined ? -1 : pod.lastIndexOf(`-${hash}-`);
    return cut > 0 ? pod.slice(0, cut) : pod;
  }
  return e.labels['app'] ?? '';
}

/** Istio's `istio.workload` value for an endpoint (the cluster id is left empty: one registry). */
export function istioWorkloadValue(e: Endpoint): string {
  const app = e.labels['service.istio.io/canonical-name'] ?? e.labels['app'] ?? '';
  const version = e.labels['service.istio.io/canonical-revision'] ?? e.labels['version'] ?? '';
  return [workloadNameOf(e), e.namespace, app, version, ''].join(';');
}

const str = (value: string): Msg => ({ string_value: value });

/**
 * The principal all of a cluster's endpoints share (their `identity`), or undefined when one has
 * none, they differ, or there are none: what `clusterTelemetryMetadata` carries for them.
 */
export function sharedPrincipal(endpoints: readonly Endpoint[]): string | undefined {
  const first = endpoints[0]?.identity;
  return first !== undefined && endpoints.every((e) => e.identity === first) ? first : undefined;
}

/**
 * `lb_endpoints[].metadata` for a sidecar or router: workload, principal and (auto mTLS)
 * tlsMode. `principalOnCluster`: the cluster's metadata carries the endpoint's principal (see
 * `sharedPrincipal`), so the endpoint does not repeat it.
 */
export function endpointMetadata(e: Endpoint, principalOnCluster = false): Msg {
  const fm: Msg = {
    [ISTIO_METADATA]: { fields: { workload: str(istioWorkloadValue(e)) } },
    ...(e.identity !== undefined && !principalOnCluster && { [AVIARY_METADATA]: { fields: { principal: str(e.identity) } } }),
    ...(e.tlsMode === 'istio' && { [TRANSPORT_SOCKET_MATCH]: { fields: { tlsMode: str('istio') } } }),
  };
  return { filter_metadata: fm };
}

/**
 * Cluster `metadata` telling the source reporter how the cluster originates TLS and, when all
 * its endpoints share one (`sharedPrincipal`), their principal.
 */
export function clusterTelemetryMetadata(tls: UpstreamTls, principal?: string): Msg {
  return { filter_metadata: { [AVIARY_METADATA]: { fields: { tls: str(tls), ...(principal !== undefined && { principal: str(principal) }) } } } };
}

function literal(tag: string, value: string): Msg {
  return { tag, literal: { value } };
}

function metadataTag(tag: string, kind: 'host' | 'cluster' | 'request', namespace: string, key: string): Msg {
  return { tag, metadata: { kind: { [kind]: {} }, metadata_key: { key: namespace, path: [{ key }] } } };
}

export interface AccessLogOptions {
  readonly reporter: Reporter;
  /** Inbound: the service host the chain serves. */
  readonly destinationService?: string;
}

/** Tags that read request metadata exist only for HTTP (a TCP proxy has no request). */
type LogKind = AccessLogOptions & { readonly http?: boolean };

function customTags(o: LogKind): Msg[] {
  const tags = [literal(AlsTag.reporter, o.reporter)];
  if (o.http === true) tags.push(metadataTag(AlsTag.parentTraceparent, 'request', AVIARY_METADATA, PARENT_TRACEPARENT_KEY));
  if (o.destinationService !== undefined && o.destinationService !== '') tags.push(literal(AlsTag.destinationService, o.destinationService));
  if (o.reporter === 'destination' && o.http === true) tags.push(metadataTag(AlsTag.peerWorkload, 'request', AVIARY_METADATA, PEER_WORKLOAD_KEY));
  if (o.reporter === 'source') {
    tags.push(
      metadataTag(AlsTag.upstreamWorkload, 'host', ISTIO_METADATA, 'workload'),
      metadataTag(AlsTag.upstreamPrincipal, 'host', AVIARY_METADATA, 'principal'),
      metadataTag(AlsTag.upstreamTlsMode, 'host', TRANSPORT_SOCKET_MATCH, 'tlsMode'),
      metadataTag(AlsTag.upstreamTls, 'cluster', AVIARY_METADATA, 'tls'),
      metadataTag(AlsTag.upstreamClusterPrincipal, 'cluster', AVIARY_METADATA, 'principal'),
    );
  }
  return tags;
}

function commonConfig(o: LogKind): Msg {
  return {
    log_name: ALS_LOG_NAME,
    grpc_service: { envoy_grpc: { cluster_name: ALS_CLUSTER } },
    transport_api_version: 'V3',
    custom_tags: customTags(o),
  };
}

export const HTTP_GRPC_ACCESS_LOG = 'envoy.access_loggers.http_grpc';
export const TCP_GRPC_ACCESS_LOG = 'envoy.access_loggers.tcp_grpc';
const HttpGrpcAccessLogConfig = 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig';
const TcpGrpcAccessLogConfig = 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig';

/** `access_log` entry of an HttpConnectionManager. */
export function httpAccessLog(o: AccessLogOptions): Msg {
  return {
    name: HTTP_GRPC_ACCESS_LOG,
    typed_config: { '@type': HttpGrpcAccessLogConfig, common_config: commonConfig({ ...o, http: true }), additional_request_headers_to_log: [...ALS_REQUEST_HEADERS] },
  };
}

/** `access_log` entry of a TcpProxy. */
export function tcpAccessLog(o: AccessLogOptions): Msg {
  return { name: TCP_GRPC_ACCESS_LOG, typed_config: { '@type': TcpGrpcAccessLogConfig, common_config: commonConfig(o) } };
}

/** `request_headers_to_add` entry of an outbound virtual host or a router's route configuration: this proxy's workload name. */
export function peerWorkloadHeader(): Msg {
  return { header: { key: PEER_WORKLOAD_HEADER, value: `%ENVIRONMENT(${WORKLOAD_NAME_ENV})%` }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

const HEADER_TO_METADATA = 'envoy.filters.http.header_to_metadata';
const HeaderToMetadataConfig = 'type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config';

/**
 * The first HTTP filter of every sidecar and router HCM: copies the incoming `traceparent` into
 * request metadata `aviary.parent_traceparent` (before the tracer rewrites it) and, inbound,
 * moves `x-aviary-peer-workload` into `aviary.peer_workload`, removing it from the request.
 */
export function telemetryFilter(reporter: Reporter): Msg {
  const rule = (header: string, key: string, remove: boolean): Msg => ({ header, on_header_present: { metadata_namespace: AVIARY_METADATA, key, type: 'STRING' }, ...(remove && { remove: true }) });
  return {
    name: HEADER_TO_METADATA,
    // Optional so that a data plane without it (Aviary's retiring Node proxy) may skip it; Envoy has it.
    is_optional: true,
    typed_config: {
      '@type': HeaderToMetadataConfig,
      request_rules: [rule('traceparent', PARENT_TRACEPARENT_KEY, false), ...(reporter === 'destination' ? [rule(PEER_WORKLOAD_HEADER, PEER_WORKLOAD_KEY, true)] : [])],
    },
  };
}

const OPENTELEMETRY_TRACER = 'envoy.tracers.opentelemetry';
const OpenTelemetryConfig = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
/** `service_name` of the spans Envoy exports to the agent (which drops them). */
export const TRACER_SERVICE_NAME = 'aviary-proxy';

/** The HCM `tracing` of sidecars and routers: a span per hop, W3C trace context, exported to the agent. */
export function hcmTracing(): Msg {
  return {
    provider: {
      name: OPENTELEMETRY_TRACER,
      typed_config: { '@type': OpenTelemetryConfig, grpc_service: { envoy_grpc: { cluster_name: ALS_CLUSTER } }, service_name: TRACER_SERVICE_NAME },
    },
  };
}
