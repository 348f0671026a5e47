import type {
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  GatewaySpec,
  ExtensionProvider,
  PeerAuthenticationSpec,
  RateLimitPolicySpec,
  RequestAuthenticationSpec,
  ResourceRef,
  SidecarSpec,
  StoredObject,
  VirtualServiceSpec,
} from '@aviary/mesh-api';

/**
 * Inputs and values of the mesh model. The model is a pure function of stored objects: no
 * clock, no I/O. Everything it hands out is frozen.
 */

/** The model reads @aviary/mesh-api's stored-object envelope, as every config store hands it out. */
export type ModelObject = StoredObject;

/** A config store's change (structurally @aviary/config-store's `ChangeEvent`, a transport lib this domain lib may not import). */
export interface ModelChangeEvent {
  readonly op: 'created' | 'updated' | 'deleted';
  readonly ref: ResourceRef;
  readonly revision?: number;
  readonly object?: StoredObject;
}

export interface MeshOptions {
  /** SPIFFE trust domain (`cluster.local`). */
  readonly trustDomain: string;
  /** DNS suffix of short service names (`cluster.local`): `reviews` in `default` → `reviews.default.svc.cluster.local`. */
  readonly domainSuffix?: string;
  /** Namespace whose policies apply mesh-wide (Istio's root namespace). */
  readonly rootNamespace?: string;
  /** MeshConfig `extensionProviders` (validated by the caller): AuthorizationPolicy CUSTOM providers. */
  readonly extensionProviders?: readonly ExtensionProvider[];
  /**
   * Labels of the router proxies that serve every Gateway API Gateway of Aviary's classes (local
   * mode: the launcher's ingress). Absent or empty: each Gateway is served by the proxies labelled
   * `gateway.networking.k8s.io/gateway-name: <its name>`.
   */
  readonly gatewayApiSelector?: Readonly<Record<string, string>>;
}

export interface ResolvedMeshOptions {
  readonly trustDomain: string;
  readonly domainSuffix: string;
  readonly rootNamespace: string;
  readonly extensionProviders: readonly ExtensionProvider[];
  readonly gatewayApiSelector: Readonly<Record<string, string>>;
}

/**
 * A JSON Web Key Set that pilot fetched for a RequestAuthentication `jwksUri` (an I/O source
 * outside the model feeds these in): the JWKS text, or why it could not be had. A missing or
 * failed entry makes the translator fail closed for that issuer.
 */
export type JwksResolution = { readonly jwks: string } | { readonly error: string };

/** Closed set of reasons the model dropped or adjusted part of the input. */
export const problemCodes = [
  'ENDPOINT_ADDRESS_NOT_IP',
  'DUPLICATE_SERVICE_HOST',
  'INVALID_SPEC',
  'UNSUPPORTED_KIND',
] as const;
export type ProblemCode = (typeof problemCodes)[number];

export interface ModelProblem {
  readonly code: ProblemCode;
  /** `Kind/namespace/name` of the resource at fault. */
  readonly resource: string;
  readonly message: string;
}

/** A config resource as the model keeps it: identity plus its (frozen) spec. */
export interface ConfigEntry<S> {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** `Kind/namespace/name`. */
  readonly key: string;
  readonly spec: S;
  /** metadata.generation, kept for the kinds whose status reports it (the Gateway API's). */
  readonly generation?: number;
  /** metadata.creationTimestamp (ISO 8601), kept for the kinds whose ordering uses it (Gateway API routes). */
  readonly creationTimestamp?: string;
}

export type VirtualServiceEntry = ConfigEntry<VirtualServiceSpec>;
export type DestinationRuleEntry = ConfigEntry<DestinationRuleSpec>;
export type GatewayEntry = ConfigEntry<GatewaySpec>;
export type SidecarEntry = ConfigEntry<SidecarSpec>;
export type PeerAuthenticationEntry = ConfigEntry<PeerAuthenticationSpec>;
export type AuthorizationPolicyEntry = ConfigEntry<AuthorizationPolicySpec>;
export type RateLimitPolicyEntry = ConfigEntry<RateLimitPolicySpec>;
export type RequestAuthenticationEntry = ConfigEntry<RequestAuthenticationSpec>;

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
export type Location = 'MESH_INTERNAL' | 'MESH_EXTERNAL';

export interface ServicePortInfo {
  readonly number: number;
  readonly name: string;
  /** Upper-case protocol (`HTTP`, `HTTP2`, `GRPC`, `TCP`, `TLS`, …); default `TCP` as Istio. */
  readonly protocol: string;
  readonly targetPort?: number;
}

export interface Service {
  /** FQDN (`reviews.default.svc.cluster.local`). */
  readonly hostname: string;
  readonly namespace: string;
  readonly ports: readonly ServicePortInfo[];
  readonly resolution: Resolution;
  readonly location: Location;
  readonly addresses: readonly string[];
  /** `*` (everyone, the default), `.` (own namespace) or namespace names. */
  readonly exportTo: readonly string[];
  readonly subjectAltNames: readonly string[];
  readonly workloadSelector?: Readonly<Record<string, string>>;
  /** `ServiceEntry/ns/name` that declared it. */
  readonly source: string;
}

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

export interface Endpoint {
  /** IP literal; a hostname only for a service with DNS / DNS_ROUND_ROBIN resolution (other hostnames are excluded with a problem). */
  readonly address: string;
  /** The port the workload listens on for this service port. */
  readonly port: number;
  readonly servicePort: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly locality: Locality;
  readonly weight: number;
  readonly namespace: string;
  readonly serviceAccount?: string;
  /** `spiffe://<trustDomain>/ns/<ns>/sa/<sa>` when a service account is known. */
  readonly identity?: string;
  /** `istio` when the workload runs an mTLS-capable proxy (label `security.istio.io/tlsMode: istio`). */
  readonly tlsMode: 'istio' | 'disabled';
  readonly network?: string;
  /** `WorkloadEntry/ns/name` or `ServiceEntry/ns/name#<index>`. */
  readonly source: string;
}
