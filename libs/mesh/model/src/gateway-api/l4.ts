import type { Listener, RouteDestination, Server, TCPRoute, TLSRoute, VirtualServiceSpec } from '@aviary/mesh-api';
import type { ResolvedBackend } from './rules';

/**
 * TCPRoute and TLSRoute → the routing model's connection-level routes: a Gateway listener of
 * protocol TCP (or TLS with mode Terminate) gets a VirtualService `tcp` route, a TLS listener with
 * mode Passthrough one VirtualService per SNI hostname with a `tls` route; the router translates
 * them as it does Istio's own (router.ts, l4routes.ts). Pure.
 *
 * Rules carry no matches, so one route serves a listener (TCP) or a hostname (TLS): the oldest
 * attached route (creationTimestamp, then `namespace/name`), as the Gateway API resolves
 * conflicts between routes. The others stay Accepted (they did attach) but carry no traffic.
 */

export type L4RouteKind = 'TCPRoute' | 'TLSRoute';

export function isL4RouteKind(kind: string): kind is L4RouteKind {
  return kind === 'TCPRoute' || kind === 'TLSRoute';
}

/** Destination standing for backends that cannot be used: their share of connections is refused (no such cluster). */
export const INVALID_BACKEND_HOST = 'invalid-backend.aviary.internal';

/** The route kinds a listener serves, by its protocol and TLS mode (the Gateway API's listener/route compatibility). */
export function listenerRouteKinds(l: Listener): readonly string[] {
  switch (l.protocol) {
    case 'HTTP':
    case 'HTTPS':
      return ['HTTPRoute', 'GRPCRoute'];
    case 'TCP':
      return ['TCPRoute'];
    case 'TLS':
      // Passthrough: routed by SNI, unopened. Terminate: the router ends TLS and forwards the bytes (TCPRoute).
      return (l.tls?.mode ?? 'Terminate') === 'Passthrough' ? ['TLSRoute'] : ['TCPRoute'];
    default:
      return [];
  }
}

/** The Istio Gateway server of a TCP or TLS listener (HTTP/HTTPS servers are made by convert.ts). */
export function l4Server(base: Server, l: Listener, credentialName: string | undefined): Server {
  const server: Server = { ...base, port: { ...base.port, protocol: l.protocol } };
  if (l.protocol === 'TCP') return { ...server, hosts: ['*'] };
  if ((l.tls?.mode ?? 'Terminate') === 'Passthrough') return { ...server, tls: { mode: 'PASSTHROUGH' } };
  return { ...server, tls: { mode: 'SIMPLE', credentialName: credentialName! } };
}

/** One attached L4 route at a listener (and, for TLS passthrough, one SNI hostname). */
export interface AttachedL4Route {
  readonly kind: L4RouteKind;
  readonly routeKey: string;
  readonly createdAt: string;
  readonly backends: readonly ResolvedBackend[];
  readonly invalidWeight: number;
}

/**
 * Connection-level destinations of a rule: weighted, the share of unusable backends refused.
 * Weight-0 backends stay, with weight 0 (no connections), as in an HTTPRoute's rule: their
 * clusters then stay on the gateway while the weights move, so a weight change never names a
 * cluster the proxy is still adding or has just removed.
 */
export function l4Destinations(backends: readonly ResolvedBackend[], invalidWeight: number): RouteDestination[] {
  const route: RouteDestination[] = backends.map((b) => ({ destination: { host: b.host, port: { number: b.port } }, weight: b.weight }));
  const weighted = backends.some((b) => b.weight > 0);
  if (invalidWeight > 0 || !weighted) route.push({ destination: { host: INVALID_BACKEND_HOST, port: { number: 1 } }, weight: Math.max(invalidWeight, 1) });
  return route;
}

function oldestFirst(a: AttachedL4Route, b: AttachedL4Route): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.routeKey < b.routeKey ? -1 : a.routeKey > b.routeKey ? 1 : 0;
}

/**
 * The VirtualService spec for one L4 bucket: `sni` set (TLS passthrough) gives a `tls` route
 * matched by that SNI host, otherwise a `tcp` route. The oldest route wins.
 */
export function l4VirtualService(gateway: string, host: string, sni: boolean, routes: readonly AttachedL4Route[]): VirtualServiceSpec {
  const winner = [...routes].sort(oldestFirst)[0]!;
  const route = l4Destinations(winner.backends, winner.invalidWeight);
  if (sni) return { hosts: [host], gateways: [gateway], tls: [{ match: [{ sniHosts: [host] }], route }] satisfies TLSRoute[] };
  return { hosts: [host], gateways: [gateway], tcp: [{ route }] satisfies TCPRoute[] };
}
