import { DEFAULT_NAMESPACE, meshObject, resourceKey, type MeshKind, type MeshObject, type StoredObject } from '@aviary/mesh-api';

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
}

/** Istio's analyzer message codes used here, with their fixed severities. */
export const codes = {
  ReferencedResourceNotFound: { code: 'IST0101', severity: 'Error' },
  ConflictingMeshGatewayVirtualServiceHosts: { code: 'IST0109', severity: 'Error' },
  MultipleSidecarsWithoutWorkloadSelectors: { code: 'IST0111', severity: 'Error' },
  MTLSPolicyConflict: { code: 'IST0113', severity: 'Error' },
  NoServerCertificateVerificationDestinationLevel: { code: 'IST0128', severity: 'Warning' },
  NoServerCertificateVerificationPortLevel: { code: 'IST0129', severity: 'Warning' },
  VirtualServiceUnreachableRule: { code: 'IST0130', severity: 'Warning' },
  VirtualServiceIneffectiveMatch: { code: 'IST0131', severity: 'Info' },
  VirtualServiceHostNotFoundInGateway: { code: 'IST0132', severity: 'Warning' },
  ConflictingGateways: { code: 'IST0145', severity: 'Error' },
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
  readonly suffix: string;
  readonly rootNamespace: string;
  readonly knownHosts: readonly string[] | undefined;

  constructor(resources: readonly StoredObject[], options: AnalyzeOptions) {
    this.suffix = options.domainSuffix ?? 'cluster.local';
    this.rootNamespace = options.rootNamespace ?? 'istio-system';
    this.knownHosts = options.knownHosts;
    const sorted = [...resources].sort((a, b) => cmp(resourceKey(a), resourceKey(b)));
    for (const stored of sorted) {
      const r = meshObject(stored);
      if (r === undefined) continue; // not a mesh kind: nothing to analyze
      const list = this.byKind.get(r.kind) ?? [];
      list.push(r);
      this.byKind.set(r.kind, list);
    }
  }

  of<K extends MeshKind>(kind: K): Of<K>[] {
    return (this.byKind.get(kind) ?? []).filter((r): r is Of<K> => r.kind === kind);
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
