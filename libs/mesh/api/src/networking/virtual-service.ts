import Type, { type Static } from 'typebox';
import { Closed, Duration, Int32, opt, Percent, PortSelector, Resource, StringList, StringMap, StringMatch, UInt32 } from '../common';
import { networkingVersions } from './versions';

/** Field for field as istio.io/latest/docs/reference/config/networking/virtual-service. */

export const Destination = Closed({
  host: Type.String(),
  subset: opt(Type.String()),
  port: opt(PortSelector),
});
export type Destination = Static<typeof Destination>;

export const HeaderOperations = Closed({
  set: opt(StringMap),
  add: opt(StringMap),
  remove: opt(StringList),
});

export const Headers = Closed({
  request: opt(HeaderOperations),
  response: opt(HeaderOperations),
});
export type Headers = Static<typeof Headers>;

export const HTTPMatchRequest = Closed({
  name: opt(Type.String()),
  uri: opt(StringMatch),
  scheme: opt(StringMatch),
  method: opt(StringMatch),
  authority: opt(StringMatch),
  headers: opt(Type.Record(Type.String(), StringMatch)),
  port: opt(UInt32),
  sourceLabels: opt(StringMap),
  gateways: opt(StringList),
  queryParams: opt(Type.Record(Type.String(), StringMatch)),
  ignoreUriCase: opt(Type.Boolean()),
  withoutHeaders: opt(Type.Record(Type.String(), StringMatch)),
  sourceNamespace: opt(Type.String()),
  statPrefix: opt(Type.String()),
});
export type HTTPMatchRequest = Static<typeof HTTPMatchRequest>;

export const HTTPRouteDestination = Closed({
  destination: Destination,
  weight: opt(Int32),
  headers: opt(Headers),
});
export type HTTPRouteDestination = Static<typeof HTTPRouteDestination>;

export const RouteDestination = Closed({
  destination: Destination,
  weight: opt(Int32),
});
export type RouteDestination = Static<typeof RouteDestination>;

export const HTTPRedirect = Closed({
  uri: opt(Type.String()),
  authority: opt(Type.String()),
  port: opt(UInt32),
  derivePort: opt(Type.Enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'])),
  scheme: opt(Type.String()),
  redirectCode: opt(UInt32),
  prefixRewrite: opt(Type.String()),
});

export const HTTPBody = Closed({
  string: opt(Type.String()),
  bytes: opt(Type.String({ description: 'base64-encoded bytes' })),
});

export const HTTPDirectResponse = Closed({
  status: UInt32,
  body: opt(HTTPBody),
});

export const Delegate = Closed({
  name: opt(Type.String()),
  namespace: opt(Type.String()),
});

export const RegexRewrite = Closed({
  match: opt(Type.String()),
  rewrite: opt(Type.String()),
});

export const HTTPRewrite = Closed({
  uri: opt(Type.String()),
  authority: opt(Type.String()),
  uriRegexRewrite: opt(RegexRewrite),
});

export const HTTPRetry = Closed({
  attempts: opt(Int32),
  perTryTimeout: opt(Duration),
  retryOn: opt(Type.String()),
  retryRemoteLocalities: opt(Type.Boolean()),
  retryIgnorePreviousHosts: opt(Type.Boolean()),
  backoff: opt(Duration),
});

export const FaultDelay = Closed({
  fixedDelay: opt(Duration),
  exponentialDelay: opt(Duration),
  percentage: opt(Percent),
  percent: opt(Int32),
});

export const FaultAbort = Closed({
  httpStatus: opt(Int32),
  grpcStatus: opt(Type.String()),
  http2Error: opt(Type.String()),
  percentage: opt(Percent),
});

export const HTTPFaultInjection = Closed({
  delay: opt(FaultDelay),
  abort: opt(FaultAbort),
});

export const HTTPMirrorPolicy = Closed({
  destination: Destination,
  percentage: opt(Percent),
});

export const CorsPolicy = Closed({
  allowOrigins: opt(Type.Array(StringMatch)),
  allowOrigin: opt(StringList),
  allowMethods: opt(StringList),
  allowHeaders: opt(StringList),
  exposeHeaders: opt(StringList),
  maxAge: opt(Duration),
  allowCredentials: opt(Type.Boolean()),
  unmatchedPreflights: opt(Type.Enum(['UNSPECIFIED', 'FORWARD', 'IGNORE'])),
});

export const HTTPRoute = Closed({
  name: opt(Type.String()),
  match: opt(Type.Array(HTTPMatchRequest)),
  route: opt(Type.Array(HTTPRouteDestination)),
  redirect: opt(HTTPRedirect),
  directResponse: opt(HTTPDirectResponse),
  delegate: opt(Delegate),
  rewrite: opt(HTTPRewrite),
  timeout: opt(Duration),
  retries: opt(HTTPRetry),
  fault: opt(HTTPFaultInjection),
  mirror: opt(Destination),
  mirrors: opt(Type.Array(HTTPMirrorPolicy)),
  mirrorPercent: opt(UInt32),
  mirrorPercentage: opt(Percent),
  corsPolicy: opt(CorsPolicy),
  headers: opt(Headers),
});
export type HTTPRoute = Static<typeof HTTPRoute>;

export const TLSMatchAttributes = Closed({
  sniHosts: StringList,
  destinationSubnets: opt(StringList),
  port: opt(UInt32),
  sourceLabels: opt(StringMap),
  gateways: opt(StringList),
  sourceNamespace: opt(Type.String()),
});

export const TLSRoute = Closed({
  match: Type.Array(TLSMatchAttributes),
  route: opt(Type.Array(RouteDestination)),
});
export type TLSRoute = Static<typeof TLSRoute>;

export const L4MatchAttributes = Closed({
  destinationSubnets: opt(StringList),
  port: opt(UInt32),
  sourceSubnet: opt(Type.String()),
  sourceLabels: opt(StringMap),
  gateways: opt(StringList),
  sourceNamespace: opt(Type.String()),
});

export const TCPRoute = Closed({
  match: opt(Type.Array(L4MatchAttributes)),
  route: opt(Type.Array(RouteDestination)),
});
export type TCPRoute = Static<typeof TCPRoute>;

export const VirtualServiceSpec = Closed({
  hosts: opt(StringList),
  gateways: opt(StringList),
  http: opt(Type.Array(HTTPRoute)),
  tls: opt(Type.Array(TLSRoute)),
  tcp: opt(Type.Array(TCPRoute)),
  exportTo: opt(StringList),
});
export type VirtualServiceSpec = Static<typeof VirtualServiceSpec>;

export const VirtualServiceSchema = Resource('VirtualService', networkingVersions, VirtualServiceSpec, 'Routing rules for traffic to a set of hosts (networking.istio.io VirtualService).');
export type VirtualService = Static<typeof VirtualServiceSchema>;
