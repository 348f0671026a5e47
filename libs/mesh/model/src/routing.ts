import { isDelegate, mergeDelegates } from './delegate';
import type { DestinationRuleEntry, GatewayEntry, SidecarEntry, VirtualServiceEntry } from './types';
import { compareStrings, hostMatches, isExportedTo, labelsMatch, resolveHost } from './util';

/** Gateway name meaning "the sidecars of the mesh" in VirtualService.gateways. */
export const MESH_GATEWAY = 'mesh';

function byKey<T extends { key: string }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => compareStrings(a.key, b.key));
}

export interface BoundVirtualService {
  readonly entry: VirtualServiceEntry;
  /** Hosts expanded to FQDNs relative to the VirtualService's namespace. */
  readonly hosts: readonly string[];
}

/**
 * VirtualServices by host (those bound to the mesh) and by gateway (`ns/name`). Hosts are
 * expanded (`reviews` → `reviews.<ns>.svc.<suffix>`); gateway references without a namespace
 * are relative to the VirtualService's namespace; no `gateways` means `mesh`. Delegates (no
 * hosts) are merged into the roots that name them (delegate.ts), so every translator reads a
 * root's merged routes; a delegate routes nothing by itself.
 */
export class VirtualServiceIndex {
  private readonly meshByHost = new Map<string, BoundVirtualService[]>();
  private readonly meshWildcards: BoundVirtualService[] = [];
  private readonly byGateway = new Map<string, BoundVirtualService[]>();
  private readonly sorted: readonly VirtualServiceEntry[];

  constructor(entries: readonly VirtualServiceEntry[], domainSuffix: string) {
    const delegates = new Map(entries.filter(isDelegate).map((e) => [`${e.namespace}/${e.name}`, e]));
    this.sorted = Object.freeze(byKey(entries).map((e) => (isDelegate(e) ? e : mergeDelegates(e, delegates, domainSuffix))));
    for (const entry of this.sorted) {
      if (isDelegate(entry)) continue;
      const hosts = Object.freeze((entry.spec.hosts ?? []).map((h) => resolveHost(h, entry.namespace, domainSuffix)));
      const bound: BoundVirtualService = Object.freeze({ entry, hosts });
      const gateways = entry.spec.gateways && entry.spec.gateways.length > 0 ? entry.spec.gateways : [MESH_GATEWAY];
      for (const gw of gateways) {
        if (gw === MESH_GATEWAY) {
          for (const h of hosts) {
            if (h.startsWith('*')) this.meshWildcards.push(bound);
            else push(this.meshByHost, h, bound);
          }
        } else {
          push(this.byGateway, gw.includes('/') ? gw : `${entry.namespace}/${gw}`, bound);
        }
      }
    }
  }

  /** Every VirtualService, roots with their delegates merged, delegates as written. */
  all(): readonly VirtualServiceEntry[] {
    return this.sorted;
  }

  /**
   * The mesh-bound VirtualService that routes `host` for a proxy in `namespace`: exact host
   * before wildcard, then a VirtualService in the proxy's namespace, then by namespace/name.
   */
  forHost(host: string, namespace: string): BoundVirtualService | undefined {
    const visible = (b: BoundVirtualService) => isExportedTo(b.entry.spec.exportTo, b.entry.namespace, namespace);
    const exact = (this.meshByHost.get(host) ?? []).filter(visible);
    const pick = (list: BoundVirtualService[]) => list.find((b) => b.entry.namespace === namespace) ?? list[0];
    if (exact.length > 0) return pick(exact);
    const wild = this.meshWildcards.filter((b) => visible(b) && b.hosts.some((p) => hostMatches(p, host)));
    return pick(wild);
  }

  /** VirtualServices bound to a gateway (`ns/name`), sorted by namespace/name. */
  forGateway(gateway: string): readonly BoundVirtualService[] {
    return this.byGateway.get(gateway) ?? [];
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * DestinationRules by host. For a proxy in namespace N and a service in namespace S, Istio's
 * precedence: a rule in N, then in S, then in the root namespace; an exact host beats a wildcard.
 */
export class DestinationRuleIndex {
  private readonly byNamespace = new Map<string, { entry: DestinationRuleEntry; host: string }[]>();
  private readonly sorted: readonly DestinationRuleEntry[];

  constructor(
    entries: readonly DestinationRuleEntry[],
    domainSuffix: string,
    private readonly rootNamespace: string,
  ) {
    this.sorted = Object.freeze(byKey(entries));
    for (const entry of this.sorted) {
      push(this.byNamespace, entry.namespace, { entry, host: resolveHost(entry.spec.host, entry.namespace, domainSuffix) });
    }
  }

  all(): readonly DestinationRuleEntry[] {
    return this.sorted;
  }

  forHost(host: string, proxyNamespace: string, serviceNamespace: string, proxyLabels: Readonly<Record<string, string>> = {}): DestinationRuleEntry | undefined {
    for (const ns of [proxyNamespace, serviceNamespace, this.rootNamespace]) {
      const candidates = (this.byNamespace.get(ns) ?? []).filter(
        (c) =>
          hostMatches(c.host, host) &&
          isExportedTo(c.entry.spec.exportTo, c.entry.namespace, proxyNamespace) &&
          (!c.entry.spec.workloadSelector || (ns === proxyNamespace && labelsMatch(c.entry.spec.workloadSelector.matchLabels, proxyLabels))),
      );
      if (candidates.length === 0) continue;
      const exact = candidates.filter((c) => c.host === host);
      const pool = exact.length > 0 ? exact : candidates.sort((a, b) => b.host.length - a.host.length || compareStrings(a.entry.key, b.entry.key));
      // A rule with a matching workloadSelector beats one without (Istio).
      return (pool.find((c) => c.entry.spec.workloadSelector) ?? pool[0])!.entry;
    }
    return undefined;
  }
}

export class GatewayIndex {
  private readonly sorted: readonly GatewayEntry[];
  private readonly byName: ReadonlyMap<string, GatewayEntry>;

  constructor(entries: readonly GatewayEntry[]) {
    this.sorted = Object.freeze(byKey(entries));
    this.byName = new Map(this.sorted.map((g) => [`${g.namespace}/${g.name}`, g]));
  }

  all(): readonly GatewayEntry[] {
    return this.sorted;
  }

  get(namespaceName: string): GatewayEntry | undefined {
    return this.byName.get(namespaceName);
  }

  /** Gateways whose selector matches a router's labels (any namespace, as Istio by default). */
  forProxy(labels: Readonly<Record<string, string>>): readonly GatewayEntry[] {
    return this.sorted.filter((g) => g.spec.selector !== undefined && Object.keys(g.spec.selector).length > 0 && labelsMatch(g.spec.selector, labels));
  }
}

/** Sidecar resources: a selecting one in the workload's namespace, else the namespace default, else the root default. */
export class SidecarIndex {
  private readonly sorted: readonly SidecarEntry[];

  constructor(
    entries: readonly SidecarEntry[],
    private readonly rootNamespace: string,
  ) {
    this.sorted = Object.freeze(byKey(entries));
  }

  all(): readonly SidecarEntry[] {
    return this.sorted;
  }

  forWorkload(namespace: string, labels: Readonly<Record<string, string>>): SidecarEntry | undefined {
    const inNs = this.sorted.filter((s) => s.namespace === namespace);
    return (
      inNs.find((s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, labels)) ??
      inNs.find((s) => !s.spec.workloadSelector) ??
      this.sorted.find((s) => s.namespace === this.rootNamespace && !s.spec.workloadSelector)
    );
  }
}
