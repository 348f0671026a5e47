import type { ClientTLSSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, TrafficPolicy } from '@aviary/mesh-api';
import { compareStrings, hostMatches, isExportedTo, type DestinationRuleEntry, type MeshSnapshot, type ProxyInfo, type Service, type ServicePortInfo } from '@aviary/mesh-model';

/** Istio cluster naming: `outbound|9080|v1|reviews.default.svc.cluster.local`, `inbound|9080||`. */
export function clusterName(direction: 'outbound' | 'inbound', port: number, subset: string, host: string): string {
  return `${direction}|${port}|${subset}|${host}`;
}

/**
 * Which ClusterLoadAssignments may change when the endpoints of `hosts` change: the outbound
 * clusters of those services (every port and subset; a CLA is named as its cluster). For
 * `XdsChange.names` (see `changeFor`), so the server skips proxies that watch none of them.
 */
export function endpointNamesOf(hosts: Iterable<string>): (name: string) => boolean {
  const set = new Set(hosts);
  return (name) => name.startsWith('outbound|') && set.has(name.slice(name.lastIndexOf('|') + 1));
}

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';

const httpProtocols = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

export function isHttpPort(port: ServicePortInfo): boolean {
  return httpProtocols.has(port.protocol);
}

export function isHttp2Port(port: ServicePortInfo): boolean {
  return port.protocol === 'HTTP2' || port.protocol === 'GRPC' || port.protocol === 'GRPC-WEB';
}

/** Knobs that are deployment facts rather than mesh config. */
export interface TranslateOptions {
  /**
   * Bootstrap cluster through which sidecars and routers fetch SDS secrets `default` (the
   * workload certificate) and `ROOTCA` (the trust bundle); Istio's `sds-grpc`.
   */
  readonly sdsClusterName?: string;
  /** Certificate provider instance proxyless clients name in their bootstrap; Istio's `default`. */
  readonly certificateProviderInstance?: string;
}

export interface ResolvedTranslateOptions {
  readonly sdsClusterName: string;
  readonly certificateProviderInstance: string;
}

export function resolveTranslateOptions(o: TranslateOptions = {}): ResolvedTranslateOptions {
  return { sdsClusterName: o.sdsClusterName ?? 'sds-grpc', certificateProviderInstance: o.certificateProviderInstance ?? 'default' };
}

/** Everything a generator reads for one proxy. `problems` collects what was left out and why. */
export class Ctx {
  readonly problems: string[] = [];
  private visibleCache: readonly Service[] | undefined;

  constructor(
    readonly proxy: ProxyInfo,
    readonly snapshot: MeshSnapshot,
    readonly options: ResolvedTranslateOptions,
  ) {}

  get trustDomain(): string {
    return this.snapshot.options.trustDomain;
  }

  problem(message: string): void {
    this.problems.push(message);
  }

  /**
   * Services this proxy may reach: exported to its namespace (`exportTo` `*`, `.` or names),
   * narrowed by the egress hosts of the Sidecar resource that applies to it
   * (`<ns>/<dnsName>` with `*`, `.` and `~` namespaces and `*`/`*.suffix` names).
   */
  visibleServices(): readonly Service[] {
    if (this.visibleCache) return this.visibleCache;
    const ns = this.proxy.namespace;
    let services = this.snapshot.services.all().filter((s) => isExportedTo(s.exportTo, s.namespace, ns));
    const sidecar = this.snapshot.sidecars.forWorkload(ns, this.proxy.labels);
    const egress = sidecar?.spec.egress;
    if (egress && egress.length > 0) {
      const patterns = egress.flatMap((e) => e.hosts).map((h) => {
        const slash = h.indexOf('/');
        return slash < 0 ? { ns: '*', host: h } : { ns: h.slice(0, slash), host: h.slice(slash + 1) };
      });
      services = services.filter((s) =>
        patterns.some((p) => p.ns !== '~' && (p.ns === '*' || (p.ns === '.' ? s.namespace === ns : p.ns === s.namespace)) && hostMatches(p.host, s.hostname)),
      );
    }
    this.visibleCache = Object.freeze([...services].sort((a, b) => compareStrings(a.hostname, b.hostname)));
    return this.visibleCache;
  }

  isVisible(host: string): boolean {
    return this.visibleServices().some((s) => s.hostname === host);
  }

  destinationRule(service: Service): DestinationRuleEntry | undefined {
    return this.snapshot.destinationRules.forHost(service.hostname, this.proxy.namespace, service.namespace, this.proxy.labels);
  }

  /** Outbound mode for sidecars: ALLOW_ANY (default) routes unknown hosts to PassthroughCluster. */
  outboundAllowAny(): boolean {
    const sidecar = this.snapshot.sidecars.forWorkload(this.proxy.namespace, this.proxy.labels);
    return sidecar?.spec.outboundTrafficPolicy?.mode !== 'REGISTRY_ONLY';
  }
}

/** A DestinationRule's traffic policy resolved for one port and subset. */
export interface EffectivePolicy {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTLSSettings;
}

function mergeLevel(base: EffectivePolicy, policy: TrafficPolicy | undefined, port: number): EffectivePolicy {
  if (!policy) return base;
  let out: EffectivePolicy = {
    ...base,
    ...(policy.loadBalancer && { loadBalancer: policy.loadBalancer }),
    ...(policy.connectionPool && { connectionPool: policy.connectionPool }),
    ...(policy.outlierDetection && { outlierDetection: policy.outlierDetection }),
    ...(policy.tls && { tls: policy.tls }),
  };
  const pl = policy.portLevelSettings?.find((p) => p.port?.number === port);
  if (pl) {
    out = {
      ...out,
      ...(pl.loadBalancer && { loadBalancer: pl.loadBalancer }),
      ...(pl.connectionPool && { connectionPool: pl.connectionPool }),
      ...(pl.outlierDetection && { outlierDetection: pl.outlierDetection }),
      ...(pl.tls && { tls: pl.tls }),
    };
  }
  return out;
}

/** Istio's MergeTrafficPolicy: top level, its port-level settings, then the subset's (and its port-level). */
export function effectivePolicy(dr: DestinationRuleEntry | undefined, port: number, subset?: string): EffectivePolicy {
  if (!dr) return {};
  const top = mergeLevel({}, dr.spec.trafficPolicy, port);
  if (!subset) return top;
  const s = dr.spec.subsets?.find((x) => x.name === subset);
  return mergeLevel(top, s?.trafficPolicy, port);
}
