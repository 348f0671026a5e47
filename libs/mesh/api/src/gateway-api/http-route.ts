import Type, { type Static } from 'typebox';
import { Closed, Duration, opt, Resource } from '../common';
import { backendRef, gatewayApiVersions, HTTPHeaderFilter, HTTPRequestMirrorFilter, LocalObjectReference, ParentReference, PortNumber } from './common';

export const HTTPPathMatch = Closed({ type: opt(Type.Enum(['Exact', 'PathPrefix', 'RegularExpression'])), value: opt(Type.String()) });
export type HTTPPathMatch = Static<typeof HTTPPathMatch>;

export const HTTPHeaderMatch = Closed({ type: opt(Type.Enum(['Exact', 'RegularExpression'])), name: Type.String(), value: Type.String() });
export type HTTPHeaderMatch = Static<typeof HTTPHeaderMatch>;

export const HTTPQueryParamMatch = Closed({ type: opt(Type.Enum(['Exact', 'RegularExpression'])), name: Type.String(), value: Type.String() });
export type HTTPQueryParamMatch = Static<typeof HTTPQueryParamMatch>;

export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

export const HTTPRouteMatch = Closed({
  path: opt(HTTPPathMatch),
  headers: opt(Type.Array(HTTPHeaderMatch)),
  queryParams: opt(Type.Array(HTTPQueryParamMatch)),
  method: opt(Type.Enum([...httpMethods])),
});
export type HTTPRouteMatch = Static<typeof HTTPRouteMatch>;

export const HTTPPathModifier = Closed({
  type: Type.Enum(['ReplaceFullPath', 'ReplacePrefixMatch']),
  replaceFullPath: opt(Type.String()),
  replacePrefixMatch: opt(Type.String()),
});
export type HTTPPathModifier = Static<typeof HTTPPathModifier>;

export const HTTPRequestRedirectFilter = Closed({
  scheme: opt(Type.Enum(['http', 'https'])),
  hostname: opt(Type.String()),
  path: opt(HTTPPathModifier),
  port: opt(PortNumber),
  statusCode: opt(Type.Integer()),
});
export type HTTPRequestRedirectFilter = Static<typeof HTTPRequestRedirectFilter>;

export const HTTPURLRewriteFilter = Closed({ hostname: opt(Type.String()), path: opt(HTTPPathModifier) });
export type HTTPURLRewriteFilter = Static<typeof HTTPURLRewriteFilter>;

export const HTTPCORSFilter = Closed({
  allowOrigins: opt(Type.Array(Type.String())),
  allowCredentials: opt(Type.Boolean()),
  allowMethods: opt(Type.Array(Type.String())),
  allowHeaders: opt(Type.Array(Type.String())),
  exposeHeaders: opt(Type.Array(Type.String())),
  maxAge: opt(Type.Integer({ minimum: 1 })),
});
export type HTTPCORSFilter = Static<typeof HTTPCORSFilter>;

export const httpRouteFilterTypes = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS'] as const;

export const HTTPRouteFilter = Closed({
  type: Type.Enum([...httpRouteFilterTypes]),
  requestHeaderModifier: opt(HTTPHeaderFilter),
  responseHeaderModifier: opt(HTTPHeaderFilter),
  requestMirror: opt(HTTPRequestMirrorFilter),
  requestRedirect: opt(HTTPRequestRedirectFilter),
  urlRewrite: opt(HTTPURLRewriteFilter),
  extensionRef: opt(LocalObjectReference),
  cors: opt(HTTPCORSFilter),
});
export type HTTPRouteFilter = Static<typeof HTTPRouteFilter>;

export const HTTPBackendRef = backendRef(HTTPRouteFilter);
export type HTTPBackendRef = Static<typeof HTTPBackendRef>;

export const HTTPRouteTimeouts = Closed({ request: opt(Duration), backendRequest: opt(Duration) });

export const HTTPRouteRule = Closed({
  name: opt(Type.String()),
  matches: opt(Type.Array(HTTPRouteMatch)),
  filters: opt(Type.Array(HTTPRouteFilter)),
  backendRefs: opt(Type.Array(HTTPBackendRef)),
  timeouts: opt(HTTPRouteTimeouts),
});
export type HTTPRouteRule = Static<typeof HTTPRouteRule>;

export const HTTPRouteSpec = Closed({
  parentRefs: opt(Type.Array(ParentReference)),
  hostnames: opt(Type.Array(Type.String())),
  rules: opt(Type.Array(HTTPRouteRule)),
});
export type HTTPRouteSpec = Static<typeof HTTPRouteSpec>;

export const HTTPRouteSchema = Resource('HTTPRoute', gatewayApiVersions, HTTPRouteSpec, 'HTTP routing from Gateway listeners or, for mesh routes, a Service (gateway.networking.k8s.io HTTPRoute).');
export type KubernetesHTTPRoute = Static<typeof HTTPRouteSchema>;
