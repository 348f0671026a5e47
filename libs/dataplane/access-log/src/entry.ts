/**
 * Envoy's access log entries (envoy.data.accesslog.v3) as `decodeStream` returns them: proto
 * field names, 64-bit integers as numbers, enums by name, only the fields Aviary reads.
 */

export interface Timestamp {
  readonly seconds?: number;
  readonly nanos?: number;
}

export type Duration = Timestamp;

export interface SubjectAltName {
  readonly uri?: string;
  readonly dns?: string;
}

export interface CertificateProperties {
  readonly subject_alt_name?: readonly SubjectAltName[];
  readonly subject?: string;
}

export interface TlsProperties {
  readonly tls_version?: string;
  readonly tls_sni_hostname?: string;
  readonly local_certificate_properties?: CertificateProperties;
  readonly peer_certificate_properties?: CertificateProperties;
}

export type ResponseFlagsEntry = Readonly<Record<string, unknown>>;

export interface AccessLogCommon {
  readonly tls_properties?: TlsProperties;
  readonly start_time?: Timestamp;
  readonly time_to_last_downstream_tx_byte?: Duration;
  readonly duration?: Duration;
  readonly upstream_cluster?: string;
  readonly response_flags?: ResponseFlagsEntry;
  readonly custom_tags?: Readonly<Record<string, string>>;
  readonly stream_id?: string;
  readonly intermediate_log_entry?: boolean;
  readonly access_log_type?: string;
  readonly route_name?: string;
}

export interface HttpAccessLogEntry {
  readonly common_properties?: AccessLogCommon;
  readonly protocol_version?: string;
  readonly request?: {
    readonly request_method?: string;
    readonly authority?: string;
    readonly path?: string;
    readonly request_id?: string;
    readonly request_body_bytes?: number;
    readonly request_headers?: Readonly<Record<string, string>>;
  };
  readonly response?: {
    readonly response_code?: { readonly value?: number };
    readonly response_body_bytes?: number;
    readonly response_code_details?: string;
  };
}

export interface TcpAccessLogEntry {
  readonly common_properties?: AccessLogCommon;
  readonly connection_properties?: { readonly received_bytes?: number; readonly sent_bytes?: number };
}

/** envoy.service.accesslog.v3.StreamAccessLogsMessage */
export interface StreamAccessLogsMessage {
  readonly identifier?: { readonly node?: { readonly id?: string }; readonly log_name?: string };
  readonly http_logs?: { readonly log_entry?: readonly HttpAccessLogEntry[] };
  readonly tcp_logs?: { readonly log_entry?: readonly TcpAccessLogEntry[] };
}
