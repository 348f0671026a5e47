import type { RouteDestination, TCPRoute } from '@aviary/mesh-api';
import type { BoundVirtualService } from '@aviary/mesh-model';
import type { Ctx } from './context';
import type { TcpTarget } from './hcm';
import { getsTraffic, matchApplies, trafficDestinations, type ClusterRefs, type RouteScope } from './routes';

/**
 * VirtualService `tcp` and `tls` routes as a TcpProxy target, Istio's semantics: match conditions
 * are decided at generation time (`port`, `gateways`, `sourceLabels`, `sourceNamespace`; a route
 * without `match` matches), the first route that applies wins, and its destinations become one
 * cluster or `weighted_clusters`. Validation has already checked that weights sum to 100;
 * destinations of weight 0 get no traffic (TcpProxy requires a weight of at least 1), a single
 * destination takes all of it whatever its weight. `destinationSubnets` and `sourceSubnet`
 * would need filter chains by address and are refused by validation.
 */

/** The first of `routes` whose match applies to this proxy and listener. */
export function firstTcpRoute(ctx: Ctx, routes: readonly TCPRoute[] | undefined, scope: RouteScope): TCPRoute | undefined {
  return (routes ?? []).find((r) => r.match === undefined || r.match.length === 0 || r.match.some((m) => matchApplies(ctx, scope, m)));
}

/** A route's destinations as a TcpProxy target; undefined (with a problem) when none resolves. */
export function l4Target(ctx: Ctx, vs: BoundVirtualService, route: readonly RouteDestination[] | undefined, scope: RouteScope, refs: ClusterRefs): TcpTarget | undefined {
  const all = route ?? [];
  // A weight-0 destination keeps its cluster (`trafficDestinations`): a weight change only rewrites the TcpProxy.
  const single = all.filter((d) => getsTraffic(all, d)).length === 1;
  const resolved = trafficDestinations(ctx, vs, all, scope, refs).map(({ d, x }) => ({ name: x.cluster, weight: single ? 100 : (d.weight ?? 0) }));
  if (resolved.length === 0) {
    ctx.problem(`${vs.entry.key}: TCP/TLS route on port ${scope.port} has no usable destination`);
    return undefined;
  }
  return resolved;
}
