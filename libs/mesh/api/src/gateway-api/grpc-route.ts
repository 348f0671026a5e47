import Type, { type Static } from 'typebox';
import { Closed, opt, Resource } from '../common';
import { backendRef, gatewayApiV1Only, HTTPHeaderFilter, HTTPRequestMirrorFilter, LocalObjectReference, ParentReference } from './common';

export const GRPCMethodMatch = Closed({ type: opt(Type.Enum(['Exact', 'RegularExpression'])), service: opt(Type.String()), method: opt(Type.String()) });
export type GRPCMethodMatch = Static<typeof GRPCMethodMatch>;

export const GRPCHeaderMatch = Closed({ type: opt(Type.Enum(['Exact', 'RegularExpression'])), name: Type.String(), value: Type.String() });

export const GRPCRouteMatch = Closed({ method: opt(GRPCMethodMatch), headers: opt(Type.Array(GRPCHeaderMatch)) });
export type GRPCRouteMatch = Static<typeof GRPCRouteMatch>;

export const GRPCRouteFilter = Closed({
  type: Type.Enum(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef']),
  requestHeaderModifier: opt(HTTPHeaderFilter),
  responseHeaderModifier: opt(HTTPHeaderFilter),
  requestMirror: opt(HTTPRequestMirrorFilter),
  extensionRef: opt(LocalObjectReference),
});
export type GRPCRouteFilter = Static<typeof GRPCRouteFilter>;

export const GRPCBackendRef = backendRef(GRPCRouteFilter);

export const GRPCRouteRule = Closed({
  name: opt(Type.String()),
  matches: opt(Type.Array(GRPCRouteMatch)),
  filters: opt(Type.Array(GRPCRouteFilter)),
  backendRefs: opt(Type.Array(GRPCBackendRef)),
});
export type GRPCRouteRule = Static<typeof GRPCRouteRule>;

export const GRPCRouteSpec = Closed({
  parentRefs: opt(Type.Array(ParentReference)),
  hostnames: opt(Type.Array(Type.String())),
  rules: opt(Type.Array(GRPCRouteRule)),
});
export type GRPCRouteSpec = Static<typeof GRPCRouteSpec>;

export const GRPCRouteSchema = Resource('GRPCRoute', gatewayApiV1Only, GRPCRouteSpec, 'gRPC routing by service and method (gateway.networking.k8s.io GRPCRoute).');
export type GRPCRoute = Static<typeof GRPCRouteSchema>;
