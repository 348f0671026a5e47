import { MESH_GATEWAY, type Service, type ServicePortInfo } from '@aviary/mesh-model';
import { outboundClusters } from './clusters';
import { clusterName, type Ctx } from './context';
import { socketAddress, type Msg } from './envoy';
import { faultFilter, httpConnectionManager } from './hcm';
import { defaultRoute, virtualServiceRoutes, type ClusterRefs } from './routes';
import type { Generated } from './result';

/**
 * Proxyless gRPC (Istio's grpcgen): per reachable service port an `api_listener` named
 * `<host>:<port>` whose HttpConnectionManager reads RDS `outbound|<port>||<host>` over ADS; the
 * route configuration has one virtual host for `<host>` and `<host>:<port>`; EDS clusters per
 * subset. gRPC accepts only ROUND_ROBIN/RING_HASH, IP endpoint addresses, a weight on every
 * locality and the router as the last filter; all hold here.
 */
export function proxylessResources(ctx: Ctx): Generated {
  const out: Generated = { listeners: [], routes: [], clusters: [], endpoints: [] };
  for (const service of ctx.visibleServices()) {
    for (const port of service.ports) {
      const routeName = clusterName('outbound', port.number, '', service.hostname);
      const listenerName = `${service.hostname}:${port.number}`;
      out.listeners.push({
        name: listenerName,
        resource: {
          name: listenerName,
          address: socketAddress(service.addresses[0] ?? '0.0.0.0', port.number),
          api_listener: {
            api_listener: httpConnectionManager({ statPrefix: listenerName, rds: routeName, filters: [faultFilter()], accessLog: undefined, websocket: false }),
          },
        },
      });
      out.routes.push({ name: routeName, resource: routeConfiguration(ctx, service, port, routeName) });
      for (const c of outboundClusters(ctx, service, port)) {
        out.clusters.push({ name: c.name, resource: c.cluster });
        if (c.loadAssignment) out.endpoints.push({ name: c.name, resource: c.loadAssignment });
      }
    }
  }
  return out;
}

function routeConfiguration(ctx: Ctx, service: Service, port: ServicePortInfo, name: string): Msg {
  const refs: ClusterRefs = new Set();
  const vs = ctx.snapshot.virtualServices.forHost(service.hostname, ctx.proxy.namespace);
  let routes = vs ? virtualServiceRoutes(ctx, vs, { port: port.number, gateway: MESH_GATEWAY }, refs) : [];
  if (routes.length === 0) routes = [defaultRoute(ctx, service, port.number, refs)];
  return {
    name,
    virtual_hosts: [{ name: `${service.hostname}:${port.number}`, domains: [service.hostname, `${service.hostname}:${port.number}`], routes }],
  };
}
