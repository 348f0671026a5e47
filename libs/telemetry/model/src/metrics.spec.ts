import { describe, expect, it } from 'vitest';
import { sampleRecord } from './fixtures';
import { istioLabels, ISTIO_LABEL_NAMES, OVERFLOW_LABELS } from './istio';
import { IstioAggregator } from './metrics';

describe('istioLabels', () => {
  it('derives the full Istio label set, in order, with unknowns', () => {
    const labels = istioLabels(sampleRecord({ sourceWorkload: '', sourceApp: undefined, sourceVersion: undefined, sourcePrincipal: '', responseFlags: '' }));
    expect(Object.keys(labels)).toEqual([...ISTIO_LABEL_NAMES]);
    expect(labels).toMatchObject({
      reporter: 'destination',
      source_workload: 'unknown',
      source_principal: 'unknown',
      source_app: 'unknown',
      source_canonical_service: 'unknown',
      source_canonical_revision: 'latest',
      destination_service: 'reviews.default.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      request_protocol: 'http',
      response_code: '200',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    });
  });
});

describe('IstioAggregator', () => {
  it('counts requests and fills histogram buckets with le semantics', () => {
    const agg = new IstioAggregator({ maxSeriesPerMetric: 100 });
    for (const d of [0.5, 1, 3, 10, 10.5, 4_000_000]) agg.add(sampleRecord({ durationMs: d, requestBytes: 10, responseBytes: 1001 }));
    const [s] = [...agg.httpSeries()];
    expect(s?.requests).toBe(6);
    // buckets: 0.5 | 1 | 5 | 10 | 25 | … | +Inf
    expect(Array.from(s!.duration.counts.slice(0, 5))).toEqual([1, 1, 1, 1, 1]);
    expect(s!.duration.counts[s!.duration.counts.length - 1]).toBe(1);
    expect(s!.duration.sum).toBe(4_000_025);
    expect(s!.requestBytes.counts[1]).toBe(6); // le=10
    expect(s!.responseBytes.counts[4]).toBe(6); // le=10000
  });

  it('caps distinct label sets and counts the rest in one overflow series', () => {
    const agg = new IstioAggregator({ maxSeriesPerMetric: 3 });
    for (let i = 0; i < 10; i++) agg.add(sampleRecord({ responseCode: 200 + i }));
    agg.add(sampleRecord({ responseCode: 200 })); // an existing series still counts normally
    const series = [...agg.httpSeries()];
    expect(series).toHaveLength(4);
    expect(series.slice(0, 3).map((s) => s.requests)).toEqual([2, 1, 1]);
    expect(series[3]?.labels).toEqual(OVERFLOW_LABELS);
    expect(series[3]?.requests).toBe(7);
    expect(agg.overflowed.get('istio_requests_total')).toBe(7);
    expect(agg.overflowed.get('istio_request_duration_milliseconds')).toBe(7);
  });

  it('turns tcp records into connection and byte counters', () => {
    const agg = new IstioAggregator({ maxSeriesPerMetric: 10 });
    agg.add(sampleRecord({ protocol: 'tcp', responseCode: 0, requestBytes: 100, responseBytes: 2000 }));
    agg.add(sampleRecord({ protocol: 'tcp', responseCode: 0, requestBytes: 1, responseBytes: 2 }));
    const [t] = [...agg.tcpSeries()];
    expect(t).toMatchObject({ sentBytes: 2002, receivedBytes: 101, opened: 2, closed: 2 });
    expect([...agg.httpSeries()]).toHaveLength(0);
  });
});
