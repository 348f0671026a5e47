import { adsConfigSource, N, T, typed, type Msg } from './envoy';

/** HTTP filters end with the router, which must be last (gRPC NACKs otherwise). */
export function routerFilter(): Msg {
  return { name: N.router, typed_config: typed(T.Router) };
}

export function faultFilter(): Msg {
  return { name: N.fault, typed_config: typed(T.HTTPFault) };
}

export interface HcmOptions {
  readonly statPrefix: string;
  /** RDS route configuration name (served over ADS) … */
  readonly rds?: string;
  /** … or an inline route configuration. */
  readonly routeConfig?: Msg;
  /** Filters before the router, in order. */
  readonly filters: readonly Msg[];
  readonly useRemoteAddress?: boolean;
  /** Inbound: forward the client certificate details as Istio does. */
  readonly forwardClientCert?: boolean;
}

export function httpConnectionManager(o: HcmOptions): Msg {
  return typed(T.HttpConnectionManager, {
    stat_prefix: o.statPrefix,
    ...(o.rds !== undefined ? { rds: { config_source: adsConfigSource(), route_config_name: o.rds } } : { route_config: o.routeConfig }),
    http_filters: [...o.filters, routerFilter()],
    ...(o.useRemoteAddress !== undefined && { use_remote_address: { value: o.useRemoteAddress } }),
    ...(o.forwardClientCert && { forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { subject: { value: true }, dns: true, uri: true } }),
  });
}

export function hcmFilter(o: HcmOptions): Msg {
  return { name: N.hcm, typed_config: httpConnectionManager(o) };
}

export function tcpProxyFilter(statPrefix: string, cluster: string): Msg {
  return { name: N.tcpProxy, typed_config: typed(T.TcpProxy, { stat_prefix: statPrefix, cluster }) };
}
