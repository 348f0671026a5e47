import { DEFAULT_NAMESPACE, meshObject, resourceKey, type MeshKind, type MeshObject, type StoredObject } from '@aviary/mesh-api';
import { isKubeKind, type KubeKind, type KubeObject } from './kube';

export type Severity = 'Error' | 'Warning' | 'Info';

/** A cross-resource finding. `code` is Istio's analyzer code where one exists (IST0xxx), else AVI0xxx. */
export interface AnalysisFinding {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  /** `Kind/namespace/name` of each resource involved, the primary one first. */
  readonly resources: string[];
  /** Field path in the primary resource. */
  readonly path?: string;
}

export interface AnalyzeOptions {
  /**
   * Hosts that exist outside the given resources (Kubernetes Services, as FQDNs such as
   * `reviews.bookinfo.svc.cluster.local`). When given (even empty), hosts referenced by
   * DestinationRules and VirtualService destinations must be one of these or a ServiceEntry host.
   * When absent, host existence is not checked.
   */
  readonly knownHosts?: readonly string[];
  /** Istio's root namespace: PeerAuthentication without selector here is mesh-wide. Default `istio-system`. */
  readonly rootNamespace?: string;
  /** DNS suffix for short names. Default `cluster.local`. */
  readonly domainSuffix?: string;
  /**
   * The resources include every Kubernetes Service, Pod and Namespace there is (files analyzed on
   * their own, like Istio's analyzers over files with its runtime kinds). Then a host no Service,
   * ServiceEntry or `knownHosts` entry provides is reported missing, and so are gateway and
   * AuthorizationPolicy selectors no Pod matches and AuthorizationPolicy namespaces no Namespace
   * names. Default false: the stored config holds no workloads, so those checks do not run.
   */
  readonly complete?: boolean;
}

/** Istio's analyzer message codes used here, with their fixed severities. */
export const codes = {
  ReferencedResourceNotFound: { code: 'IST0101', severity: 'Error' },
  SchemaValidationError: { code: 'IST0106', severity: 'Error' },
  MisplacedAnnotation: { code: 'IST0107', severity: 'Warning' },
  UnknownAnnotation: { code: 'IST0108', severity: 'Warning' },
  ConflictingMeshGatewayVirtualServiceHosts: { code: 'IST0109', severity: 'Error' },
  MultipleSidecarsWithoutWorkloadSelectors: { code: 'IST0111', severity: 'Error' },
  MTLSPolicyConflict: { code: 'IST0113', severity: 'Error' },
  PortNameIsNotUnderNamingConvention: { code: 'IST0118', severity: 'Info' },
  NoMatchingWorkloadsFound: { code: 'IST0127', severity: 'Warning' },
  NoServerCertificateVerificationDestinationLevel: { code: 'IST0128', severity: 'Warning' },
  NoServerCertificateVerificationPortLevel: { code: 'IST0129', severity: 'Warning' },
  VirtualServiceUnreachableRule: { code: 'IST0130', severity: 'Warning' },
  VirtualServiceIneffectiveMatch: { code: 'IST0131', severity: 'Info' },
  VirtualServiceHostNotFoundInGateway: { code: 'IST0132', severity: 'Warning' },
  ServiceEntryAddressesRequired: { code: 'IST0134', severity: 'Warning' },
  DeprecatedAnnotation: { code: 'IST0135', severity: 'Info' },
  ConflictingGateways: { code: 'IST0145', severity: 'Error' },
  ExternalNameServiceTypeInvalidPortName: { code: 'IST0150', severity: 'Warning' },
  GatewayPortNotDefinedOnService: { code: 'IST0162', severity: 'Warning' },
  UnknownDestinationRuleHost: { code: 'IST0174', severity: 'Warning' },
  /** Aviary: a subset name defined by more than one DestinationRule (or twice in one) for a host. */
  DuplicateSubset: { code: 'AVI0101', severity: 'Error' },
} as const satisfies Record<string, { code: string; severity: Severity }>;

export type CodeName = keyof typeof codes;

export class Findings {
  readonly list: AnalysisFinding[] = [];
  add(name: CodeName, message: string, resources: string[], path?: string): void {
    const { code, severity } = codes[name];
    this.list.push(path === undefined ? { code, severity, message, resources } : { code, severity, message, resources, path });
  }
}

/** A stored object of kind K, its spec typed. */
export type Of<K extends MeshKind> = Extract<MeshObject, { kind: K }>;

/** Indexes shared by the analyzers; built once per `analyze` call. */
export class Snapshot {
  readonly byKind: Map<string, MeshObject[]> = new Map();
  readonly kubeByKind: Map<string, KubeObject[]> = new Map();
  readonly suffix: string;
  readonly rootNamespace: string;
  readonly knownHosts: readonly string[] | undefined;
  /** See AnalyzeOptions.complete. */
  readonly complete: boolean;

  constructor(resources: readonly StoredObject[], options: AnalyzeOptions) {
    this.suffix = options.domainSuffix ?? 'cluster.local';
    this.rootNamespace = options.rootNamespace ?? 'istio-system';
    this.complete = options.complete === true;
    const sorted = [...resources].sort((a, b) => cmp(resourceKey(a), resourceKey(b)));
    for (const stored of sorted) {
      if (isKubeKind(stored.kind)) {
        // Core kinds come from analyzeManifests (checked by kubeObject) or from a caller's own inventory.
        const list = this.kubeByKind.get(stored.kind) ?? [];
        list.push(stored as KubeObject);
        this.kubeByKind.set(stored.kind, list);
        continue;
      }
      const r = meshObject(stored);
      if (r === undefined) continue; // not a mesh kind: nothing to analyze
      const list = this.byKind.get(r.kind) ?? [];
      list.push(r);
      this.byKind.set(r.kind, list);
    }
    const serviceHosts = this.complete ? this.kube('Service').map((svc) => `${svc.metadata.name}.${ns(svc)}.svc.${this.suffix}`) : [];
    this.knownHosts = options.knownHosts === undefined && !this.complete ? undefined : [...(options.knownHosts ?? []), ...serviceHosts];
  }

  of<K extends MeshKind>(kind: K): Of<K>[] {
    return (this.byKind.get(kind) ?? []).filter((r): r is Of<K> => r.kind === kind);
  }

  kube<K extends KubeKind>(kind: K): Extract<KubeObject, { kind: K }>[] {
    return (this.kubeByKind.get(kind) ?? []).filter((r): r is Extract<KubeObject, { kind: K }> => r.kind === kind);
  }

  /** Istio ResolveShortnameToFQDN: a name without dots is `<name>.<namespace>.svc.<suffix>`. */
  fqdn(host: string, namespace: string): string {
    return host.includes('.') || host === '*' || host.startsWith('*') ? host : `${host}.${namespace}.svc.${this.suffix}`;
  }

  /** Host existence is only known when knownHosts was given. */
  hostExists(host: string): boolean | undefined {
    if (this.knownHosts === undefined) return undefined;
    const candidates = [...this.knownHosts, ...this.of('ServiceEntry').flatMap((se) => se.spec.hosts.map((h) => this.fqdn(h, ns(se))))];
    return candidates.some((c) => hostsOverlap(c, host));
  }
}

/** The namespace of a resource; objects from the stores always have one, documents read from YAML may not. */
export function ns(r: Pick<StoredObject, 'metadata'>): string {
  return (r.metadata.namespace as string | undefined) ?? DEFAULT_NAMESPACE;
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** True when two host patterns (`*`, `*.x.com`, `a.x.com`) can match a common name. */
export function hostsOverlap(a: string, b: string): boolean {
  if (a === b || a === '*' || b === '*') return true;
  const wa = a.startsWith('*');
  const wb = b.startsWith('*');
  if (wa && wb) return a.slice(1).endsWith(b.slice(1)) || b.slice(1).endsWith(a.slice(1));
  if (wa) return b.endsWith(a.slice(1));
  if (wb) return a.endsWith(b.slice(1));
  return false;
}

/** Kubernetes equality-based selector match (klabels.SelectorFromSet): every pair present; an empty selector matches all. */
export function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/** A selector as Kubernetes prints it: `k1=v1,k2=v2`, keys sorted. */
export function selectorString(selector: Readonly<Record<string, string>>): string {
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(',');
}

/** Stable JSON for comparing values (sorted keys). */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
