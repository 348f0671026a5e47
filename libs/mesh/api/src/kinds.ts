import { type TSchema } from 'typebox';
import { CanarySchema, type Canary } from './aviary/canary';
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
  readonly kind: string;
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

function info(kind: string, apiVersions: readonly string[], plural: string, shortNames: string[], schema: TSchema, categories: string[]): KindInfo {
  const group = apiVersions[0]!.split('/')[0]!;
  return Object.freeze({
    kind,
    group,
    versions: Object.freeze(apiVersions.map((v) => v.split('/')[1]!)),
    plural,
    singular: kind.toLowerCase(),
    shortNames: Object.freeze(shortNames),
    namespaced: true,
    categories: Object.freeze(categories),
    schema,
  });
}

const net = ['istio-io', 'networking-istio-io'];
const sec = ['istio-io', 'security-istio-io'];

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
  | Canary;

export function isMeshKind(kind: unknown): kind is MeshKind {
  return typeof kind === 'string' && Object.hasOwn(kinds, kind);
}

/** The KindInfo for an `apiVersion` + `kind` pair, or undefined when the pair is not served. */
export function kindFor(apiVersion: unknown, kind: unknown): KindInfo | undefined {
  if (!isMeshKind(kind) || typeof apiVersion !== 'string') return undefined;
  const k = kinds[kind];
  const [group, version] = apiVersion.split('/');
  return group === k.group && version !== undefined && k.versions.includes(version) ? k : undefined;
}

/** Namespace used when metadata.namespace is absent. */
export const DEFAULT_NAMESPACE = 'default';

/** `Kind/namespace/name`, the identity of a resource across versions. */
export function resourceKey(r: { kind: string; metadata: { name: string; namespace?: string | undefined } }): string {
  return `${r.kind}/${r.metadata.namespace ?? DEFAULT_NAMESPACE}/${r.metadata.name}`;
}
