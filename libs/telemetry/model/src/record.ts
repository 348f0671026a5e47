/**
 * The request record as this library reads it. It mirrors `RequestRecord` in `@aviary/events`
 * (the wire schema, validated by the collector before records get here); a domain library may
 * not import the bus, so the shape is restated and the app checks that the two agree.
 */
export interface TelemetryRecord {
  readonly reporter: 'source' | 'destination';
  readonly sourceWorkload: string;
  readonly sourceNamespace: string;
  readonly sourcePrincipal: string;
  readonly sourceApp?: string;
  readonly sourceVersion?: string;
  readonly destinationWorkload: string;
  readonly destinationNamespace: string;
  readonly destinationPrincipal: string;
  readonly destinationApp?: string;
  readonly destinationService: string;
  readonly destinationVersion: string;
  readonly protocol: 'http' | 'grpc' | 'tcp';
  readonly responseCode: number;
  readonly responseFlags: string;
  readonly connectionSecurityPolicy: 'mutual_tls' | 'none' | 'unknown';
  readonly durationMs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly startTime: string;
  readonly traceId?: string;
  readonly spanId?: string;
  readonly parentSpanId?: string;
}

/**
 * Whether a record counts as an error for the graph and summaries: an HTTP/gRPC response with
 * status >= 500 or no response at all (code 0); a TCP connection that ended with a response
 * flag (Envoy's `UF`, `UO`, …).
 */
export function isErrorRecord(r: TelemetryRecord): boolean {
  if (r.protocol === 'tcp') return r.responseFlags !== '' && r.responseFlags !== '-';
  return r.responseCode >= 500 || r.responseCode === 0;
}

/** `reviews.default.svc.cluster.local` → `reviews`; `reviews` → `reviews`. */
export function serviceShortName(host: string): string {
  const dot = host.indexOf('.');
  return dot === -1 ? host : host.slice(0, dot);
}

/** `reviews.default.svc.cluster.local` → `default`; a bare name falls back to `fallback`. */
export function serviceNamespace(host: string, fallback: string): string {
  const parts = host.split('.');
  return parts.length >= 2 && parts[1] !== '' ? (parts[1] as string) : fallback;
}
