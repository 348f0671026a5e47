import type { TelemetryRecord } from './record';

/** A valid record for tests and benchmarks; override what matters. */
export function sampleRecord(over: Partial<TelemetryRecord> = {}): TelemetryRecord {
  return {
    reporter: 'destination',
    sourceWorkload: 'productpage-v1',
    sourceNamespace: 'default',
    sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/bookinfo-productpage',
    sourceApp: 'productpage',
    sourceVersion: 'v1',
    destinationWorkload: 'reviews-v2',
    destinationNamespace: 'default',
    destinationPrincipal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
    destinationApp: 'reviews',
    destinationService: 'reviews.default.svc.cluster.local',
    destinationVersion: 'v2',
    protocol: 'http',
    responseCode: 200,
    responseFlags: '-',
    connectionSecurityPolicy: 'mutual_tls',
    durationMs: 12,
    requestBytes: 0,
    responseBytes: 512,
    startTime: '2025-01-01T00:00:00.000Z',
    ...over,
  };
}
