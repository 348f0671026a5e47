import Type, { type Static } from 'typebox';
import { Closed, opt, Resource } from '../common';
import { ParentReference, PortNumber } from './common';

/**
 * TCPRoute and TLSRoute (gateway.networking.k8s.io, v1.6.0): connection-level routes for Gateway
 * listeners of protocol TCP and TLS. v1 is served by the standard channel of v1.6.0; v1alpha2
 * (and, for TLSRoute, v1alpha3) by its experimental channel, which Istio's tcp-echo sample uses.
 * One closed schema covers every served version; the version differences (v1: exactly one rule,
 * TLSRoute hostnames required) are checked by @aviary/mesh-validation.
 */

/** TCPRoute: v1 (storage) and v1alpha2 (experimental channel). */
export const tcpRouteVersions = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1alpha2'] as const;
/** TLSRoute: v1 (storage), v1alpha2 and v1alpha3 (experimental channel). */
export const tlsRouteVersions = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1alpha2', 'gateway.networking.k8s.io/v1alpha3'] as const;

/** BackendRef of a TCPRoute/TLSRoute rule: no filters at this level. */
export const L4BackendRef = Closed({
  group: opt(Type.String()),
  kind: opt(Type.String()),
  name: Type.String(),
  namespace: opt(Type.String()),
  port: opt(PortNumber),
  weight: opt(Type.Integer({ minimum: 0, maximum: 1000000 })),
});
export type L4BackendRef = Static<typeof L4BackendRef>;

export const L4RouteRule = Closed({
  name: opt(Type.String()),
  backendRefs: Type.Array(L4BackendRef),
});
export type L4RouteRule = Static<typeof L4RouteRule>;

export const TCPRouteSpec = Closed({
  parentRefs: opt(Type.Array(ParentReference)),
  rules: Type.Array(L4RouteRule),
  /** Experimental channel (GEP-3793, default Gateways). */
  useDefaultGateways: opt(Type.Enum(['All', 'None'])),
});
export type TCPRouteSpec = Static<typeof TCPRouteSpec>;

export const TLSRouteSpec = Closed({
  parentRefs: opt(Type.Array(ParentReference)),
  hostnames: opt(Type.Array(Type.String())),
  rules: Type.Array(L4RouteRule),
  /** Experimental channel (GEP-3793, default Gateways). */
  useDefaultGateways: opt(Type.Enum(['All', 'None'])),
});
export type TLSRouteSpec = Static<typeof TLSRouteSpec>;

export const TCPRouteSchema = Resource('TCPRoute', tcpRouteVersions, TCPRouteSpec, 'TCP connections from a Gateway listener to weighted backends (gateway.networking.k8s.io TCPRoute).');
export type KubernetesTCPRoute = Static<typeof TCPRouteSchema>;

export const TLSRouteSchema = Resource('TLSRoute', tlsRouteVersions, TLSRouteSpec, 'TLS connections routed by SNI from a Gateway listener to weighted backends (gateway.networking.k8s.io TLSRoute).');
export type KubernetesTLSRoute = Static<typeof TLSRouteSchema>;
