import { parseDuration } from '@aviary/mesh-api';
import { appliesToTargets, appliesToWorkload, type PolicyTarget } from './policy-targets';
import type { AuthorizationPolicyEntry, JwksResolution, PeerAuthenticationEntry, RateLimitPolicyEntry, RequestAuthenticationEntry } from './types';
import { compareStrings, labelsMatch } from './util';

export type MtlsMode = 'DISABLE' | 'PERMISSIVE' | 'STRICT';

function byKey<T extends { key: string }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => compareStrings(a.key, b.key));
}

function hasSelector(s: { matchLabels?: Readonly<Record<string, string>> } | undefined): boolean {
  return s?.matchLabels !== undefined && Object.keys(s.matchLabels).length > 0;
}

/**
 * PeerAuthentication resolution as Istio: a workload-selecting policy in the workload's
 * namespace, then the namespace-wide one, then the mesh-wide one (root namespace, no
 * selector); `UNSET` inherits from the next level; the default is PERMISSIVE. Port-level
 * settings apply only on a selecting policy.
 */
export class PeerAuthenticationIndex {
  private readonly sorted: readonly PeerAuthenticationEntry[];

  constructor(
    entries: readonly PeerAuthenticationEntry[],
    private readonly rootNamespace: string,
  ) {
    this.sorted = Object.freeze(byKey(entries));
  }

  all(): readonly PeerAuthenticationEntry[] {
    return this.sorted;
  }

  meshWide(): PeerAuthenticationEntry | undefined {
    return this.sorted.find((p) => p.namespace === this.rootNamespace && !hasSelector(p.spec.selector));
  }

  namespaceWide(namespace: string): PeerAuthenticationEntry | undefined {
    return this.sorted.find((p) => p.namespace === namespace && !hasSelector(p.spec.selector));
  }

  workload(namespace: string, labels: Readonly<Record<string, string>>): PeerAuthenticationEntry | undefined {
    return this.sorted.find((p) => p.namespace === namespace && hasSelector(p.spec.selector) && labelsMatch(p.spec.selector!.matchLabels, labels));
  }

  /** Effective mode for traffic a workload receives on `port` (its own listening port). */
  modeFor(namespace: string, labels: Readonly<Record<string, string>>, port?: number): MtlsMode {
    const chain = [this.workload(namespace, labels), this.namespaceWide(namespace), this.meshWide()];
    const selecting = chain[0];
    if (selecting && port !== undefined) {
      const portMode = selecting.spec.portLevelMtls?.[String(port)]?.mode;
      if (portMode && portMode !== 'UNSET') return portMode;
    }
    for (const pa of chain) {
      const mode = pa?.spec.mtls?.mode;
      if (mode && mode !== 'UNSET') return mode;
    }
    return 'PERMISSIVE';
  }
}

export interface ApplicablePolicies {
  readonly allow: readonly AuthorizationPolicyEntry[];
  readonly deny: readonly AuthorizationPolicyEntry[];
  readonly audit: readonly AuthorizationPolicyEntry[];
  readonly custom: readonly AuthorizationPolicyEntry[];
}

/**
 * AuthorizationPolicies that apply to a workload: root-namespace ones mesh-wide, then its
 * namespace's (by selector), plus those whose targetRefs name one of `targets` (its Gateways,
 * or the Service/ServiceEntry whose traffic is being authorized). A policy with targetRefs
 * applies to nothing else.
 */
export class AuthorizationPolicyIndex {
  private readonly sorted: readonly AuthorizationPolicyEntry[];

  constructor(
    entries: readonly AuthorizationPolicyEntry[],
    private readonly rootNamespace: string,
  ) {
    this.sorted = Object.freeze(byKey(entries));
  }

  all(): readonly AuthorizationPolicyEntry[] {
    return this.sorted;
  }

  forWorkload(namespace: string, labels: Readonly<Record<string, string>>, targets: readonly PolicyTarget[] = []): ApplicablePolicies {
    const out = { allow: [] as AuthorizationPolicyEntry[], deny: [] as AuthorizationPolicyEntry[], audit: [] as AuthorizationPolicyEntry[], custom: [] as AuthorizationPolicyEntry[] };
    for (const p of this.sorted) {
      if (!appliesToWorkload(p, this.rootNamespace, namespace, labels) && !appliesToTargets(p, targets)) continue;
      const action = p.spec.action ?? 'ALLOW';
      if (action === 'ALLOW') out.allow.push(p);
      else if (action === 'DENY') out.deny.push(p);
      else if (action === 'AUDIT') out.audit.push(p);
      else out.custom.push(p);
    }
    return out;
  }
}

/** Suffix of an OpenID Connect discovery document URL. */
export const OIDC_DISCOVERY_SUFFIX = '/.well-known/openid-configuration';

/**
 * Where a JWT rule's keys come from when they are not inline: its `jwksUri`, else (as Istio)
 * the issuer's OpenID Connect discovery document `<issuer>/.well-known/openid-configuration`,
 * whose `jwks_uri` pilot follows. Undefined for inline `jwks`.
 */
export function jwksSourceOf(rule: { readonly issuer: string; readonly jwks?: string; readonly jwksUri?: string }): string | undefined {
  if (rule.jwks !== undefined) return undefined;
  return rule.jwksUri ?? `${rule.issuer.replace(/\/+$/, '')}${OIDC_DISCOVERY_SUFFIX}`;
}

/**
 * RequestAuthentications that apply to a workload (same scoping as AuthorizationPolicy; Istio
 * merges the JWT rules of all of them), and the key sets pilot fetched for their `jwksUri`s.
 */
export class RequestAuthenticationIndex {
  private readonly sorted: readonly RequestAuthenticationEntry[];

  constructor(
    entries: readonly RequestAuthenticationEntry[],
    private readonly rootNamespace: string,
    private readonly jwks: ReadonlyMap<string, JwksResolution>,
  ) {
    this.sorted = Object.freeze(byKey(entries));
  }

  all(): readonly RequestAuthenticationEntry[] {
    return this.sorted;
  }

  forWorkload(namespace: string, labels: Readonly<Record<string, string>>, targets: readonly PolicyTarget[] = []): readonly RequestAuthenticationEntry[] {
    return this.sorted.filter((p) => appliesToWorkload(p, this.rootNamespace, namespace, labels) || appliesToTargets(p, targets));
  }

  /**
   * Every key source pilot must fetch (see `jwksSourceOf`), with the shortest `timeout` (ms)
   * a rule asks for it.
   */
  jwksUris(): ReadonlyMap<string, number | undefined> {
    const out = new Map<string, number | undefined>();
    for (const p of this.sorted) {
      for (const rule of p.spec.jwtRules ?? []) {
        const uri = jwksSourceOf(rule);
        if (uri === undefined) continue;
        const t = rule.timeout === undefined ? undefined : parseDuration(rule.timeout);
        const prev = out.get(uri);
        out.set(uri, prev === undefined ? t : t === undefined ? prev : Math.min(prev, t));
      }
    }
    return out;
  }

  /** What pilot fetched for `uri`; undefined when not fetched (yet). */
  resolved(uri: string): JwksResolution | undefined {
    return this.jwks.get(uri);
  }

  /** The resolution map this index was built with (reused when only the policies change). */
  resolutions(): ReadonlyMap<string, JwksResolution> {
    return this.jwks;
  }
}

/** RateLimitPolicies (Aviary) by workload selector and by target reference. */
export class RateLimitPolicyIndex {
  private readonly sorted: readonly RateLimitPolicyEntry[];

  constructor(entries: readonly RateLimitPolicyEntry[]) {
    this.sorted = Object.freeze(byKey(entries));
  }

  all(): readonly RateLimitPolicyEntry[] {
    return this.sorted;
  }

  /** Policies whose workloadSelector matches a workload in `namespace`. */
  forWorkload(namespace: string, labels: Readonly<Record<string, string>>): readonly RateLimitPolicyEntry[] {
    return this.sorted.filter((p) => p.namespace === namespace && p.spec.workloadSelector?.labels !== undefined && labelsMatch(p.spec.workloadSelector.labels, labels));
  }

  /** Policies targeting `kind` `namespace/name` (a ServiceEntry, Service or Gateway). */
  forTarget(kind: string, namespace: string, name: string): readonly RateLimitPolicyEntry[] {
    return this.sorted.filter((p) => (p.spec.targetRefs ?? []).some((t) => t.kind === kind && t.name === name && (t.namespace ?? p.namespace) === namespace));
  }
}
