/**
 * Envoy's gRPC services a mesh speaks, by full name, with each method's gRPC path and its
 * request and response message names (envoy/service/{discovery,secret,accesslog}/v3/*.proto).
 * Servers register and clients call these paths; nothing else spells them out.
 */

/** Full names of the messages these services carry, plus the Node every xDS request names. */
export const MessageName = {
  DiscoveryRequest: 'envoy.service.discovery.v3.DiscoveryRequest',
  DiscoveryResponse: 'envoy.service.discovery.v3.DiscoveryResponse',
  DeltaDiscoveryRequest: 'envoy.service.discovery.v3.DeltaDiscoveryRequest',
  DeltaDiscoveryResponse: 'envoy.service.discovery.v3.DeltaDiscoveryResponse',
  StreamAccessLogsMessage: 'envoy.service.accesslog.v3.StreamAccessLogsMessage',
  StreamAccessLogsResponse: 'envoy.service.accesslog.v3.StreamAccessLogsResponse',
  Node: 'envoy.config.core.v3.Node',
} as const;

/** One RPC: its gRPC path (`/<service>/<Method>`), method name and message names. */
export interface RpcMethod {
  readonly path: string;
  readonly name: string;
  readonly request: string;
  readonly response: string;
}

function rpc(service: string, name: string, request: string, response: string): RpcMethod {
  return Object.freeze({ path: `/${service}/${name}`, name, request, response });
}

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
const SDS = 'envoy.service.secret.v3.SecretDiscoveryService';
const ALS = 'envoy.service.accesslog.v3.AccessLogService';

/** ADS (ads.proto): one bidirectional stream for every resource type, state of the world or delta. */
export const AdsService = Object.freeze({
  name: ADS,
  sotw: rpc(ADS, 'StreamAggregatedResources', MessageName.DiscoveryRequest, MessageName.DiscoveryResponse),
  delta: rpc(ADS, 'DeltaAggregatedResources', MessageName.DeltaDiscoveryRequest, MessageName.DeltaDiscoveryResponse),
});

/** SDS (sds.proto): secrets (certificates, trust bundles) by name. */
export const SdsService = Object.freeze({
  name: SDS,
  sotw: rpc(SDS, 'StreamSecrets', MessageName.DiscoveryRequest, MessageName.DiscoveryResponse),
  delta: rpc(SDS, 'DeltaSecrets', MessageName.DeltaDiscoveryRequest, MessageName.DeltaDiscoveryResponse),
  fetch: rpc(SDS, 'FetchSecrets', MessageName.DiscoveryRequest, MessageName.DiscoveryResponse),
});

/** ALS (als.proto): Envoy streams access log entries; the server never answers until the end. */
export const AlsService = Object.freeze({
  name: ALS,
  stream: rpc(ALS, 'StreamAccessLogs', MessageName.StreamAccessLogsMessage, MessageName.StreamAccessLogsResponse),
});
