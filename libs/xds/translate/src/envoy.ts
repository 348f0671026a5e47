import { parseDuration } from '@aviary/mesh-api';

/**
 * Helpers that build Envoy v3 messages in the canonical form @aviary/xds-protos encodes:
 * proto (snake_case) field names, only set fields, enums by name, wrappers as `{ value }`,
 * Durations as `{ seconds, nanos }`, nested Anys as `{ '@type': 'type.googleapis.com/<full.Name>', ...fields }`.
 * No protobuf runtime here: the packer verifies and encodes.
 */

export type Msg = { [field: string]: unknown };

export const TYPE_PREFIX = 'type.googleapis.com/';

export const T = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  HttpConnectionManager: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  TcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  Router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  HTTPFault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  RBAC: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  LocalRateLimit: 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  UpstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  DownstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  RawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  TlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  OriginalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  HttpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;

/** Well-known filter and transport socket names (Envoy's; gRPC matches some of them exactly). */
export const N = {
  hcm: 'envoy.filters.network.http_connection_manager',
  tcpProxy: 'envoy.filters.network.tcp_proxy',
  router: 'envoy.filters.http.router',
  fault: 'envoy.filters.http.fault',
  rbac: 'envoy.filters.http.rbac',
  rbacDeny: 'envoy.filters.http.rbac.DENY',
  localRateLimit: 'envoy.filters.http.local_ratelimit',
  tls: 'envoy.transport_sockets.tls',
  rawBuffer: 'envoy.transport_sockets.raw_buffer',
  tlsInspector: 'envoy.filters.listener.tls_inspector',
  originalDst: 'envoy.filters.listener.original_dst',
  httpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;

/** A nested Any in canonical form. */
export function typed(typeUrl: string, body: Msg = {}): Msg {
  return { '@type': typeUrl, ...body };
}

export function wrap<V>(value: V): { value: V } {
  return { value };
}

/** google.protobuf.Duration from milliseconds (`1500` → `{ seconds: 1, nanos: 500000000 }`). */
export function durationMs(ms: number): Msg {
  const whole = Math.floor(ms / 1000);
  const nanos = Math.round((ms - whole * 1000) * 1e6);
  return nanos === 0 ? { seconds: whole } : { seconds: whole, nanos };
}

/** Duration from an Istio duration string, or undefined when absent/invalid. */
export function duration(value: string | undefined): Msg | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  return ms === undefined ? undefined : durationMs(ms);
}

/** envoy.type.v3.FractionalPercent from a percentage in [0, 100] (Istio: per million). */
export function fractionalPercent(percent: number): Msg {
  const clamped = Math.min(100, Math.max(0, percent));
  return { numerator: Math.round(clamped * 10_000), denominator: 'MILLION' };
}

/** google.protobuf.Struct with string values, canonical form. */
export function stringStruct(values: Readonly<Record<string, string>>): Msg {
  const keys = Object.keys(values).sort();
  return keys.length === 0 ? {} : { fields: Object.fromEntries(keys.map((k) => [k, { string_value: values[k] }])) };
}

export function socketAddress(address: string, port: number): Msg {
  return { socket_address: { address, port_value: port } };
}

/**
 * Drops `undefined` values and empty arrays, recursively, so a message is in canonical form
 * (the packer omits them too, and golden files stay free of noise). Empty objects are kept:
 * `{ ads: {} }` is meaningful.
 */
export function prune<V>(value: V): V {
  if (Array.isArray(value)) return value.map((v) => prune(v)) as V;
  if (value && typeof value === 'object') {
    const out: Msg = {};
    for (const [k, v] of Object.entries(value as Msg)) {
      if (v === undefined) continue;
      if (Array.isArray(v) && v.length === 0) continue;
      out[k] = prune(v);
    }
    return out as V;
  }
  return value;
}

/** A StringMatcher (envoy.type.matcher.v3) from an Istio StringMatch; `undefined` when empty. */
export function stringMatcher(m: { exact?: string; prefix?: string; regex?: string } | undefined, ignoreCase = false): Msg | undefined {
  if (!m) return undefined;
  const base = ignoreCase ? { ignore_case: true } : {};
  if (m.exact !== undefined) return { exact: m.exact, ...base };
  if (m.prefix !== undefined) return { prefix: m.prefix, ...base };
  if (m.regex !== undefined) return { safe_regex: regexMatcher(m.regex) };
  return undefined;
}

/** RegexMatcher: RE2 is Envoy's default engine; `google_re2` is deprecated (Envoy warns). */
export function regexMatcher(regex: string): Msg {
  return { regex };
}

/** Config source for RDS/EDS over the same ADS stream. */
export function adsConfigSource(): Msg {
  return { ads: {}, resource_api_version: 'V3' };
}
