import type { ClientTLSSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, TrafficPolicy } from '@aviary/mesh-api';
import { compareStrings, hostMatches, isExportedTo, isIpLiteral, type DestinationRuleEntry, type MeshSnapshot, type ProxyInfo, type Service, type ServicePortInfo, type SidecarEntry } from '@aviary/mesh-model';

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

export function isHttpPort(port: Pick<ServicePortInfo, 'protocol'>): boolean {
  return httpProtocols.has(port.protocol);
}

export function isHttp2Port(port: Pick<ServicePortInfo, 'protocol'>): boolean {
  return port.protocol === 'HTTP2' || port.protocol === 'GRPC' || port.protocol === 'GRPC-WEB';
}

/** Istio's node metadata INTERCEPTION_MODE (REDIRECT, TPROXY or NONE); only NONE changes the output. */
export function interceptionNone(metadata: Readonly<Record<string, unknown>>): boolean {
  return metadata['INTERCEPTION_MODE'] === 'NONE';
}

/** INSTANCE_IPS (Istio: comma-separated; a list is taken too), first entry. */
export function firstInstanceIp(metadata: Readonly<Record<string, unknown>>): string | undefined {
  const raw = metadata['INSTANCE_IPS'];
  const first = Array.isArray(raw) ? raw[0] : typeof raw === 'string' ? raw.split(',')[0] : undefined;
  return typeof first === 'string' && first.trim() !== '' ? first.trim() : undefined;
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

/**
 * Whether a Sidecar egress `hosts` list (`<ns>/<dnsName>` with `*`, `.` and `~` namespaces and
 * `*`/`*.suffix` names) selects a service, for a proxy in `proxyNamespace`.
 */
export function egressHostsMatch(hosts: readonly string[], service: Service, proxyNamespace: string): boolean {
  return hosts.some((h) => {
    const slash = h.indexOf('/');
    const ns = slash < 0 ? '*' : h.slice(0, slash);
    const host = slash < 0 ? h : h.slice(slash + 1);
    return ns !== '~' && (ns === '*' || (ns === '.' ? service.namespace === proxyNamespace : ns === service.namespace)) && hostMatches(host, service.hostname);
  });
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

  /**
   * No traffic capture (node metadata `INTERCEPTION_MODE: NONE`, local mode and VMs without
   * iptables): every listener binds a real address; there is no 15001/15006 and no original
   * destination.
   */
  get interceptionNone(): boolean {
    return interceptionNone(this.proxy.metadata);
  }

  /** The workload's own IP: INSTANCE_IPS[0] when it is an IP literal, else the node id's IP. */
  get instanceIp(): string | undefined {
    const ip = firstInstanceIp(this.proxy.metadata);
    if (ip !== undefined && isIpLiteral(ip)) return ip;
    if (ip !== undefined) this.problem(`node metadata INSTANCE_IPS starts with ${JSON.stringify(ip)}, which is not an IP address; the node id's IP is used`);
    return this.proxy.ip;
  }

  /** The Sidecar resource that applies to this proxy, if any. */
  sidecarResource(): SidecarEntry | undefined {
    return this.snapshot.sidecars.forWorkload(this.proxy.namespace, this.proxy.labels);
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
    const egress = this.sidecarResource()?.spec.egress;
    if (egress && egress.length > 0) {
      const hosts = egress.flatMap((e) => e.hosts);
      services = services.filter((s) => egressHostsMatch(hosts, s, ns));
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
    return this.sidecarResource()?.spec.outboundTrafficPolicy?.mode !== 'REGISTRY_ONLY';
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
