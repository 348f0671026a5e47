import { hcmTracing, httpAccessLog, tcpAccessLog, telemetryFilter, type AccessLogOptions } from './accesslog';
import { adsConfigSource, N, T, typed, wrap, type Msg } from './envoy';

/** HTTP filters end with the router, which must be last (gRPC NACKs otherwise). */
export function routerFilter(): Msg {
  return { name: N.router, typed_config: typed(T.Router) };
}

/** Applies the per-route CorsPolicy (VirtualService `corsPolicy`); a no-op on routes without one. */
export function corsFilter(): Msg {
  return { name: N.cors, typed_config: typed(T.Cors) };
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
  /**
   * Telemetry through the agent's ALS (sidecars and routers); `undefined` only for proxyless
   * gRPC, which has no agent. Envoy then also generates an `x-request-id` where none came in,
   * traces each hop (see accesslog.ts) and runs the telemetry filter first.
   */
  readonly accessLog: AccessLogOptions | undefined;
}

export function httpConnectionManager(o: HcmOptions): Msg {
  return typed(T.HttpConnectionManager, {
    stat_prefix: o.statPrefix,
    ...(o.rds !== undefined ? { rds: { config_source: adsConfigSource(), route_config_name: o.rds } } : { route_config: o.routeConfig }),
    http_filters: [...(o.accessLog !== undefined ? [telemetryFilter(o.accessLog.reporter)] : []), ...o.filters, routerFilter()],
    ...(o.useRemoteAddress !== undefined && { use_remote_address: { value: o.useRemoteAddress } }),
    ...(o.forwardClientCert && { forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { subject: { value: true }, dns: true, uri: true } }),
    ...(o.accessLog !== undefined && { generate_request_id: wrap(true), tracing: hcmTracing(), access_log: [httpAccessLog(o.accessLog)] }),
  });
}

export function hcmFilter(o: HcmOptions): Msg {
  return { name: N.hcm, typed_config: httpConnectionManager(o) };
}

/** A TcpProxy; every one pilot sends goes to a sidecar or router, so it always logs to the agent. */
export function tcpProxyFilter(statPrefix: string, cluster: string, accessLog: AccessLogOptions): Msg {
  return { name: N.tcpProxy, typed_config: typed(T.TcpProxy, { stat_prefix: statPrefix, cluster, access_log: [tcpAccessLog(accessLog)] }) };
}
