export { buildSnapshot, resolveOptions, modelKinds, gatewayApiKinds, DEFAULT_DOMAIN_SUFFIX, DEFAULT_ROOT_NAMESPACE } from './snapshot';
export type { GatewayDeployment } from './gateway-api/convert';
export { convertGatewayApi, bindPorts, AVIARY_CONTROLLER, ISTIO_CONTROLLER, GATEWAY_NAME_LABEL, builtinClasses, controllerNames } from './gateway-api/convert';
export type { GatewayApiInput, GatewayApiOutput } from './gateway-api/convert';
export { reasons as gatewayApiReasons } from './gateway-api/status';
export type { ComputedStatus, Condition } from './gateway-api/status';
export type { MeshSnapshot, ModelKind } from './snapshot';
export { SnapshotBuilder, diffSnapshots } from './builder';
export type { SnapshotDelta } from './builder';
export { ServiceIndex, EndpointIndex, parseLocality, portProtocol, TLS_MODE_LABEL } from './services';
export { VirtualServiceIndex, DestinationRuleIndex, GatewayIndex, SidecarIndex, MESH_GATEWAY } from './routing';
export { mergeDelegates, mergeHttpRoute, mergeMatches, isDelegate, delegateRef } from './delegate';
export type { BoundVirtualService } from './routing';
export { PeerAuthenticationIndex, AuthorizationPolicyIndex, RateLimitPolicyIndex, RequestAuthenticationIndex, jwksSourceOf, OIDC_DISCOVERY_SUFFIX } from './security';
export { serviceTargets, targetRefsOf } from './policy-targets';
export type { PolicyTarget, PolicyTargetKind } from './policy-targets';
export type { MtlsMode, ApplicablePolicies } from './security';
export { labelsMatch, isIpLiteral, resolveHost, hostMatches, hostsIntersect, isExportedTo, compareStrings } from './util';
export { problemCodes } from './types';
export type {
  ModelObject,
  ModelChangeEvent,
  MeshOptions,
  ResolvedMeshOptions,
  ProblemCode,
  ModelProblem,
  ConfigEntry,
  VirtualServiceEntry,
  DestinationRuleEntry,
  GatewayEntry,
  SidecarEntry,
  PeerAuthenticationEntry,
  AuthorizationPolicyEntry,
  RateLimitPolicyEntry,
  RequestAuthenticationEntry,
  JwksResolution,
  Resolution,
  Location,
  ServicePortInfo,
  Service,
  Locality,
  Endpoint,
} from './types';
export { CredentialIndex, CREDENTIALS_INPUT, CREDENTIAL_PREFIX } from './credentials';
export type { GatewayCredential, CredentialLookup } from './credentials';
export { parseNode, lenientNodeParser, proxyKinds } from './proxy';
export type { ProxyInfo, ProxyKind, ProxyLocality, NodeLike, ParseNodeOptions } from './proxy';
