import type {
  GatewayClassSpec,
  GRPCRouteSpec,
  TCPRouteSpec,
  TLSRouteSpec,
  HTTPRouteSpec,
  KubernetesGatewaySpec,
  ReferenceGrantSpec,
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  GatewaySpec,
  PeerAuthenticationSpec,
  RateLimitPolicySpec,
  RequestAuthenticationSpec,
  ServiceEntrySpec,
  SidecarSpec,
  VirtualServiceSpec,
  WorkloadEntrySpec,
} from '@aviary/mesh-api';
import { convertGatewayApi, type GatewayApiOutput } from './gateway-api/convert';
import { DestinationRuleIndex, GatewayIndex, SidecarIndex, VirtualServiceIndex } from './routing';
import { AuthorizationPolicyIndex, PeerAuthenticationIndex, RateLimitPolicyIndex, RequestAuthenticationIndex } from './security';
import { buildServices, type EndpointIndex, type ServiceBuild, type ServiceIndex } from './services';
import { CREDENTIALS_INPUT, CredentialIndex } from './credentials';
import type { ConfigEntry, JwksResolution, MeshOptions, ModelObject, ModelProblem, ResolvedMeshOptions } from './types';
import { compareStrings, deepFreeze, keyOf } from './util';

/**
 * The immutable mesh snapshot: one value per model generation, made of separate indexes (no
 * god object). Translators read it; nothing writes it.
 */
export interface MeshSnapshot {
  readonly options: ResolvedMeshOptions;
  /** Model generation (0 from `buildSnapshot`; counts up in `SnapshotBuilder`). */
  readonly generation: number;
  readonly services: ServiceIndex;
  readonly endpoints: EndpointIndex;
  readonly virtualServices: VirtualServiceIndex;
  readonly destinationRules: DestinationRuleIndex;
  readonly gateways: GatewayIndex;
  readonly sidecars: SidecarIndex;
  readonly peerAuthentications: PeerAuthenticationIndex;
  readonly authorizationPolicies: AuthorizationPolicyIndex;
  readonly requestAuthentications: RequestAuthenticationIndex;
  readonly rateLimitPolicies: RateLimitPolicyIndex;
  /** Gateway credentials (Kubernetes Secrets) pilot read: served by SDS over ADS to the proxies of their namespace. */
  readonly credentials: CredentialIndex;
  /**
   * The Gateway API front end's output: the Istio Gateways and VirtualServices it generated (also
   * in `gateways` and `virtualServices`) and the status of each Gateway API object.
   */
  readonly gatewayApi: GatewayApiOutput;
  /** What the model left out or adjusted, sorted by resource. */
  readonly problems: readonly ModelProblem[];
}

export const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';
export const DEFAULT_ROOT_NAMESPACE = 'istio-system';

export function resolveOptions(options: MeshOptions): ResolvedMeshOptions {
  return Object.freeze({
    trustDomain: options.trustDomain,
    domainSuffix: options.domainSuffix ?? DEFAULT_DOMAIN_SUFFIX,
    rootNamespace: options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE,
    extensionProviders: Object.freeze([...(options.extensionProviders ?? [])]),
    gatewayApiSelector: Object.freeze({ ...options.gatewayApiSelector }),
  });
}

/** Kinds the model reads. */
export const modelKinds = [
  'ServiceEntry',
  'WorkloadEntry',
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'Sidecar',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RateLimitPolicy',
  'RequestAuthentication',
  'GatewayClass',
  'KubernetesGateway',
  'HTTPRoute',
  'GRPCRoute',
  'TCPRoute',
  'TLSRoute',
  'ReferenceGrant',
] as const;

/** The Gateway API kinds: their objects become Istio Gateways and VirtualServices (gateway-api/convert.ts). */
export const gatewayApiKinds = ['GatewayClass', 'KubernetesGateway', 'HTTPRoute', 'GRPCRoute', 'TCPRoute', 'TLSRoute', 'ReferenceGrant'] as const;
const gatewayApiKindSet: ReadonlySet<string> = new Set(gatewayApiKinds);
export type ModelKind = (typeof modelKinds)[number];

/** Config entries grouped by kind, each list sorted by `Kind/namespace/name`. */
export interface EntriesByKind {
  readonly ServiceEntry: readonly ConfigEntry<ServiceEntrySpec>[];
  readonly WorkloadEntry: readonly ConfigEntry<WorkloadEntrySpec>[];
  readonly VirtualService: readonly ConfigEntry<VirtualServiceSpec>[];
  readonly DestinationRule: readonly ConfigEntry<DestinationRuleSpec>[];
  readonly Gateway: readonly ConfigEntry<GatewaySpec>[];
  readonly Sidecar: readonly ConfigEntry<SidecarSpec>[];
  readonly PeerAuthentication: readonly ConfigEntry<PeerAuthenticationSpec>[];
  readonly AuthorizationPolicy: readonly ConfigEntry<AuthorizationPolicySpec>[];
  readonly RateLimitPolicy: readonly ConfigEntry<RateLimitPolicySpec>[];
  readonly RequestAuthentication: readonly ConfigEntry<RequestAuthenticationSpec>[];
  readonly GatewayClass: readonly ConfigEntry<GatewayClassSpec>[];
  readonly KubernetesGateway: readonly ConfigEntry<KubernetesGatewaySpec>[];
  readonly HTTPRoute: readonly ConfigEntry<HTTPRouteSpec>[];
  readonly GRPCRoute: readonly ConfigEntry<GRPCRouteSpec>[];
  readonly TCPRoute: readonly ConfigEntry<TCPRouteSpec>[];
  readonly TLSRoute: readonly ConfigEntry<TLSRouteSpec>[];
  readonly ReferenceGrant: readonly ConfigEntry<ReferenceGrantSpec>[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Turns one stored object into a frozen entry, or a problem when the model cannot read it. */
export function entryOf(o: ModelObject): { entry: ConfigEntry<unknown> } | { problem: ModelProblem } {
  const namespace = o.metadata.namespace ?? 'default';
  const key = keyOf(o.kind, namespace, o.metadata.name);
  if (!(modelKinds as readonly string[]).includes(o.kind)) {
    return { problem: { code: 'UNSUPPORTED_KIND', resource: key, message: `kind ${o.kind} is not part of the mesh model` } };
  }
  const spec = o.spec ?? {};
  const problem = isObject(spec) ? shapeProblem(o.kind, spec) : 'spec must be an object';
  if (problem) return { problem: { code: 'INVALID_SPEC', resource: key, message: problem } };
  const gwapi = gatewayApiKindSet.has(o.kind);
  const generation = gwapi && o.metadata.generation !== undefined ? { generation: o.metadata.generation } : {};
  const created = gwapi && typeof o.metadata.creationTimestamp === 'string' ? { creationTimestamp: o.metadata.creationTimestamp } : {};
  return { entry: deepFreeze({ kind: o.kind, namespace, name: o.metadata.name, key, spec: structuredClone(spec), ...generation, ...created }) };
}

/** Minimal shape checks: the store validated full schemas; the model must still never throw. */
function shapeProblem(kind: string, spec: Record<string, unknown>): string | undefined {
  if (kind === 'ServiceEntry' && !(Array.isArray(spec.hosts) && spec.hosts.every((h) => typeof h === 'string'))) return 'spec.hosts must be a list of strings';
  if (kind === 'DestinationRule' && typeof spec.host !== 'string') return 'spec.host must be a string';
  if (kind === 'RateLimitPolicy' && !Array.isArray(spec.rules)) return 'spec.rules must be a list';
  return undefined;
}

export function groupObjects(objects: Iterable<ModelObject>): { entries: EntriesByKind; problems: ModelProblem[] } {
  const groups = new Map<string, ConfigEntry<unknown>[]>(modelKinds.map((k) => [k, []]));
  const problems: ModelProblem[] = [];
  for (const o of objects) {
    const result = entryOf(o);
    if ('problem' in result) problems.push(result.problem);
    else groups.get(o.kind)!.push(result.entry);
  }
  for (const list of groups.values()) list.sort((a, b) => compareStrings(a.key, b.key));
  return { entries: Object.fromEntries(groups) as unknown as EntriesByKind, problems };
}

function sortProblems(problems: ModelProblem[]): readonly ModelProblem[] {
  return Object.freeze(problems.sort((a, b) => compareStrings(a.resource, b.resource) || compareStrings(a.code, b.code) || compareStrings(a.message, b.message)).map((p) => Object.freeze(p)));
}

const noGatewayApi: GatewayApiOutput = Object.freeze({ gateways: [], virtualServices: [], statuses: [], deployments: [] });

/** The JWKS pseudo-kind: marked changed when pilot's fetched key sets change. */
export const JWKS_INPUT = 'JWKS';
/** The namespace-labels pseudo-kind: marked changed when the labels of the namespaces change. */
export const NAMESPACES_INPUT = 'Namespaces';
const noNamespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>> = new Map();

const noJwks: ReadonlyMap<string, JwksResolution> = new Map();
const noCredentials = new CredentialIndex();

/** Which indexes to rebuild; the rest are reused from `previous`. */
export interface IndexReuse {
  readonly previous: MeshSnapshot;
  readonly changedKinds: ReadonlySet<string>;
}

/**
 * The previous conversion when the new one is equal, else the new one: a Service or Secret change
 * that touches no route or listener leaves the Gateway API output (and its status) as it was.
 */
function reuseIfEqual(prev: GatewayApiOutput | undefined, next: GatewayApiOutput): GatewayApiOutput {
  return prev !== undefined && JSON.stringify(prev) === JSON.stringify(next) ? prev : next;
}

/** The config entries a snapshot is built from besides the registry (ServiceEntry, WorkloadEntry: see `ServiceBuild`). */
export type ConfigEntriesByKind = Omit<EntriesByKind, 'ServiceEntry' | 'WorkloadEntry'>;

/**
 * Builds a snapshot from grouped entries and the registry built from the ServiceEntries and
 * WorkloadEntries (`buildServices`, or the builder's incremental path), reusing unchanged
 * indexes of a previous snapshot.
 */
export function snapshotFromEntries(
  entries: ConfigEntriesByKind,
  registry: ServiceBuild,
  options: ResolvedMeshOptions,
  generation: number,
  groupingProblems: ModelProblem[],
  reuse?: IndexReuse,
  jwks: ReadonlyMap<string, JwksResolution> = noJwks,
  credentials: CredentialIndex = noCredentials,
  namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>> = noNamespaceLabels,
): MeshSnapshot {
  const changed = (...kinds: string[]) => !reuse || kinds.some((k) => reuse.changedKinds.has(k));
  const prev = reuse?.previous;
  const services = registry.services;
  const hasGatewayApi = gatewayApiKinds.some((k) => entries[k].length > 0);
  const gatewayApi =
    !prev || changed(...gatewayApiKinds) || (hasGatewayApi && changed('ServiceEntry', NAMESPACES_INPUT, CREDENTIALS_INPUT))
      ? hasGatewayApi
        ? reuseIfEqual(changed(...gatewayApiKinds) ? undefined : prev?.gatewayApi, convertGatewayApi({
            classes: entries.GatewayClass,
            gateways: entries.KubernetesGateway,
            httpRoutes: entries.HTTPRoute,
            grpcRoutes: entries.GRPCRoute,
            tcpRoutes: entries.TCPRoute,
            tlsRoutes: entries.TLSRoute,
            grants: entries.ReferenceGrant,
            servicePorts: (host) => services.get(host)?.ports.map((p) => p.number),
            domainSuffix: options.domainSuffix,
            proxySelector: options.gatewayApiSelector,
            namespaceLabels: (ns) => namespaceLabels.get(ns),
            ...(credentials.tracked && { certificateProblem: (ns: string, name: string) => credentials.certificateProblem(ns, name) }),
          }))
        : noGatewayApi
      : prev.gatewayApi;
  const gatewayApiChanged = gatewayApi !== prev?.gatewayApi;
  return Object.freeze({
    options,
    generation,
    services,
    endpoints: registry.endpoints,
    virtualServices:
      changed('VirtualService') || gatewayApiChanged || !prev ? new VirtualServiceIndex([...entries.VirtualService, ...gatewayApi.virtualServices], options.domainSuffix) : prev.virtualServices,
    destinationRules: changed('DestinationRule') || !prev ? new DestinationRuleIndex(entries.DestinationRule, options.domainSuffix, options.rootNamespace) : prev.destinationRules,
    gateways: changed('Gateway') || gatewayApiChanged || !prev ? new GatewayIndex([...entries.Gateway, ...gatewayApi.gateways]) : prev.gateways,
    sidecars: changed('Sidecar') || !prev ? new SidecarIndex(entries.Sidecar, options.rootNamespace) : prev.sidecars,
    peerAuthentications: changed('PeerAuthentication') || !prev ? new PeerAuthenticationIndex(entries.PeerAuthentication, options.rootNamespace) : prev.peerAuthentications,
    authorizationPolicies: changed('AuthorizationPolicy') || !prev ? new AuthorizationPolicyIndex(entries.AuthorizationPolicy, options.rootNamespace) : prev.authorizationPolicies,
    requestAuthentications:
      changed('RequestAuthentication', JWKS_INPUT) || !prev ? new RequestAuthenticationIndex(entries.RequestAuthentication, options.rootNamespace, jwks) : prev.requestAuthentications,
    rateLimitPolicies: changed('RateLimitPolicy') || !prev ? new RateLimitPolicyIndex(entries.RateLimitPolicy) : prev.rateLimitPolicies,
    credentials,
    gatewayApi,
    problems: sortProblems([...groupingProblems, ...registry.problems]),
  });
}

/**
 * Builds a snapshot from stored objects. Pure and deterministic: the order of `objects` does
 * not matter. Objects of unknown kinds or with malformed specs are skipped with a problem.
 */
export function buildSnapshot(objects: Iterable<ModelObject>, options: MeshOptions, jwks?: ReadonlyMap<string, JwksResolution>): MeshSnapshot {
  const { entries, problems } = groupObjects(objects);
  const resolved = resolveOptions(options);
  return snapshotFromEntries(entries, buildServices(entries.ServiceEntry, entries.WorkloadEntry, resolved), resolved, 0, problems, undefined, jwks);
}
