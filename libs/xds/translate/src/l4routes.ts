import type { RouteDestination, TCPRoute } from '@aviary/mesh-api';
import type { BoundVirtualService } from '@aviary/mesh-model';
import type { Ctx } from './context';
import type { TcpTarget } from './hcm';
import { matchApplies, resolveDestination, type ClusterRefs, type RouteScope } from './routes';

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
  // Every destination is resolved, so a weight-0 one keeps its cluster on the proxy (as in
  // `routeAction`): a weight change then only rewrites the TcpProxy, never adds or removes the
  // cluster it names.
  const clusters = new Map(all.map((d) => [d, resolveDestination(ctx, vs, d.destination, scope, refs)?.cluster]));
  const dests = all.filter((d) => all.length === 1 || (d.weight ?? 0) > 0);
  const resolved = dests.flatMap((d) => {
    const name = clusters.get(d);
    return name !== undefined ? [{ name, weight: dests.length === 1 ? 100 : (d.weight ?? 0) }] : [];
  });
  if (resolved.length === 0) {
    ctx.problem(`${vs.entry.key}: TCP/TLS route on port ${scope.port} has no usable destination`);
    return undefined;
  }
  return resolved;
}
