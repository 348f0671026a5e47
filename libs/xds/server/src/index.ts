export { XdsServer } from './server';
export { MAX_STREAMS_REASON, WARMING_TIMEOUT_MS } from './server';
export type { XdsServerOptions, PushDebounce, XdsStreamLimits, ConfigDumpEntry, StreamAuthorizer, StreamPeer, StreamVerdict } from './server';
export { XdsMetrics } from './metrics';
export type { TypeLabel } from './metrics';
export { pushOrder } from './connection';
export type { XdsStatusEvent, XdsStatusKind, ProxyStatus, TypeStatus, NackRecord, Protocol, XdsLogger } from './connection';
export { adsServiceDefinition, encodeDiscoveryResponse, encodeDeltaDiscoveryResponse, decodeDiscoveryRequest, decodeDeltaDiscoveryRequest } from './wire';
export type { DiscoveryRequest, DeltaDiscoveryRequest } from './wire';
