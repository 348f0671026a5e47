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
export { kinds, kindFor, kindInfo, kindsNamed, isMeshKind, resourceKey, DEFAULT_NAMESPACE, CLUSTER_SCOPE } from './kinds';
export { meshObject, refKey, refOf, storedFrom, withApiKind, withStoredKind } from './envelope';
export { GATEWAY_API_GROUP, gatewayApiVersions, referenceGrantVersions, ParentReference, BackendObjectReference, HTTPHeaderFilter, HTTPRequestMirrorFilter, LabelSelector } from './gateway-api/common';
export { GatewayClassSchema, GatewayClassSpec } from './gateway-api/gateway-class';
export type { GatewayClass } from './gateway-api/gateway-class';
export { KubernetesGatewaySchema, KubernetesGatewaySpec, Listener, GatewayTLSConfig, AllowedRoutes, SecretObjectReference } from './gateway-api/gateway';
export type { KubernetesGateway, KubernetesGatewayManifest } from './gateway-api/gateway';
export {
  HTTPRouteSchema,
  HTTPRouteSpec,
  HTTPRouteRule,
  HTTPRouteMatch,
  HTTPRouteFilter,
  HTTPBackendRef,
  HTTPPathMatch,
  HTTPPathModifier,
  HTTPHeaderMatch,
  HTTPQueryParamMatch,
  HTTPRequestRedirectFilter,
  HTTPURLRewriteFilter,
  httpMethods,
} from './gateway-api/http-route';
export type { KubernetesHTTPRoute } from './gateway-api/http-route';
export { GRPCRouteSchema, GRPCRouteSpec, GRPCRouteRule, GRPCRouteMatch, GRPCRouteFilter } from './gateway-api/grpc-route';
export type { GRPCRoute } from './gateway-api/grpc-route';
export { TCPRouteSchema, TCPRouteSpec, TLSRouteSchema, TLSRouteSpec, L4RouteRule, L4BackendRef, tcpRouteVersions, tlsRouteVersions } from './gateway-api/l4-route';
export type { KubernetesTCPRoute, KubernetesTLSRoute } from './gateway-api/l4-route';
export { ReferenceGrantSchema, ReferenceGrantSpec } from './gateway-api/reference-grant';
export type { ReferenceGrant } from './gateway-api/reference-grant';
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
