import { parseDuration } from '@aviary/mesh-api';
import { ExtensionTypeUrl, TypeUrl } from '@aviary/xds-api';

/**
 * Helpers that build Envoy v3 messages in the canonical form @aviary/xds-protos encodes:
 * proto (snake_case) field names, only set fields, enums by name, wrappers as `{ value }`,
 * Durations as `{ seconds, nanos }`, nested Anys as `{ '@type': <type URL>, ...fields }`.
 * No protobuf runtime here: the packer verifies and encodes.
 */

export type Msg = { [field: string]: unknown };

/** Type URLs (@aviary/xds-api's) under the short names the generators use. */
export const T = {
  Listener: TypeUrl.Listener,
  RouteConfiguration: TypeUrl.RouteConfiguration,
  Cluster: TypeUrl.Cluster,
  ClusterLoadAssignment: TypeUrl.ClusterLoadAssignment,
  Secret: TypeUrl.Secret,
  HttpConnectionManager: ExtensionTypeUrl.HttpConnectionManager,
  TcpProxy: ExtensionTypeUrl.TcpProxy,
  Router: ExtensionTypeUrl.Router,
  HTTPFault: ExtensionTypeUrl.HTTPFault,
  Cors: ExtensionTypeUrl.Cors,
  CorsPolicy: ExtensionTypeUrl.CorsPolicy,
  RBAC: ExtensionTypeUrl.RBAC,
  LocalRateLimit: ExtensionTypeUrl.LocalRateLimit,
  UpstreamTlsContext: ExtensionTypeUrl.UpstreamTlsContext,
  DownstreamTlsContext: ExtensionTypeUrl.DownstreamTlsContext,
  RawBuffer: ExtensionTypeUrl.RawBuffer,
  TlsInspector: ExtensionTypeUrl.TlsInspector,
  OriginalDst: ExtensionTypeUrl.OriginalDst,
  HttpInspector: ExtensionTypeUrl.HttpInspector,
  PreviousHostsPredicate: ExtensionTypeUrl.PreviousHostsPredicate,
  HttpProtocolOptions: ExtensionTypeUrl.HttpProtocolOptions,
} as const;

/** Well-known filter and transport socket names (Envoy's; gRPC matches some of them exactly). */
export const N = {
  hcm: 'envoy.filters.network.http_connection_manager',
  tcpProxy: 'envoy.filters.network.tcp_proxy',
  router: 'envoy.filters.http.router',
  fault: 'envoy.filters.http.fault',
  cors: 'envoy.filters.http.cors',
  rbac: 'envoy.filters.http.rbac',
  rbacDeny: 'envoy.filters.http.rbac.DENY',
  localRateLimit: 'envoy.filters.http.local_ratelimit',
  tls: 'envoy.transport_sockets.tls',
  rawBuffer: 'envoy.transport_sockets.raw_buffer',
  tlsInspector: 'envoy.filters.listener.tls_inspector',
  originalDst: 'envoy.filters.listener.original_dst',
  httpInspector: 'envoy.filters.listener.http_inspector',
  previousHosts: 'envoy.retry_host_predicates.previous_hosts',
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
 * `{ ads: {} }` is meaningful. Copy on write: an object or array with nothing to drop anywhere
 * below is returned itself, so what a translator shares (one filter list in two filter chains)
 * stays shared, for the encoder to verify and encode once. Like every translator output, the
 * result is not changed afterwards.
 */
export function prune<V>(value: V): V {
  // On every resource of every translation: plain loops, and no allocation where nothing changes.
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const p = prune(v);
      if (p !== v && out === undefined) out = value.slice(0, i);
      if (out !== undefined) out.push(p);
    }
    return (out ?? value) as V;
  }
  // for…in rather than Object.keys: no key array per object (translator output is plain
  // objects, so it visits the same own keys in the same order).
  const msg = value as Msg;
  let out: Msg | undefined;
  for (const k in msg) {
    const v = msg[k];
    const drop = v === undefined || (Array.isArray(v) && v.length === 0);
    const p = drop ? undefined : prune(v);
    if (out === undefined && (drop || p !== v)) {
      out = {};
      for (const j in msg) {
        if (j === k) break;
        out[j] = msg[j];
      }
    }
    if (out !== undefined && !drop) out[k] = p;
  }
  return (out ?? value) as V;
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
