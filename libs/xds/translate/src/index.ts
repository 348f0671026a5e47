export { translate, toSnapshotInput, cachedTranslation, selectingLabelKeys, proxyGroupKey } from './translate';
export type { XdsResources, ResourcesByType, CachedTranslation } from './translate';
export { changeFor } from './change';
export type { XdsChange } from './change';
export type { NamedResource } from './result';
export { clusterName, endpointNamesOf, effectivePolicy, resolveTranslateOptions, firstInstanceIp, interceptionNone, PASSTHROUGH_CLUSTER, BLACKHOLE_CLUSTER } from './context';
export type { TranslateOptions, ResolvedTranslateOptions, EffectivePolicy } from './context';
export { T as typeUrls, N as filterNames, typed, durationMs, fractionalPercent } from './envoy';
export type { Msg } from './envoy';
export { istioSni } from './clusters';
export { SECRET_WORKLOAD, SECRET_ROOT } from './tls';
export { OUTBOUND_PORT } from './sidecar';
export { INBOUND_PORT } from './inbound';
export {
  ALS_CLUSTER,
  ALS_LOG_NAME,
  ALS_REQUEST_HEADERS,
  AlsTag,
  ISTIO_METADATA,
  AVIARY_METADATA,
  TRANSPORT_SOCKET_MATCH,
  HTTP_GRPC_ACCESS_LOG,
  TCP_GRPC_ACCESS_LOG,
  httpAccessLog,
  tcpAccessLog,
  hcmTracing,
  telemetryFilter,
  workloadNameOf,
} from './accesslog';
export type { AccessLogOptions, Reporter, UpstreamTls } from './accesslog';
