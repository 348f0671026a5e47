import { type TSchema } from 'typebox';
import { CanarySchema, type Canary } from './aviary/canary';
import { gatewayApiV1Only, gatewayApiVersions, referenceGrantVersions } from './gateway-api/common';
import { GatewayClassSchema, type GatewayClass } from './gateway-api/gateway-class';
import { KubernetesGatewaySchema, type KubernetesGateway } from './gateway-api/gateway';
import { GRPCRouteSchema, type GRPCRoute } from './gateway-api/grpc-route';
import { HTTPRouteSchema, type KubernetesHTTPRoute } from './gateway-api/http-route';
import { TCPRouteSchema, tcpRouteVersions, TLSRouteSchema, tlsRouteVersions, type KubernetesTCPRoute, type KubernetesTLSRoute } from './gateway-api/l4-route';
import { ReferenceGrantSchema, type ReferenceGrant } from './gateway-api/reference-grant';
import { RateLimitPolicySchema, type RateLimitPolicy } from './aviary/rate-limit-policy';
import { DestinationRuleSchema, type DestinationRule } from './networking/destination-rule';
import { GatewaySchema, type Gateway } from './networking/gateway';
import { ServiceEntrySchema, WorkloadEntrySchema, type ServiceEntry, type WorkloadEntry } from './networking/service-entry';
import { SidecarSchema, type Sidecar } from './networking/sidecar';
import { aviaryNetworkingVersions, networkingVersions, securityVersions } from './networking/versions';
import { VirtualServiceSchema, type VirtualService } from './networking/virtual-service';
import { AuthorizationPolicySchema, type AuthorizationPolicy } from './security/authorization-policy';
import { PeerAuthenticationSchema, type PeerAuthentication } from './security/peer-authentication';
import { RequestAuthenticationSchema, type RequestAuthentication } from './security/request-authentication';

export interface KindInfo {
  /**
   * Aviary's name of the kind: the key of `kinds`, the `kind` of stored objects, refs and change
   * events. Unique across groups (the Gateway API's Gateway is `KubernetesGateway`).
   */
  readonly kind: string;
  /** The `kind` written in manifests and served by Kubernetes (equal to `kind` but for KubernetesGateway). */
  readonly apiKind: string;
  readonly group: string;
  /** Served versions, storage version first (e.g. `['v1', 'v1beta1', 'v1alpha3']`). */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly namespaced: boolean;
  readonly categories: readonly string[];
  /** Whole-resource schema (apiVersion, kind, metadata, spec, status). */
  readonly schema: TSchema;
}

function info(
  kind: string,
  apiVersions: readonly string[],
  plural: string,
  shortNames: string[],
  schema: TSchema,
  categories: string[],
  opts: { apiKind?: string; namespaced?: boolean } = {},
): KindInfo {
  const group = apiVersions[0]!.split('/')[0]!;
  const apiKind = opts.apiKind ?? kind;
  return Object.freeze({
    kind,
    apiKind,
    group,
    versions: Object.freeze(apiVersions.map((v) => v.split('/')[1]!)),
    plural,
    singular: apiKind.toLowerCase(),
    shortNames: Object.freeze(shortNames),
    namespaced: opts.namespaced ?? true,
    categories: Object.freeze(categories),
    schema,
  });
}

const net = ['istio-io', 'networking-istio-io'];
const sec = ['istio-io', 'security-istio-io'];
const gwapi = ['gateway-api'];

/** Every kind Aviary understands, keyed by kind. Order is stable (used for generated output). */
export const kinds = Object.freeze({
  VirtualService: info('VirtualService', networkingVersions, 'virtualservices', ['vs'], VirtualServiceSchema, net),
  DestinationRule: info('DestinationRule', networkingVersions, 'destinationrules', ['dr'], DestinationRuleSchema, net),
  Gateway: info('Gateway', networkingVersions, 'gateways', ['gw'], GatewaySchema, net),
  ServiceEntry: info('ServiceEntry', networkingVersions, 'serviceentries', ['se'], ServiceEntrySchema, net),
  WorkloadEntry: info('WorkloadEntry', networkingVersions, 'workloadentries', ['we'], WorkloadEntrySchema, net),
  Sidecar: info('Sidecar', networkingVersions, 'sidecars', [], SidecarSchema, net),
  PeerAuthentication: info('PeerAuthentication', securityVersions, 'peerauthentications', ['pa'], PeerAuthenticationSchema, sec),
  AuthorizationPolicy: info('AuthorizationPolicy', securityVersions, 'authorizationpolicies', ['ap'], AuthorizationPolicySchema, sec),
  RequestAuthentication: info('RequestAuthentication', securityVersions, 'requestauthentications', ['ra'], RequestAuthenticationSchema, sec),
  RateLimitPolicy: info('RateLimitPolicy', aviaryNetworkingVersions, 'ratelimitpolicies', ['rlp'], RateLimitPolicySchema, ['aviary-dev']),
  Canary: info('Canary', aviaryNetworkingVersions, 'canaries', ['cnry'], CanarySchema, ['aviary-dev']),
  GatewayClass: info('GatewayClass', gatewayApiVersions, 'gatewayclasses', ['gc'], GatewayClassSchema, gwapi, { namespaced: false }),
  KubernetesGateway: info('KubernetesGateway', gatewayApiVersions, 'gateways', ['gtw'], KubernetesGatewaySchema, gwapi, { apiKind: 'Gateway' }),
  HTTPRoute: info('HTTPRoute', gatewayApiVersions, 'httproutes', [], HTTPRouteSchema, gwapi),
  GRPCRoute: info('GRPCRoute', gatewayApiV1Only, 'grpcroutes', [], GRPCRouteSchema, gwapi),
  TCPRoute: info('TCPRoute', tcpRouteVersions, 'tcproutes', [], TCPRouteSchema, gwapi),
  TLSRoute: info('TLSRoute', tlsRouteVersions, 'tlsroutes', [], TLSRouteSchema, gwapi),
  ReferenceGrant: info('ReferenceGrant', referenceGrantVersions, 'referencegrants', ['refgrant'], ReferenceGrantSchema, gwapi),
});

export type MeshKind = keyof typeof kinds;

export type MeshResource =
  | VirtualService
  | DestinationRule
  | Gateway
  | ServiceEntry
  | WorkloadEntry
  | Sidecar
  | PeerAuthentication
  | AuthorizationPolicy
  | RequestAuthentication
  | RateLimitPolicy
  | Canary
  | GatewayClass
  | KubernetesGateway
  | KubernetesHTTPRoute
  | GRPCRoute
  | KubernetesTCPRoute
  | KubernetesTLSRoute
  | ReferenceGrant;

export function isMeshKind(kind: unknown): kind is MeshKind {
  return typeof kind === 'string' && Object.hasOwn(kinds, kind);
}

const allKinds = Object.values(kinds) as KindInfo[];

/** The kinds a manifest's `kind` may name (one per API group), in `kinds` order. */
export function kindsNamed(apiKind: unknown): readonly KindInfo[] {
  return typeof apiKind === 'string' ? allKinds.filter((k) => k.apiKind === apiKind) : [];
}

/**
 * The KindInfo for a manifest's `apiVersion` + `kind` pair (`kind` as written in manifests:
 * `Gateway` is Istio's or the Gateway API's by its group), or undefined when it is not served.
 */
export function kindFor(apiVersion: unknown, kind: unknown): KindInfo | undefined {
  if (typeof apiVersion !== 'string') return undefined;
  const [group, version] = apiVersion.split('/');
  return kindsNamed(kind).find((k) => group === k.group && version !== undefined && k.versions.includes(version));
}

/** The KindInfo of an Aviary kind name (`KubernetesGateway`, `VirtualService`, ...). */
export function kindInfo(kind: string): KindInfo | undefined {
  return isMeshKind(kind) ? kinds[kind] : undefined;
}

/** Namespace Aviary records for cluster-scoped kinds (GatewayClass). */
export const CLUSTER_SCOPE = '';

/** Namespace used when metadata.namespace is absent. */
export const DEFAULT_NAMESPACE = 'default';

/** `Kind/namespace/name`, the identity of a resource across versions. */
export function resourceKey(r: { kind: string; metadata: { name: string; namespace?: string | undefined } }): string {
  return `${r.kind}/${r.metadata.namespace ?? DEFAULT_NAMESPACE}/${r.metadata.name}`;
}
