import { ExtensionTypeUrl, typeNameOf } from '@aviary/xds-api';
import { stringMatcher, type StringPredicate } from './matchers';
import { anyOf, arr, durationMs, invalid, isObj, num, obj, optObj, optStr, percent, type Raw, str, wrappedNum } from './raw';

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH';

export interface CircuitBreakerLimits {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

export interface OutlierDetection {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number | undefined;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly enforcing5xx: number;
}

/** Secret references and peer checks of an Upstream/DownstreamTlsContext. */
export interface TlsContextRef {
  /** SDS secret names (or `inline:<n>` for inline certificates) of our own certificate. */
  readonly certificateSecrets: readonly string[];
  /** SDS secret name of the validation context (trusted CA), if any. */
  readonly validationSecret: string | undefined;
  /** Inline trusted CA, when given in the context itself. */
  readonly trustedCa: string | undefined;
  /** Inline certificate chain + key, when given in the context itself. */
  readonly inlineCertificates: readonly { readonly chain: string; readonly key: string }[];
  /** Accepted peer SANs (URI/DNS); empty: any certificate the CA signed. */
  readonly sanMatchers: readonly StringPredicate[];
  readonly sni: string | undefined;
  readonly alpn: readonly string[];
  /** Downstream only. */
  readonly requireClientCertificate: boolean;
}

export interface Endpoint {
  /** `host:port`, the endpoint's identity for stats, outlier detection and pools. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly priority: number;
  readonly healthy: boolean;
  readonly locality: string;
}

export interface Cluster {
  readonly name: string;
  readonly type: 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
  /** EDS resource name (service_name or the cluster name). */
  readonly edsName: string | undefined;
  readonly staticEndpoints: readonly Endpoint[];
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  readonly limits: CircuitBreakerLimits;
  readonly outlier: OutlierDetection | undefined;
  readonly tls: TlsContextRef | undefined;
  readonly http2: boolean;
  readonly ringSize: { readonly min: number; readonly max: number };
  readonly choiceCount: number;
}

const lbPolicies: Readonly<Record<string, LbPolicy>> = { ROUND_ROBIN: 'ROUND_ROBIN', LEAST_REQUEST: 'LEAST_REQUEST', RANDOM: 'RANDOM', RING_HASH: 'RING_HASH' };
const lbByNumber = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RING_HASH', 'RANDOM'] as const;

function dataSource(v: unknown, path: string): string | undefined {
  const o = optObj(v, path);
  if (o === undefined) return undefined;
  if (o.inline_string !== undefined) return str(o.inline_string, `${path}.inline_string`);
  if (o.inline_bytes !== undefined) return Buffer.from(str(o.inline_bytes, `${path}.inline_bytes`), 'base64').toString('utf8');
  if (o.filename !== undefined) invalid(`${path}.filename`, 'file data sources are not supported (use SDS)');
  return undefined;
}

const sanTypes = new Set(['URI', 'DNS', 'EMAIL', 'IP_ADDRESS', 3, 2, 1, 4]);

function validationContext(v: unknown, path: string): { trustedCa: string | undefined; sans: StringPredicate[] } {
  const o = optObj(v, path);
  if (o === undefined) return { trustedCa: undefined, sans: [] };
  const sans = [
    ...arr(o.match_subject_alt_names, `${path}.match_subject_alt_names`).map((m, i) => stringMatcher(m, `${path}.match_subject_alt_names[${i}]`)),
    ...arr(o.match_typed_subject_alt_names, `${path}.match_typed_subject_alt_names`).map((m, i) => {
      const p = `${path}.match_typed_subject_alt_names[${i}]`;
      const mo = obj(m, p);
      if (!sanTypes.has(mo.san_type as string)) invalid(`${p}.san_type`, `unsupported SAN type ${String(mo.san_type)}`);
      return stringMatcher(mo.matcher, `${p}.matcher`);
    }),
  ];
  return { trustedCa: dataSource(o.trusted_ca, `${path}.trusted_ca`), sans };
}

/** `CommonTlsContext` inside an Upstream/DownstreamTlsContext. */
export function compileTlsContext(msg: Raw, path: string, downstream: boolean): TlsContextRef {
  const common = optObj(msg.common_tls_context, `${path}.common_tls_context`) ?? {};
  const cp = `${path}.common_tls_context`;
  const certificateSecrets = arr(common.tls_certificate_sds_secret_configs, `${cp}.tls_certificate_sds_secret_configs`).map((s, i) =>
    str(obj(s, `${cp}.tls_certificate_sds_secret_configs[${i}]`).name, `${cp}.tls_certificate_sds_secret_configs[${i}].name`),
  );
  const inlineCertificates = arr(common.tls_certificates, `${cp}.tls_certificates`).map((c, i) => {
    const p = `${cp}.tls_certificates[${i}]`;
    const co = obj(c, p);
    const chain = dataSource(co.certificate_chain, `${p}.certificate_chain`);
    const key = dataSource(co.private_key, `${p}.private_key`);
    if (chain === undefined || key === undefined) invalid(p, 'certificate_chain and private_key are required');
    return { chain, key };
  });
  let validationSecret: string | undefined;
  let vc: { trustedCa: string | undefined; sans: StringPredicate[] } = { trustedCa: undefined, sans: [] };
  if (common.validation_context_sds_secret_config !== undefined) {
    validationSecret = str(obj(common.validation_context_sds_secret_config, `${cp}.validation_context_sds_secret_config`).name, `${cp}.validation_context_sds_secret_config.name`);
  } else if (common.combined_validation_context !== undefined) {
    const p = `${cp}.combined_validation_context`;
    const c = obj(common.combined_validation_context, p);
    vc = validationContext(c.default_validation_context, `${p}.default_validation_context`);
    const sds = optObj(c.validation_context_sds_secret_config, `${p}.validation_context_sds_secret_config`);
    validationSecret = sds === undefined ? undefined : str(sds.name, `${p}.validation_context_sds_secret_config.name`);
  } else if (common.validation_context !== undefined) {
    vc = validationContext(common.validation_context, `${cp}.validation_context`);
  }
  const requireRaw = msg.require_client_certificate;
  return {
    certificateSecrets,
    validationSecret,
    trustedCa: vc.trustedCa,
    inlineCertificates,
    sanMatchers: vc.sans,
    sni: downstream ? undefined : optStr(msg.sni, `${path}.sni`),
    alpn: arr(common.alpn_protocols, `${cp}.alpn_protocols`).map((a, i) => str(a, `${cp}.alpn_protocols[${i}]`)),
    requireClientCertificate: downstream && (isObj(requireRaw) ? requireRaw.value === true : requireRaw === true),
  };
}

/** A transport_socket: undefined for raw_buffer, the TLS context for tls. */
export function compileTransportSocket(v: unknown, path: string, downstream: boolean): TlsContextRef | undefined {
  const o = optObj(v, path);
  if (o === undefined || o.typed_config === undefined) return undefined;
  const { type, msg } = anyOf(o.typed_config, `${path}.typed_config`);
  const want = typeNameOf(downstream ? ExtensionTypeUrl.DownstreamTlsContext : ExtensionTypeUrl.UpstreamTlsContext);
  if (type === typeNameOf(ExtensionTypeUrl.RawBuffer)) return undefined;
  if (type !== want) invalid(`${path}.typed_config`, `unsupported transport socket ${type}`);
  return compileTlsContext(msg, `${path}.typed_config`, downstream);
}

function socketAddress(v: unknown, path: string): { host: string; port: number } {
  const a = obj(v, path);
  const sa = obj(a.socket_address, `${path}.socket_address`);
  const host = str(sa.address, `${path}.socket_address.address`);
  if (host.length === 0) invalid(`${path}.socket_address.address`, 'must not be empty');
  const port = num(sa.port_value ?? 0, `${path}.socket_address.port_value`);
  if (port < 0 || port > 65535) invalid(`${path}.socket_address.port_value`, 'must be within [0, 65535]');
  return { host, port };
}

export { socketAddress };

const unhealthy = new Set(['UNHEALTHY', 'DRAINING', 'TIMEOUT', 2, 3, 4]);
const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `config.endpoint.v3.ClusterLoadAssignment` → endpoints. `requireIp`: EDS endpoints must be IP literals. */
export function compileLoadAssignment(v: unknown, path = 'ClusterLoadAssignment', requireIp = true): { name: string; endpoints: readonly Endpoint[] } {
  const o = obj(v, path);
  const name = str(o.cluster_name ?? '', `${path}.cluster_name`);
  const endpoints: Endpoint[] = [];
  arr(o.endpoints, `${path}.endpoints`).forEach((le, i) => {
    const p = `${path}.endpoints[${i}]`;
    const lo = obj(le, p);
    const localityWeight = wrappedNum(lo.load_balancing_weight, `${p}.load_balancing_weight`) ?? 1;
    const priority = num(lo.priority ?? 0, `${p}.priority`);
    const loc = optObj(lo.locality, `${p}.locality`);
    const locality = loc === undefined ? '' : [loc.region, loc.zone, loc.sub_zone].map((x) => (typeof x === 'string' ? x : '')).join('/');
    arr(lo.lb_endpoints, `${p}.lb_endpoints`).forEach((e, j) => {
      const ep = `${p}.lb_endpoints[${j}]`;
      const eo = obj(e, ep);
      const endpoint = obj(eo.endpoint, `${ep}.endpoint`);
      const { host, port } = socketAddress(endpoint.address, `${ep}.endpoint.address`);
      if (requireIp && !ipv4.test(host) && !host.includes(':')) invalid(`${ep}.endpoint.address.socket_address.address`, `address is not a valid IPv4 or IPv6 address: ${host}`);
      if (port === 0) invalid(`${ep}.endpoint.address.socket_address.port_value`, 'must not be 0');
      const weight = wrappedNum(eo.load_balancing_weight, `${ep}.load_balancing_weight`) ?? 1;
      if (weight < 1) invalid(`${ep}.load_balancing_weight`, 'must be at least 1');
      endpoints.push({
        key: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
        host,
        port,
        weight: weight * Math.max(1, localityWeight),
        priority,
        healthy: !unhealthy.has(eo.health_status as string),
        locality,
      });
    });
  });
  return { name, endpoints };
}

function thresholds(v: unknown, path: string): CircuitBreakerLimits {
  const defaults = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };
  const o = optObj(v, path);
  if (o === undefined) return defaults;
  const list = arr(o.thresholds, `${path}.thresholds`);
  const idx = list.findIndex((t) => isObj(t) && (t.priority === undefined || t.priority === 'DEFAULT' || t.priority === 0));
  if (idx < 0) return defaults;
  const p = `${path}.thresholds[${idx}]`;
  const t = obj(list[idx], p);
  return {
    maxConnections: wrappedNum(t.max_connections, `${p}.max_connections`) ?? defaults.maxConnections,
    maxPendingRequests: wrappedNum(t.max_pending_requests, `${p}.max_pending_requests`) ?? defaults.maxPendingRequests,
    maxRequests: wrappedNum(t.max_requests, `${p}.max_requests`) ?? defaults.maxRequests,
    maxRetries: wrappedNum(t.max_retries, `${p}.max_retries`) ?? defaults.maxRetries,
  };
}

function outlier(v: unknown, path: string): OutlierDetection | undefined {
  const o = optObj(v, path);
  if (o === undefined) return undefined;
  const enforcing = wrappedNum(o.enforcing_consecutive_5xx, `${path}.enforcing_consecutive_5xx`) ?? 100;
  return {
    consecutive5xx: wrappedNum(o.consecutive_5xx, `${path}.consecutive_5xx`) ?? 5,
    consecutiveGatewayFailure: wrappedNum(o.consecutive_gateway_failure, `${path}.consecutive_gateway_failure`),
    intervalMs: durationMs(o.interval, `${path}.interval`) ?? 10_000,
    baseEjectionMs: durationMs(o.base_ejection_time, `${path}.base_ejection_time`) ?? 30_000,
    maxEjectionPercent: wrappedNum(o.max_ejection_percent, `${path}.max_ejection_percent`) ?? 10,
    enforcing5xx: enforcing / 100,
  };
}

function wantsHttp2(o: Raw, path: string): boolean {
  if (o.http2_protocol_options !== undefined) return true;
  const ext = optObj(o.typed_extension_protocol_options, `${path}.typed_extension_protocol_options`);
  const opts = ext?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  if (opts === undefined) return false;
  const { msg } = anyOf(opts, `${path}.typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions]`);
  const explicit = optObj(msg.explicit_http_config, 'explicit_http_config');
  return explicit?.http2_protocol_options !== undefined || msg.use_downstream_protocol_config !== undefined;
}

/** Compiles and validates a `config.cluster.v3.Cluster`. */
export function compileCluster(v: unknown, path = 'Cluster'): Cluster {
  const o = obj(v, path);
  const name = str(o.name, `${path}.name`);
  if (name.length === 0) invalid(`${path}.name`, 'must not be empty');
  const typeRaw = o.type ?? 'STATIC';
  const type = (typeof typeRaw === 'number' ? ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'][typeRaw] : String(typeRaw)) as Cluster['type'] | undefined;
  if (o.cluster_type !== undefined) invalid(`${path}.cluster_type`, 'custom cluster types (aggregate) are not supported');
  if (type === undefined || !['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'].includes(type)) invalid(`${path}.type`, `unsupported cluster type ${String(typeRaw)}`);
  const lbRaw = o.lb_policy ?? 'ROUND_ROBIN';
  // ORIGINAL_DST clusters balance by the original destination (CLUSTER_PROVIDED).
  const lbPolicy = type === 'ORIGINAL_DST' && (lbRaw === 'CLUSTER_PROVIDED' || lbRaw === 6) ? 'ROUND_ROBIN' : typeof lbRaw === 'number' ? lbByNumber[lbRaw] : lbPolicies[String(lbRaw)];
  if (lbPolicy === undefined) invalid(`${path}.lb_policy`, `unsupported lb_policy ${String(lbRaw)}`);
  let edsName: string | undefined;
  let staticEndpoints: readonly Endpoint[] = [];
  if (type === 'EDS') {
    const eds = obj(o.eds_cluster_config, `${path}.eds_cluster_config`);
    const cfg = optObj(eds.eds_config, `${path}.eds_cluster_config.eds_config`);
    if (cfg === undefined || (cfg.ads === undefined && cfg.self === undefined)) invalid(`${path}.eds_cluster_config.eds_config`, 'must be ads or self');
    edsName = optStr(eds.service_name, `${path}.eds_cluster_config.service_name`) || name;
  } else if (type !== 'ORIGINAL_DST') {
    // A STATIC cluster without endpoints is valid (Istio's BlackHoleCluster): every request gets 503 UH.
    if (o.load_assignment === undefined && type !== 'STATIC') invalid(`${path}.load_assignment`, `is required for a ${type} cluster`);
    if (o.load_assignment !== undefined) staticEndpoints = compileLoadAssignment(o.load_assignment, `${path}.load_assignment`, type === 'STATIC').endpoints;
  }
  const rh = optObj(o.ring_hash_lb_config, `${path}.ring_hash_lb_config`);
  const min = num(wrappedNum(rh?.minimum_ring_size, `${path}.ring_hash_lb_config.minimum_ring_size`) ?? 1024, 'min');
  const max = num(wrappedNum(rh?.maximum_ring_size, `${path}.ring_hash_lb_config.maximum_ring_size`) ?? 8 * 1024 * 1024, 'max');
  if (min > max) invalid(`${path}.ring_hash_lb_config.minimum_ring_size`, 'must not exceed maximum_ring_size');
  const lr = optObj(o.least_request_lb_config, `${path}.least_request_lb_config`);
  const choiceCount = wrappedNum(lr?.choice_count, `${path}.least_request_lb_config.choice_count`) ?? 2;
  if (choiceCount < 2) invalid(`${path}.least_request_lb_config.choice_count`, 'must be at least 2');
  const od = outlier(o.outlier_detection, `${path}.outlier_detection`);
  if (od !== undefined && (od.maxEjectionPercent < 0 || od.maxEjectionPercent > 100)) invalid(`${path}.outlier_detection.max_ejection_percent`, 'must be within [0, 100]');
  return {
    name,
    type,
    edsName,
    staticEndpoints,
    lbPolicy,
    connectTimeoutMs: durationMs(o.connect_timeout, `${path}.connect_timeout`) ?? 5_000,
    limits: thresholds(o.circuit_breakers, `${path}.circuit_breakers`),
    outlier: od,
    tls: compileTransportSocket(o.transport_socket, `${path}.transport_socket`, false),
    http2: wantsHttp2(o, path),
    ringSize: { min, max: Math.min(max, 1 << 16) },
    choiceCount,
  };
}

/** `extensions.transport_sockets.tls.v3.Secret`. */
export interface Secret {
  readonly name: string;
  readonly certificateChain: string | undefined;
  readonly privateKey: string | undefined;
  readonly trustedCa: string | undefined;
  readonly sanMatchers: readonly StringPredicate[];
}

export function compileSecret(v: unknown, path = 'Secret'): Secret {
  const o = obj(v, path);
  const name = str(o.name, `${path}.name`);
  const tc = optObj(o.tls_certificate, `${path}.tls_certificate`);
  const vc = o.validation_context === undefined ? undefined : validationContext(o.validation_context, `${path}.validation_context`);
  if (tc === undefined && vc === undefined) invalid(path, 'one of tls_certificate, validation_context is required');
  const chain = dataSource(tc?.certificate_chain, `${path}.tls_certificate.certificate_chain`);
  const key = dataSource(tc?.private_key, `${path}.tls_certificate.private_key`);
  if (tc !== undefined && (chain === undefined || key === undefined)) invalid(`${path}.tls_certificate`, 'certificate_chain and private_key are required');
  return { name, certificateChain: chain, privateKey: key, trustedCa: vc?.trustedCa, sanMatchers: vc?.sans ?? [] };
}

export { percent };
