import { createHash } from 'node:crypto';
import type { Static } from 'typebox';
import type { RequestRecord } from '@aviary/events';
import { AlsTag } from '@aviary/xds-translate';
import type { AccessLogCommon, Duration, HttpAccessLogEntry, TcpAccessLogEntry, Timestamp } from './entry';

/** One record on `aviary.telemetry.v1.requests` (the wire schema of `@aviary/events`). */
export type TelemetryRecord = Static<typeof RequestRecord>;

/** Who the proxy is: the side of every record the entry itself cannot tell. */
export interface ProxyIdentity {
  readonly namespace: string;
  /** Workload (Deployment / WorkloadEntry) name. */
  readonly workload: string;
  /** The workload's labels; `app`/`version` (or Istio's canonical labels) become the record's app and version. */
  readonly labels: Readonly<Record<string, string>>;
  /** The proxy's SPIFFE id; the source principal of what it sends. Empty: no workload certificate. */
  readonly principal: string;
}

/** Closed set of reasons an entry yields no record (a metric label). */
export const SkipReasons = ['no_reporter', 'intermediate'] as const;
export type SkipReason = (typeof SkipReasons)[number];

export type Mapped = { readonly record: TelemetryRecord } | { readonly skip: SkipReason };

/**
 * Envoy's `ResponseFlags` fields in the order Envoy prints them, with their short names
 * (`%RESPONSE_FLAGS%`). `unauthorized_details` (ext_authz) is `UAEX`.
 */
const RESPONSE_FLAGS: readonly (readonly [string, string])[] = [
  ['failed_local_healthcheck', 'LH'],
  ['no_healthy_upstream', 'UH'],
  ['upstream_request_timeout', 'UT'],
  ['local_reset', 'LR'],
  ['upstream_remote_reset', 'UR'],
  ['upstream_connection_failure', 'UF'],
  ['upstream_connection_termination', 'UC'],
  ['upstream_overflow', 'UO'],
  ['no_route_found', 'NR'],
  ['delay_injected', 'DI'],
  ['fault_injected', 'FI'],
  ['rate_limited', 'RL'],
  ['unauthorized_details', 'UAEX'],
  ['rate_limit_service_error', 'RLSE'],
  ['downstream_connection_termination', 'DC'],
  ['upstream_retry_limit_exceeded', 'URX'],
  ['stream_idle_timeout', 'SI'],
  ['invalid_envoy_request_headers', 'IH'],
  ['downstream_protocol_error', 'DPE'],
  ['upstream_max_stream_duration_reached', 'UMSDR'],
  ['response_from_cache_filter', 'RFCF'],
  ['no_filter_config_found', 'NFCF'],
  ['duration_timeout', 'DT'],
  ['upstream_protocol_error', 'UPE'],
  ['no_cluster_found', 'NC'],
  ['overload_manager', 'OM'],
  ['dns_resolution_failure', 'DF'],
  ['downstream_remote_reset', 'DR'],
];

/** `UF,URX`, or `-` when no flag is set (Envoy's spelling). */
export function responseFlagsOf(flags: Readonly<Record<string, unknown>> | undefined): string {
  if (flags === undefined) return '-';
  const set = RESPONSE_FLAGS.filter(([field]) => {
    const v = flags[field];
    return v === true || (typeof v === 'object' && v !== null);
  }).map(([, short]) => short);
  return set.length === 0 ? '-' : set.join(',').slice(0, MAX_FLAGS);
}

// The wire schema's bounds (RequestRecord): longer values are cut rather than the record lost.
const MAX_LABEL = 253;
const MAX_PRINCIPAL = 2048;
const MAX_FLAGS = 64;
const label = (v: string | undefined): string => (v ?? '').slice(0, MAX_LABEL);
const principal = (v: string | undefined): string => (v ?? '').slice(0, MAX_PRINCIPAL);

function ms(d: Duration | undefined): number | undefined {
  if (d === undefined) return undefined;
  return (d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
}

function isoTime(t: Timestamp | undefined): string {
  const millis = Math.floor((t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6);
  return new Date(millis).toISOString();
}

/** `spiffe://<td>/ns/<ns>/sa/<sa>` → `<ns>`; anything else → ''. */
export function spiffeNamespace(principal: string): string {
  return /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(principal)?.[1] ?? '';
}

function spiffeUri(sans: readonly { uri?: string }[] | undefined): string {
  return sans?.find((s) => s.uri?.startsWith('spiffe://') === true)?.uri ?? '';
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` → the host; other clusters → ''. */
export function serviceOfCluster(cluster: string | undefined): string {
  const parts = (cluster ?? '').split('|');
  return parts.length === 4 && parts[0] === 'outbound' ? (parts[3] ?? '') : '';
}

/** `reviews:9080` → `reviews`; `[::1]:80` → `[::1]`. */
function hostOfAuthority(authority: string | undefined): string {
  const a = authority ?? '';
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(a);
  return m?.[1] ?? a;
}

/** Istio's `istio.workload` value `<workload>;<namespace>;<app>;<version>;<cluster>`. */
function parseWorkload(value: string | undefined): { workload: string; namespace: string; app: string; version: string } {
  const [workload = '', namespace = '', app = '', version = ''] = (value ?? '').split(';');
  return { workload, namespace, app, version };
}

/** Envoy writes `-` for an unset `%ENVIRONMENT(...)%`. */
const peerWorkload = (v: string | undefined): string => (v === undefined || v === '-' ? '' : v);

const appOf = (labels: Readonly<Record<string, string>>): string | undefined => labels['service.istio.io/canonical-name'] ?? labels['app'];
const versionOf = (labels: Readonly<Record<string, string>>): string | undefined => labels['service.istio.io/canonical-revision'] ?? labels['version'];

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZEROS = /^0+$/;

interface Trace {
  readonly traceId?: string;
  readonly spanId?: string;
  readonly parentSpanId?: string;
}

function parseTraceparent(value: string | undefined): { traceId: string; spanId: string } | undefined {
  const m = TRACEPARENT.exec((value ?? '').trim().toLowerCase());
  if (m === null || m[1] === 'ff' || ZEROS.test(m[2]!) || ZEROS.test(m[3]!)) return undefined;
  return { traceId: m[2]!, spanId: m[3]! };
}

function derivedSpanId(traceId: string, streamKey: string, reporter: string): string {
  const id = createHash('sha256').update(`${traceId}|${streamKey}|${reporter}`).digest('hex').slice(0, 16);
  return ZEROS.test(id) ? '0000000000000001' : id;
}

/**
 * The hop's span in W3C trace context. pilot runs Envoy's tracer on every HCM, so the logged
 * `traceparent` (read after Envoy forwarded the request) names this hop's span, and
 * `parent_traceparent` (copied before) the caller's span: each hop is a span whose parent is the
 * previous hop. When Envoy did not forward (a direct response) or did not trace, the logged
 * header is the caller's: the hop's span id is then derived from the stream id and reporter,
 * with the caller's span as parent. Without any valid `traceparent` the trace is the
 * `x-request-id` (a UUID Envoy generates at the edge and every hop keeps), with no parent.
 */
function traceOf(logged: string | undefined, incoming: string | undefined, requestId: string | undefined, streamKey: string, reporter: string): Trace {
  const own = parseTraceparent(logged);
  const parent = parseTraceparent(incoming);
  if (own !== undefined && (parent === undefined || own.spanId !== parent.spanId)) {
    return { traceId: own.traceId, spanId: own.spanId, ...(parent !== undefined && parent.traceId === own.traceId && { parentSpanId: parent.spanId }) };
  }
  if (own !== undefined) return { traceId: own.traceId, spanId: derivedSpanId(own.traceId, streamKey, reporter), parentSpanId: own.spanId };
  const hex = (requestId ?? '').replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex) || ZEROS.test(hex)) return {};
  return { traceId: hex, spanId: derivedSpanId(hex, streamKey, reporter) };
}

/** Periodic/intermediate entries (and anything but the end of a stream) are not requests. */
function intermediate(c: AccessLogCommon): boolean {
  if (c.intermediate_log_entry === true) return true;
  const t = c.access_log_type;
  return t !== undefined && t !== 'NotSet' && t !== 'DownstreamEnd' && t !== 'TcpConnectionEnd';
}

interface Parties {
  readonly reporter: 'source' | 'destination';
  readonly side: Pick<
    TelemetryRecord,
    | 'sourceWorkload'
    | 'sourceNamespace'
    | 'sourcePrincipal'
    | 'sourceApp'
    | 'sourceVersion'
    | 'destinationWorkload'
    | 'destinationNamespace'
    | 'destinationPrincipal'
    | 'destinationApp'
    | 'destinationService'
    | 'destinationVersion'
    | 'connectionSecurityPolicy'
  >;
}

/**
 * Who talked to whom. The destination reporter (inbound) knows itself, the peer's certificate
 * (source principal and namespace) and, on mutual TLS only, the workload name the calling proxy
 * sent (`peer_workload`; empty, Istio's `unknown`, otherwise). The source reporter (outbound, gateway) knows itself and the
 * upstream host's metadata (pilot's EDS), and the cluster's TLS mode.
 */
function partiesOf(c: AccessLogCommon, self: ProxyIdentity, authority: string | undefined): Parties | undefined {
  const tags = c.custom_tags ?? {};
  const reporter = tags[AlsTag.reporter];
  const selfApp = appOf(self.labels);
  const selfVersion = versionOf(self.labels);
  if (reporter === 'destination') {
    const tls = c.tls_properties;
    const peer = spiffeUri(tls?.peer_certificate_properties?.subject_alt_name);
    const mutual = peer !== '';
    return {
      reporter,
      side: {
        sourceWorkload: mutual ? label(peerWorkload(tags[AlsTag.peerWorkload])) : '',
        sourceNamespace: label(spiffeNamespace(peer)),
        sourcePrincipal: principal(peer),
        destinationWorkload: label(self.workload),
        destinationNamespace: label(self.namespace),
        destinationPrincipal: mutual ? principal(spiffeUri(tls?.local_certificate_properties?.subject_alt_name) || self.principal) : '',
        ...(selfApp !== undefined && { destinationApp: label(selfApp) }),
        destinationService: label(tags[AlsTag.destinationService] || hostOfAuthority(authority)),
        destinationVersion: label(selfVersion),
        connectionSecurityPolicy: mutual ? 'mutual_tls' : 'none',
      },
    };
  }
  if (reporter === 'source') {
    const upstream = parseWorkload(tags[AlsTag.upstreamWorkload]);
    const tlsMode = tags[AlsTag.upstreamTls] ?? '';
    const cluster = c.upstream_cluster ?? '';
    const mutual = tlsMode === 'ISTIO_MUTUAL' || tlsMode === 'MUTUAL' || (tlsMode === 'AUTO' && tags[AlsTag.upstreamTlsMode] === 'istio');
    const policy = mutual ? 'mutual_tls' : cluster === '' ? 'unknown' : 'none';
    return {
      reporter,
      side: {
        sourceWorkload: label(self.workload),
        sourceNamespace: label(self.namespace),
        sourcePrincipal: principal(self.principal),
        ...(selfApp !== undefined && { sourceApp: label(selfApp) }),
        ...(selfVersion !== undefined && { sourceVersion: label(selfVersion) }),
        destinationWorkload: label(upstream.workload),
        destinationNamespace: label(upstream.namespace),
        // The host's own principal, else the one all the cluster's endpoints share (pilot puts it there then).
        destinationPrincipal: mutual ? principal(tags[AlsTag.upstreamPrincipal] || tags[AlsTag.upstreamClusterPrincipal]) : '',
        ...(upstream.app !== '' && { destinationApp: label(upstream.app) }),
        destinationService: label(serviceOfCluster(cluster) || hostOfAuthority(authority)),
        destinationVersion: label(upstream.version),
        connectionSecurityPolicy: policy,
      },
    };
  }
  return undefined;
}

/** One HTTP request (Envoy's `HTTPAccessLogEntry`) as a request record, from `self`'s point of view. */
export function recordFromHttp(e: HttpAccessLogEntry, self: ProxyIdentity): Mapped {
  const c = e.common_properties ?? {};
  if (intermediate(c)) return { skip: 'intermediate' };
  const req = e.request ?? {};
  const parties = partiesOf(c, self, req.authority);
  if (parties === undefined) return { skip: 'no_reporter' };
  const headers = req.request_headers ?? {};
  const grpc = (headers['content-type'] ?? '').toLowerCase().startsWith('application/grpc');
  const streamKey = c.stream_id || `${req.request_id ?? ''}|${c.start_time?.seconds ?? 0}.${c.start_time?.nanos ?? 0}`;
  return {
    record: {
      reporter: parties.reporter,
      ...parties.side,
      protocol: grpc ? 'grpc' : 'http',
      responseCode: Math.min(999, Math.max(0, e.response?.response_code?.value ?? 0)),
      responseFlags: responseFlagsOf(c.response_flags),
      durationMs: Math.min(86_400_000, ms(c.duration) ?? ms(c.time_to_last_downstream_tx_byte) ?? 0),
      requestBytes: req.request_body_bytes ?? 0,
      responseBytes: e.response?.response_body_bytes ?? 0,
      startTime: isoTime(c.start_time),
      ...traceOf(headers['traceparent'], c.custom_tags?.[AlsTag.parentTraceparent], req.request_id, streamKey, parties.reporter),
    },
  };
}

/** One TCP connection (Envoy's `TCPAccessLogEntry`) as a request record: code 0, bytes from and to the client. */
export function recordFromTcp(e: TcpAccessLogEntry, self: ProxyIdentity): Mapped {
  const c = e.common_properties ?? {};
  if (intermediate(c)) return { skip: 'intermediate' };
  const parties = partiesOf(c, self, undefined);
  if (parties === undefined) return { skip: 'no_reporter' };
  return {
    record: {
      reporter: parties.reporter,
      ...parties.side,
      protocol: 'tcp',
      responseCode: 0,
      responseFlags: responseFlagsOf(c.response_flags),
      durationMs: Math.min(86_400_000, ms(c.duration) ?? ms(c.time_to_last_downstream_tx_byte) ?? 0),
      requestBytes: e.connection_properties?.received_bytes ?? 0,
      responseBytes: e.connection_properties?.sent_bytes ?? 0,
      startTime: isoTime(c.start_time),
    },
  };
}
