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
  /**
   * WebSocket upgrades, as Istio's connection managers (default true; proxyless gRPC has no use
   * for them): HTTP/1.1 `Upgrade: websocket`, and RFC 8441 extended CONNECT over HTTP/2
   * (`allow_connect`), which Envoy turns into an HTTP/1.1 upgrade towards an HTTP/1.1 upstream
   * and back. Route timeouts still apply to the whole upgraded stream (Istio's default is none).
   */
  readonly websocket?: boolean;
}

const websocketUpgrade = { upgrade_configs: [{ upgrade_type: 'websocket' }], http2_protocol_options: { allow_connect: true } };

export function httpConnectionManager(o: HcmOptions): Msg {
  return typed(T.HttpConnectionManager, {
    stat_prefix: o.statPrefix,
    ...(o.rds !== undefined ? { rds: { config_source: adsConfigSource(), route_config_name: o.rds } } : { route_config: o.routeConfig }),
    http_filters: [...(o.accessLog !== undefined ? [telemetryFilter(o.accessLog.reporter)] : []), ...o.filters, routerFilter()],
    ...(o.useRemoteAddress !== undefined && { use_remote_address: { value: o.useRemoteAddress } }),
    ...(o.forwardClientCert && { forward_client_cert_details: 'APPEND_FORWARD', set_current_client_cert_details: { subject: { value: true }, dns: true, uri: true } }),
    ...(o.websocket !== false && websocketUpgrade),
    ...(o.accessLog !== undefined && { generate_request_id: wrap(true), tracing: hcmTracing(), access_log: [httpAccessLog(o.accessLog)] }),
  });
}

export function hcmFilter(o: HcmOptions): Msg {
  return { name: N.hcm, typed_config: httpConnectionManager(o) };
}

/** Where a TcpProxy sends a connection: one cluster, or one of several picked by weight (each at least 1). */
export type TcpTarget = string | readonly { readonly name: string; readonly weight: number }[];

/** A TcpProxy; every one pilot sends goes to a sidecar or router, so it always logs to the agent. */
export function tcpProxyFilter(statPrefix: string, target: TcpTarget, accessLog: AccessLogOptions): Msg {
  const to = typeof target === 'string' ? { cluster: target } : target.length === 1 ? { cluster: target[0]!.name } : { weighted_clusters: { clusters: target.map((c) => ({ name: c.name, weight: c.weight })) } };
  return { name: N.tcpProxy, typed_config: typed(T.TcpProxy, { stat_prefix: statPrefix, ...to, access_log: [tcpAccessLog(accessLog)] }) };
}
