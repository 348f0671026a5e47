import { MESH_GATEWAY, compareStrings, type Service } from '@aviary/mesh-model';
import { outboundClusters } from './clusters';
import { planEgress, type PortService } from './egress';
import { BLACKHOLE_CLUSTER, clusterName, PASSTHROUGH_CLUSTER, type Ctx } from './context';
import { durationMs, socketAddress, wrap, type Msg } from './envoy';
import { faultFilter, hcmFilter, tcpProxyFilter } from './hcm';
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
        out.endpoints.push({ name: c.name, resource: c.loadAssignment });
      }
    }
  }
  passthroughClusters(out, true);

  const none = ctx.interceptionNone;
  if (none && ctx.sidecarResource()?.spec.outboundTrafficPolicy?.mode === 'ALLOW_ANY') {
    ctx.problem('outboundTrafficPolicy ALLOW_ANY has no effect with INTERCEPTION_MODE NONE: without capture there is no original destination to pass through to');
  }
  // Passthrough needs the original destination of a captured connection; a bound listener has none.
  const allowAny = (bind: string | undefined) => bind === undefined && ctx.outboundAllowAny();
  for (const plan of planEgress(ctx)) {
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
      out.routes.push({ name: routeName, resource: outboundRoutes(ctx, routeName, plan.port, plan.services, allowAny(plan.bind)) });
      out.listeners.push({
        name: listenerName,
        resource: { ...base, filter_chains: [{ filters: [hcmFilter({ statPrefix: `outbound_${address}_${plan.port}`, rds: routeName, filters: [faultFilter()] })] }] },
      });
    } else if (plan.services.length > 0) {
      const host = plan.services[0]!.service.hostname;
      out.listeners.push({
        name: listenerName,
        resource: { ...base, filter_chains: [{ filters: [tcpProxyFilter(`outbound|${plan.port}||${host}`, clusterName('outbound', plan.port, '', host))] }] },
      });
    }
  }

  if (none) return;
  const catchAll = ctx.outboundAllowAny() ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
  out.listeners.push({
    name: 'virtualOutbound',
    resource: {
      name: 'virtualOutbound',
      address: socketAddress('0.0.0.0', OUTBOUND_PORT),
      use_original_dst: wrap(true),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ name: 'virtualOutbound-catchall-tcp', filters: [tcpProxyFilter(catchAll, catchAll)] }],
    },
  });
}

/** RDS `<port>`: a virtual host per service on the port, then `allow_any` (passthrough) or `block_all` (502). */
function outboundRoutes(ctx: Ctx, routeName: string, portNumber: number, services: readonly PortService[], allowAny: boolean): Msg {
  const vhosts: Msg[] = [];
  for (const { service } of services) {
    const refs: ClusterRefs = new Set();
    const vs = ctx.snapshot.virtualServices.forHost(service.hostname, ctx.proxy.namespace);
    let routes = vs ? virtualServiceRoutes(ctx, vs, { port: portNumber, gateway: MESH_GATEWAY }, refs) : [];
    if (routes.length === 0) routes = [defaultRoute(ctx, service, portNumber, refs)];
    vhosts.push({ name: `${service.hostname}:${portNumber}`, domains: domainsFor(ctx, service, portNumber), routes });
  }
  vhosts.push({
    name: allowAny ? 'allow_any' : 'block_all',
    domains: ['*'],
    routes: [
      allowAny
        ? { name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, timeout: durationMs(0) } }
        : { name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } },
    ],
  });
  vhosts.sort((a, b) => compareStrings(a.name as string, b.name as string));
  return { name: routeName, virtual_hosts: vhosts, validate_clusters: wrap(false) };
}
