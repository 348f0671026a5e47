export {
  Closed,
  Duration,
  StringMatch,
  WorkloadSelector,
  MatchLabelsSelector,
  PolicyTargetReference,
  PortSelector,
  Percent,
  ObjectMeta,
  Status,
} from './common';
export { parseDuration, isDuration } from './duration';
export { networkingVersions, securityVersions, aviaryNetworkingVersions } from './networking/versions';
export {
  VirtualServiceSchema,
  VirtualServiceSpec,
  HTTPRoute,
  HTTPMatchRequest,
  HTTPRouteDestination,
  RouteDestination,
  TLSRoute,
  TCPRoute,
  Destination,
  Headers,
} from './networking/virtual-service';
export {
  DestinationRuleSchema,
  DestinationRuleSpec,
  TrafficPolicy,
  Subset,
  LoadBalancerSettings,
  ConnectionPoolSettings,
  OutlierDetection,
  ClientTLSSettings,
} from './networking/destination-rule';
export { GatewaySchema, GatewaySpec, Server, ServerTLSSettings, Port } from './networking/gateway';
export { ServiceEntrySchema, ServiceEntrySpec, ServicePort, WorkloadEntrySchema, WorkloadEntrySpec } from './networking/service-entry';
export { SidecarSchema, SidecarSpec } from './networking/sidecar';
export { PeerAuthenticationSchema, PeerAuthenticationSpec, MutualTLS, mtlsModes } from './security/peer-authentication';
export {
  AuthorizationPolicySchema,
  AuthorizationPolicySpec,
  Rule,
  Source,
  Operation,
  Condition,
  authorizationActions,
} from './security/authorization-policy';
export { RequestAuthenticationSchema, RequestAuthenticationSpec, JWTRule } from './security/request-authentication';
export { RateLimitPolicySchema, RateLimitPolicySpec, RateLimitRule, TokenBucket } from './aviary/rate-limit-policy';
export {
  CanarySchema,
  CanarySpec,
  CanaryStatus,
  CanaryStep,
  CanaryAnalysis,
  CanaryAnalysisResult,
  CanaryDestination,
  CanaryTarget,
  CanarySample,
  CanaryCondition,
  canaryPhases,
  canaryVerdicts,
  canaryFailurePolicies,
} from './aviary/canary';
export type { Canary, CanaryPhase } from './aviary/canary';
export { kinds, kindFor, isMeshKind, resourceKey, DEFAULT_NAMESPACE } from './kinds';
export { meshObject, refKey, refOf, storedFrom } from './envelope';
export type { MeshObject, ResourceRef, SpecOf, StoredMetadata, StoredObject } from './envelope';
export type { KindInfo, MeshKind, MeshResource } from './kinds';
export type { VirtualService } from './networking/virtual-service';
export type { DestinationRule } from './networking/destination-rule';
export type { Gateway } from './networking/gateway';
export type { ServiceEntry, WorkloadEntry } from './networking/service-entry';
export type { Sidecar } from './networking/sidecar';
export type { PeerAuthentication } from './security/peer-authentication';
export type { AuthorizationPolicy } from './security/authorization-policy';
export type { RequestAuthentication } from './security/request-authentication';
export type { RateLimitPolicy } from './aviary/rate-limit-policy';
export {
  MeshConfigSchema,
  ExtensionProvider,
  EnvoyExternalAuthorizationHttpProvider,
  EnvoyExternalAuthorizationGrpcProvider,
  ExtAuthzRequestBody,
  envoyStatusCodes,
} from './mesh/mesh-config';
export type { MeshConfig } from './mesh/mesh-config';
