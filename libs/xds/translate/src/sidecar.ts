import { MESH_GATEWAY, compareStrings, resolveHost, type Service } from '@aviary/mesh-model';
import { outboundClusters } from './clusters';
import { planEgress, type PortService } from './egress';
import { BLACKHOLE_CLUSTER, clusterName, PASSTHROUGH_CLUSTER, type Ctx } from './context';
import { durationMs, socketAddress, wrap, type Msg } from './envoy';
import { peerWorkloadHeader } from './accesslog';
import { corsFilter, faultFilter, hcmFilter, tcpProxyFilter, type TcpTarget } from './hcm';
import { firstTcpRoute, l4Target } from './l4routes';
import { inbound, INBOUND_PASSTHROUGH_CLUSTER } from './inbound';
import { defaultRoute, virtualServiceRoutes, type ClusterRefs } from './routes';
import type { Generated } from './result';

/**
 * Sidecar (Istio's shape), outbound: `virtualOutbound` on 15001 and a listener per outbound
 * port (see ./egress for which ports and where they bind: `0.0.0.0_<port>` virtual listeners
 * under iptables, `<bind>_<port>` bound ones with INTERCEPTION_MODE NONE or a Sidecar egress
 * bind); HTTP ports read RDS `<port>`, TCP ports proxy to the service's cluster. The inbound
 * half is ./inbound.
 */

export const OUTBOUND_PORT = 15001;
/** Istio's InboundPassthroughBindIpv4. */
export const INBOUND_PASSTHROUGH_BIND = '127.0.0.6';

/**
 * Ports the sidecar's own bootstrap listens on (Istio's well-known ports: admin 15000, outbound
 * 15001, inbound 15006, app probes 15020, readiness 15021, stats 15090). A virtual outbound
 * listener on one of them has the address of a static listener and Envoy refuses the whole LDS
 * update ("duplicate address"), so a service port among them (e.g. a control plane's
 * monitoring port 15021) gets none: its traffic takes `virtualOutbound` (passthrough).
 */
export const PROXY_PORTS: ReadonlySet<number> = new Set([15000, OUTBOUND_PORT, 15006, 15020, 15021, 15090]);

/** Outbound listeners report as the source of the request. */
const SOURCE = { reporter: 'source' } as const;

/**
 * The outbound half: reads only the proxy's kind, namespace and the labels that select a
 * Sidecar, DestinationRule or VirtualService source match, so proxies that agree on those
 * share it (see `outboundKey`).
 */
export function sidecarOutbound(ctx: Ctx): Generated {
  const out: Generated = { listeners: [], routes: [], clusters: [], endpoints: [] };
  outbound(ctx, out);
  return out;
}

/** The inbound half (./inbound): the proxy's own service instances or Sidecar ingress, PeerAuthentication, RBAC, rate limits. */
export function sidecarInbound(ctx: Ctx): Generated {
  const out: Generated = { listeners: [], routes: [], clusters: [], endpoints: [] };
  inbound(ctx, out);
  return out;
}

function passthroughClusters(out: Generated, inboundToo: boolean): void {
  out.clusters.push({ name: PASSTHROUGH_CLUSTER, resource: { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', connect_timeout: durationMs(10_000), lb_policy: 'CLUSTER_PROVIDED' } });
  out.clusters.push({ name: BLACKHOLE_CLUSTER, resource: { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: durationMs(10_000) } });
  if (inboundToo) {
    // Bound to 127.0.0.6, which the capture rules (libs/iptables) let out: a connection to the
    // pod's own IP from any other source would be captured again and loop through 15006.
    out.clusters.push({
      name: INBOUND_PASSTHROUGH_CLUSTER,
      resource: {
        name: INBOUND_PASSTHROUGH_CLUSTER,
        type: 'ORIGINAL_DST',
        connect_timeout: durationMs(10_000),
        lb_policy: 'CLUSTER_PROVIDED',
        upstream_bind_config: { source_address: { address: INBOUND_PASSTHROUGH_BIND, port_value: 0 } },
      },
    });
  }
}

/** Domains Istio puts on a service's virtual host: FQDN and the short forms a client in the namespace may use. */
function domainsFor(ctx: Ctx, service: Service, port: number): string[] {
  const names = [service.hostname];
  const suffix = `.svc.${ctx.snapshot.options.domainSuffix}`;
  if (service.hostname.endsWith(suffix)) {
    const short = service.hostname.slice(0, -suffix.length); // name.ns
    const [name, ns] = short.split('.');
    if (ns !== undefined && short.split('.').length === 2) {
      if (ns === ctx.proxy.namespace) names.push(name!);
      names.push(short, `${short}.svc`);
    }
  }
  return names.flatMap((n) => [n, `${n}:${port}`]);
}

function outbound(ctx: Ctx, out: Generated): void {
  for (const service of ctx.visibleServices()) {
    for (const port of service.ports) {
      for (const c of outboundClusters(ctx, service, port)) {
        out.clusters.push({ name: c.name, resource: c.cluster });
        if (c.loadAssignment) out.endpoints.push({ name: c.name, resource: c.loadAssignment });
      }
    }
  }
  passthroughClusters(out, true);

  const none = ctx.interceptionNone;
  const egressProxy = egressProxyCluster(ctx);
  if (none && egressProxy === undefined && ctx.sidecarResource()?.spec.outboundTrafficPolicy?.mode === 'ALLOW_ANY') {
    ctx.problem('outboundTrafficPolicy ALLOW_ANY has no effect with INTERCEPTION_MODE NONE: without capture there is no original destination to pass through to');
  }
  // Unknown hosts go to the egress proxy, else pass through to their original destination, which
  // only a captured connection has (a bound listener has none): else 502.
  const unknownHosts = (bind: string | undefined): string | undefined => {
    if (!ctx.outboundAllowAny()) return undefined;
    return egressProxy ?? (bind === undefined ? PASSTHROUGH_CLUSTER : undefined);
  };
  for (const plan of planEgress(ctx)) {
    if (plan.bind === undefined && !none && PROXY_PORTS.has(plan.port)) {
      ctx.problem(`outbound port ${plan.port} (${plan.services.map((s) => s.service.hostname).join(', ')}) is one of the sidecar's own ports: no listener, its traffic is passed through`);
      continue;
    }
    const address = plan.bind ?? '0.0.0.0';
    const listenerName = `${address}_${plan.port}`;
    const base = {
      name: listenerName,
      address: socketAddress(address, plan.port),
      ...(plan.bind === undefined && { bind_to_port: wrap(false) }),
      traffic_direction: 'OUTBOUND',
    };
    if (plan.http) {
      const routeName = String(plan.port);
      out.routes.push({ name: routeName, resource: outboundRoutes(ctx, routeName, plan.port, plan.services, unknownHosts(plan.bind)) });
      out.listeners.push({
        name: listenerName,
        resource: { ...base, filter_chains: [{ filters: [hcmFilter({ statPrefix: `outbound_${address}_${plan.port}`, rds: routeName, filters: [corsFilter(), faultFilter()], accessLog: SOURCE })] }] },
      });
    } else if (plan.services.length > 0) {
      const host = plan.services[0]!.service.hostname;
      out.listeners.push({
        name: listenerName,
        resource: { ...base, filter_chains: [{ filters: [tcpProxyFilter(`outbound|${plan.port}||${host}`, tcpTarget(ctx, host, plan.port), SOURCE)] }] },
      });
    }
  }

  if (none) return;
  const catchAll = unknownHosts(undefined) ?? BLACKHOLE_CLUSTER;
  out.listeners.push({
    name: 'virtualOutbound',
    resource: {
      name: 'virtualOutbound',
      address: socketAddress('0.0.0.0', OUTBOUND_PORT),
      use_original_dst: wrap(true),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter(catchAll, catchAll, SOURCE)] }],
    },
  });
}

/**
 * A TCP service port: the first `tcp` route of the host's mesh VirtualService that applies to the
 * port (weighted), else the service's own cluster. Its clusters are the proxy's outbound clusters
 * already (every visible service port, every subset).
 */
function tcpTarget(ctx: Ctx, host: string, port: number): TcpTarget {
  const scope = { port, gateway: MESH_GATEWAY };
  const vs = ctx.snapshot.virtualServices.forHost(host, ctx.proxy.namespace);
  const route = vs ? firstTcpRoute(ctx, vs.entry.spec.tcp, scope) : undefined;
  return (route && l4Target(ctx, vs!, route.route, scope, new Set())) ?? clusterName('outbound', port, '', host);
}

/**
 * `outboundTrafficPolicy.egressProxy` (with ALLOW_ANY): the outbound cluster that traffic to
 * unknown hosts goes to instead of its original destination; undefined, with a problem, when
 * its host, port or subset is not a visible service's.
 */
function egressProxyCluster(ctx: Ctx): string | undefined {
  const sidecar = ctx.sidecarResource();
  const policy = sidecar?.spec.outboundTrafficPolicy;
  const proxy = policy?.egressProxy;
  if (!sidecar || !proxy) return undefined;
  const where = `${sidecar.key} outboundTrafficPolicy.egressProxy`;
  if (policy.mode !== 'ALLOW_ANY') {
    ctx.problem(`${where} applies only with mode ALLOW_ANY; ignored`);
    return undefined;
  }
  const host = resolveHost(proxy.host, sidecar.namespace, ctx.snapshot.options.domainSuffix);
  const service = ctx.isVisible(host) ? ctx.snapshot.services.get(host) : undefined;
  const port = proxy.port?.number ?? (service?.ports.length === 1 ? service.ports[0]!.number : undefined);
  const subset = proxy.subset ?? '';
  const known = service?.ports.some((p) => p.number === port) && (subset === '' || ctx.destinationRule(service)?.spec.subsets?.some((s) => s.name === subset));
  if (port === undefined || !known) {
    ctx.problem(`${where}: ${host}${port === undefined ? '' : `:${port}`}${subset ? ` subset ${subset}` : ''} is not a service port (and subset) this proxy can reach; unknown hosts are not sent to it`);
    return undefined;
  }
  return clusterName('outbound', port, subset, host);
}

/** RDS `<port>`: a virtual host per service on the port, then `allow_any` (to `unknownHosts`) or `block_all` (502). */
function outboundRoutes(ctx: Ctx, routeName: string, portNumber: number, services: readonly PortService[], unknownHosts: string | undefined): Msg {
  const allowAny = unknownHosts !== undefined;
  const vhosts: Msg[] = [];
  for (const { service } of services) {
    const refs: ClusterRefs = new Set();
    const vs = ctx.snapshot.virtualServices.forHost(service.hostname, ctx.proxy.namespace);
    let routes = vs ? virtualServiceRoutes(ctx, vs, { port: portNumber, gateway: MESH_GATEWAY }, refs) : [];
    if (routes.length === 0) routes = [defaultRoute(ctx, service, portNumber, refs)];
    vhosts.push({
      name: `${service.hostname}:${portNumber}`,
      domains: domainsFor(ctx, service, portNumber),
      routes,
      // Mesh services learn the caller's workload (see accesslog.ts); external ones are not told.
      ...(service.location !== 'MESH_EXTERNAL' && { request_headers_to_add: [peerWorkloadHeader()] }),
    });
  }
  vhosts.push({
    name: allowAny ? 'allow_any' : 'block_all',
    domains: ['*'],
    routes: [
      allowAny
        ? { name: 'allow_any', match: { prefix: '/' }, route: { cluster: unknownHosts, timeout: durationMs(0) } }
        : { name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } },
    ],
  });
  vhosts.sort((a, b) => compareStrings(a.name as string, b.name as string));
  return { name: routeName, virtual_hosts: vhosts, validate_clusters: wrap(false) };
}
