import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { sampleRecord } from '@aviary/telemetry';
import { createLogger } from '@aviary/observability';
import { Ingestor } from './ingest';
import { startRecordTracer } from './tracing';

const NOW = Date.parse('2025-01-01T00:01:00Z');

function setup(maxSeriesPerMetric = 100) {
  const istio = new Registry();
  const app = new Registry();
  const ingestor = new Ingestor({
    maxSeriesPerMetric,
    graphRetentionMs: 600_000,
    graphMaxEdges: 100,
    graphReporter: 'auto',
    istioRegistries: [istio],
    registry: app,
    tracer: startRecordTracer('', createLogger('test', 'silent')),
    now: () => NOW,
  });
  return { istio, app, ingestor };
}

const LABELS =
  'reporter="destination",source_workload="productpage-v1",source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/bookinfo-productpage",' +
  'source_app="productpage",source_version="v1",source_canonical_service="productpage",source_canonical_revision="v1",destination_workload="reviews-v2",' +
  'destination_workload_namespace="default",destination_principal="spiffe://cluster.local/ns/default/sa/bookinfo-reviews",destination_app="reviews",' +
  'destination_version="v2",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",' +
  'destination_canonical_service="reviews",destination_canonical_revision="v2",request_protocol="http",response_code="200",response_flags="-",connection_security_policy="mutual_tls"';

describe('records in → Istio metric lines out', () => {
  it('renders exact names, types, labels and bucket counts', async () => {
    const { istio, ingestor } = setup();
    ingestor.ingestBatch({
      proxyId: 'sidecar~10.0.0.2~reviews-v2.default~default.svc.cluster.local',
      records: [
        sampleRecord({ durationMs: 3, requestBytes: 0, responseBytes: 50 }),
        sampleRecord({ durationMs: 7, requestBytes: 5, responseBytes: 500 }),
        sampleRecord({ durationMs: 120, requestBytes: 5, responseBytes: 5000 }),
      ],
    });
    const text = await istio.metrics();
    const lines = text.split('\n');
    expect(lines).toContain('# TYPE istio_requests_total counter');
    expect(lines).toContain(`istio_requests_total{${LABELS}} 3`);
    expect(lines).toContain('# TYPE istio_request_duration_milliseconds histogram');
    const durationBuckets = lines.filter((l) => l.startsWith('istio_request_duration_milliseconds_bucket')).map((l) => /le="([^"]+)"} (\d+)$/.exec(l)!.slice(1).join('='));
    expect(durationBuckets).toEqual([
      '0.5=0', '1=0', '5=1', '10=2', '25=2', '50=2', '100=2', '250=3', '500=3', '1000=3', '2500=3', '5000=3', '10000=3', '30000=3',
      '60000=3', '300000=3', '600000=3', '1800000=3', '3600000=3', '+Inf=3',
    ]);
    expect(lines).toContain(`istio_request_duration_milliseconds_bucket{${LABELS},le="5"} 1`);
    expect(lines).toContain(`istio_request_duration_milliseconds_sum{${LABELS}} 130`);
    expect(lines).toContain(`istio_request_duration_milliseconds_count{${LABELS}} 3`);
    const respBuckets = lines.filter((l) => l.startsWith('istio_response_bytes_bucket')).map((l) => /le="([^"]+)"} (\d+)$/.exec(l)!.slice(1).join('='));
    expect(respBuckets).toEqual(['1=0', '10=0', '100=1', '1000=2', '10000=3', '100000=3', '1000000=3', '10000000=3', '100000000=3', '1000000000=3', '+Inf=3']);
    expect(lines).toContain(`istio_request_bytes_bucket{${LABELS},le="1"} 1`);
    expect(lines).toContain(`istio_request_bytes_sum{${LABELS}} 10`);
    for (const name of ['istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total', 'istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total']) {
      expect(lines).toContain(`# TYPE ${name} counter`);
    }
  });

  it('renders tcp records as the istio_tcp_* family', async () => {
    const { istio, ingestor } = setup();
    ingestor.ingestBatch({ proxyId: 'p', records: [sampleRecord({ protocol: 'tcp', responseCode: 0, requestBytes: 10, responseBytes: 300, durationMs: 1000 })] });
    const text = await istio.metrics();
    const tcpLabels = LABELS.replace('request_protocol="http",response_code="200"', 'request_protocol="tcp",response_code="0"');
    expect(text).toContain(`istio_tcp_sent_bytes_total{${tcpLabels}} 300`);
    expect(text).toContain(`istio_tcp_received_bytes_total{${tcpLabels}} 10`);
    expect(text).toContain(`istio_tcp_connections_opened_total{${tcpLabels}} 1`);
    expect(text).toContain(`istio_tcp_connections_closed_total{${tcpLabels}} 1`);
    expect(text).not.toContain('istio_requests_total{');
  });

  it('counts and drops malformed records, keeping the rest of the batch', async () => {
    const { app, istio, ingestor } = setup();
    ingestor.ingestBatch({
      proxyId: 'p',
      records: [sampleRecord(), null, 'x', { ...sampleRecord(), responseCode: 'ok' }, { ...sampleRecord(), traceId: 'XYZ' }, { reporter: 'source' }, sampleRecord()],
    });
    const text = await app.metrics();
    expect(text).toContain('aviary_telemetry_records_dropped_total{reason="not_object"} 2');
    expect(text).toContain('aviary_telemetry_records_dropped_total{reason="schema"} 3');
    expect(text).toContain('aviary_telemetry_records_total 2');
    expect(await istio.metrics()).toContain(`istio_requests_total{${LABELS}} 2`);
  });

  it('caps label sets per metric, overflowing into an "overflow" series that is counted', async () => {
    const { app, istio, ingestor } = setup(2);
    ingestor.ingestBatch({ proxyId: 'p', records: [200, 201, 202, 203, 204].map((code) => sampleRecord({ responseCode: code })) });
    const text = await istio.metrics();
    expect(text.split('\n').filter((l) => l.startsWith('istio_requests_total{'))).toHaveLength(3);
    expect(text).toMatch(/istio_requests_total\{reporter="overflow",source_workload="overflow",.*connection_security_policy="overflow"} 3/);
    const own = await app.metrics();
    expect(own).toContain('aviary_telemetry_series_overflow_total{metric="istio_requests_total"} 3');
    expect(own).toContain('aviary_telemetry_series_overflow_total{metric="istio_response_bytes"} 3');
  });
});
