import { serviceNamespace, serviceShortName, type TelemetryRecord } from './record';

/**
 * Istio's standard metric names (istio.io/latest/docs/reference/config/metrics). Existing Istio
 * dashboards and alerts query exactly these.
 */
export const IstioMetricNames = {
  requests: 'istio_requests_total',
  duration: 'istio_request_duration_milliseconds',
  requestBytes: 'istio_request_bytes',
  responseBytes: 'istio_response_bytes',
  tcpSent: 'istio_tcp_sent_bytes_total',
  tcpReceived: 'istio_tcp_received_bytes_total',
  tcpOpened: 'istio_tcp_connections_opened_total',
  tcpClosed: 'istio_tcp_connections_closed_total',
} as const;

export type IstioMetricName = (typeof IstioMetricNames)[keyof typeof IstioMetricNames];

export const HTTP_METRICS: readonly IstioMetricName[] = [IstioMetricNames.requests, IstioMetricNames.duration, IstioMetricNames.requestBytes, IstioMetricNames.responseBytes];
export const TCP_METRICS: readonly IstioMetricName[] = [IstioMetricNames.tcpSent, IstioMetricNames.tcpReceived, IstioMetricNames.tcpOpened, IstioMetricNames.tcpClosed];

/** Istio's default buckets for `istio_request_duration_milliseconds`. */
export const DURATION_BUCKETS_MS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];

/** Istio's default buckets for `istio_request_bytes` and `istio_response_bytes`: 1 … 1e9, ×10. */
export const BYTES_BUCKETS: readonly number[] = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/**
 * Istio's standard labels, in the order they are rendered. Every istio_* series carries all of
 * them; values that are not known are `unknown`, as Istio reports them.
 */
export const ISTIO_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'request_protocol',
  'response_code',
  'response_flags',
  'connection_security_policy',
] as const;

export type IstioLabelName = (typeof ISTIO_LABEL_NAMES)[number];
export type IstioLabels = Readonly<Record<IstioLabelName, string>>;

/** The value every label of the overflow series has. */
export const OVERFLOW_VALUE = 'overflow';

export const OVERFLOW_LABELS: IstioLabels = Object.freeze(
  Object.fromEntries(ISTIO_LABEL_NAMES.map((n) => [n, OVERFLOW_VALUE])) as Record<IstioLabelName, string>,
);

const known = (v: string | undefined): string => (v === undefined || v === '' ? 'unknown' : v);

/** Istio's label set for one record (pure; same record, same labels). */
export function istioLabels(r: TelemetryRecord): IstioLabels {
  const destinationServiceName = r.destinationService === '' ? 'unknown' : serviceShortName(r.destinationService);
  return {
    reporter: r.reporter,
    source_workload: known(r.sourceWorkload),
    source_workload_namespace: known(r.sourceNamespace),
    source_principal: known(r.sourcePrincipal),
    source_app: known(r.sourceApp),
    source_version: known(r.sourceVersion),
    source_canonical_service: known(r.sourceApp || r.sourceWorkload),
    source_canonical_revision: r.sourceVersion || 'latest',
    destination_workload: known(r.destinationWorkload),
    destination_workload_namespace: known(r.destinationNamespace),
    destination_principal: known(r.destinationPrincipal),
    destination_app: known(r.destinationApp),
    destination_version: known(r.destinationVersion),
    destination_service: known(r.destinationService),
    destination_service_name: destinationServiceName,
    destination_service_namespace: known(serviceNamespace(r.destinationService, r.destinationNamespace)),
    destination_canonical_service: known(r.destinationApp || r.destinationWorkload),
    destination_canonical_revision: r.destinationVersion || 'latest',
    request_protocol: r.protocol,
    response_code: String(r.responseCode),
    response_flags: r.responseFlags === '' ? '-' : r.responseFlags,
    connection_security_policy: r.connectionSecurityPolicy,
  };
}

/**
 * A key that identifies a record's label set without deriving it: the raw fields the labels
 * are computed from, joined. Equal keys give equal labels.
 */
export function seriesKey(r: TelemetryRecord): string {
  return (
    r.reporter + '\u0001' + r.sourceWorkload + '\u0001' + r.sourceNamespace + '\u0001' + r.sourcePrincipal + '\u0001' +
    (r.sourceApp ?? '') + '\u0001' + (r.sourceVersion ?? '') + '\u0001' + r.destinationWorkload + '\u0001' +
    r.destinationNamespace + '\u0001' + r.destinationPrincipal + '\u0001' + (r.destinationApp ?? '') + '\u0001' +
    r.destinationVersion + '\u0001' + r.destinationService + '\u0001' + r.protocol + '\u0001' + r.responseCode + '\u0001' +
    r.responseFlags + '\u0001' + r.connectionSecurityPolicy
  );
}
