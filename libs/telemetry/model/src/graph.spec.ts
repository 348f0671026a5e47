import { describe, expect, it } from 'vitest';
import { AviaryError } from '@aviary/errors';
import { sampleRecord } from './fixtures';
import { parseWindow, ServiceGraph } from './graph';
import { LatencySketch } from './sketch';

const T0 = Date.parse('2025-01-01T00:00:00Z');

/**
 * Known mix over 60 s ending at T0+60s, destination-reported:
 * - productpage-v1 → reviews (v1): 600 requests, all 200, 10 ms, mTLS
 * - productpage-v1 → reviews (v2): 300 requests, 30 of them 503, 100 ms (last 10: 1000 ms), mTLS
 * - unknown (ingress, no identity) → productpage: 120 requests, plaintext, 5 ms
 */
function knownGraph(): ServiceGraph {
  const g = new ServiceGraph({ slotMs: 1000, retentionMs: 600_000, maxEdges: 100 });
  for (let i = 0; i < 600; i++) g.add(sampleRecord({ destinationWorkload: 'reviews-v1', destinationVersion: 'v1', durationMs: 10 }), T0 + (i % 60) * 1000 + 500);
  for (let i = 0; i < 300; i++) {
    g.add(sampleRecord({ responseCode: i < 30 ? 503 : 200, durationMs: i >= 290 ? 1000 : 100 }), T0 + (i % 60) * 1000 + 500);
  }
  for (let i = 0; i < 120; i++) {
    g.add(
      sampleRecord({
        sourceWorkload: '', sourceNamespace: '', sourcePrincipal: '', sourceApp: undefined, sourceVersion: undefined,
        destinationWorkload: 'productpage-v1', destinationApp: 'productpage', destinationVersion: 'v1',
        destinationService: 'productpage.default.svc.cluster.local', connectionSecurityPolicy: 'none', durationMs: 5,
      }),
      T0 + (i % 60) * 1000 + 500,
    );
  }
  return g;
}

describe('ServiceGraph', () => {
  it('computes rates, error ratios, quantiles and mTLS share from a known mix', () => {
    const snap = knownGraph().snapshot(60_000, T0 + 59_999);
    expect(snap.nodes.map((n) => `${n.kind}:${n.id}`)).toEqual([
      'service:service:productpage.default.svc.cluster.local',
      'service:service:reviews.default.svc.cluster.local',
      'unknown:unknown',
      'workload:workload:default/productpage@v1',
      'workload:workload:default/reviews@v1',
      'workload:workload:default/reviews@v2',
    ]);
    const edge = (id: string) => snap.edges.find((e) => e.id === id)!;
    expect(snap.edges).toHaveLength(5);
    const toReviews = edge('workload:default/productpage@v1->service:reviews.default.svc.cluster.local');
    expect(toReviews).toMatchObject({ requests: 900, requestsPerSecond: 15, errorRatio: 0.0333, mtlsShare: 1, protocol: 'http' });
    expect(toReviews.p50Ms).toBeCloseTo(10, -0.5);
    const v2 = edge('service:reviews.default.svc.cluster.local->workload:default/reviews@v2');
    expect(v2).toMatchObject({ requests: 300, requestsPerSecond: 5, errorRatio: 0.1, mtlsShare: 1 });
    expect(Math.abs(v2.p50Ms - 100) / 100).toBeLessThan(0.01);
    expect(Math.abs(v2.p90Ms - 100) / 100).toBeLessThan(0.01);
    expect(Math.abs(v2.p99Ms - 1000) / 1000).toBeLessThan(0.01);
    const v1 = edge('service:reviews.default.svc.cluster.local->workload:default/reviews@v1');
    expect(v1).toMatchObject({ requests: 600, requestsPerSecond: 10, errorRatio: 0, mtlsShare: 1 });
    const ingress = edge('unknown->service:productpage.default.svc.cluster.local');
    expect(ingress).toMatchObject({ requests: 120, requestsPerSecond: 2, errorRatio: 0, mtlsShare: 0 });
    const reviewsNode = snap.nodes.find((n) => n.id === 'service:reviews.default.svc.cluster.local')!;
    expect(reviewsNode).toMatchObject({ name: 'reviews', namespace: 'default', requestsPerSecond: 15, errorRatio: 0.0333 });
    expect(snap.nodes.find((n) => n.id === 'workload:default/reviews@v2')).toMatchObject({ app: 'reviews', version: 'v2' });
  });

  it('windows: a shorter window sees only its slots; traffic ages out', () => {
    const g = knownGraph();
    const last10 = g.snapshot(10_000, T0 + 59_999);
    expect(last10.edges.find((e) => e.id.endsWith('reviews@v1'))).toMatchObject({ requests: 100, requestsPerSecond: 10 });
    expect(g.snapshot(60_000, T0 + 200_000).edges).toHaveLength(0);
  });

  it('clear forgets every node and edge', () => {
    const g = knownGraph();
    expect(g.snapshot(60_000, T0 + 59_999).edges.length).toBeGreaterThan(0);
    g.clear();
    expect(g.snapshot(60_000, T0 + 59_999)).toMatchObject({ nodes: [], edges: [] });
  });

  it('summarises per destination service', () => {
    const sums = knownGraph().summaries(60_000, T0 + 59_999);
    expect(sums.map((s) => [s.service, s.requests, s.requestsPerSecond, s.errorRatio, s.mtlsShare])).toEqual([
      ['productpage.default.svc.cluster.local', 120, 2, 0, 0],
      ['reviews.default.svc.cluster.local', 900, 15, 0.0333, 1],
    ]);
  });

  it('summarises per destination version, so a canary can be judged against its stable version', () => {
    const reviews = knownGraph().summaries(60_000, T0 + 59_999).find((s) => s.service.startsWith('reviews'))!;
    expect(reviews.versions.map((v) => [v.version, v.requests, v.requestsPerSecond, v.errorRatio])).toEqual([
      ['v1', 600, 10, 0],
      ['v2', 300, 5, 0.1],
    ]);
    expect(Math.abs(reviews.versions[1]!.p99Ms - 1000) / 1000).toBeLessThan(0.01);
    expect(reviews.versions[0]!.p99Ms).toBeCloseTo(10, -0.5);
    // No destination version: only the service's totals.
    const productpage = knownGraph().summaries(60_000, T0 + 59_999).find((s) => s.service.startsWith('productpage'))!;
    expect(productpage.versions.map((v) => v.version)).toEqual(['v1']);
  });

  it('keeps two versions of one app apart as two nodes (versioned app), whatever their workload name', () => {
    const g = new ServiceGraph({ slotMs: 1000, retentionMs: 60_000, maxEdges: 100 });
    // The local demo: both versions' workload name is their app label.
    g.add(sampleRecord({ destinationWorkload: 'hello', destinationApp: 'hello', destinationVersion: 'v1', destinationService: 'hello.demo.svc.cluster.local' }), T0);
    g.add(sampleRecord({ destinationWorkload: 'hello', destinationApp: 'hello', destinationVersion: 'v2', destinationService: 'hello.demo.svc.cluster.local' }), T0);
    g.add(sampleRecord({ sourceWorkload: 'istio-ingressgateway', sourceApp: undefined, sourceVersion: undefined, destinationWorkload: 'hello', destinationApp: 'hello', destinationVersion: 'v2', destinationService: 'hello.demo.svc.cluster.local' }), T0);
    const nodes = g.snapshot(60_000, T0).nodes.filter((n) => n.kind === 'workload');
    expect(nodes.map((n) => [n.id, n.name, n.version ?? ''])).toEqual([
      ['workload:default/hello@v1', 'hello', 'v1'],
      ['workload:default/hello@v2', 'hello', 'v2'],
      ['workload:default/istio-ingressgateway', 'istio-ingressgateway', ''],
      ['workload:default/productpage@v1', 'productpage', 'v1'],
    ]);
    expect(nodes.find((n) => n.id.endsWith('hello@v2'))?.requestsPerSecond).toBeCloseTo(2 / 60, 3);
  });

  it('gives per-service timeseries in steps', () => {
    const ts = knownGraph().timeseries(60_000, 10_000, T0 + 59_999);
    const reviews = ts.find((s) => s.service.startsWith('reviews'))!;
    expect(reviews.stepSeconds).toBe(10);
    expect(reviews.points).toHaveLength(6);
    expect(reviews.points.map((p) => p.requestsPerSecond)).toEqual([15, 15, 15, 15, 15, 15]);
  });

  it('counts a request once when both proxies report it (auto reporter policy)', () => {
    const g = new ServiceGraph({ slotMs: 1000, retentionMs: 60_000, maxEdges: 100 });
    g.add(sampleRecord({ reporter: 'source', connectionSecurityPolicy: 'unknown' }), T0);
    g.add(sampleRecord({ reporter: 'destination' }), T0);
    g.add(sampleRecord({ reporter: 'source', destinationPrincipal: '', destinationWorkload: 'legacy', destinationApp: undefined, destinationVersion: '', destinationService: 'legacy.default.svc.cluster.local' }), T0);
    const snap = g.snapshot(60_000, T0);
    expect(snap.edges.map((e) => [e.id, e.requests])).toEqual([
      ['service:legacy.default.svc.cluster.local->workload:default/legacy', 1],
      ['service:reviews.default.svc.cluster.local->workload:default/reviews@v2', 1],
      ['workload:default/productpage@v1->service:legacy.default.svc.cluster.local', 1],
      ['workload:default/productpage@v1->service:reviews.default.svc.cluster.local', 1],
    ]);
  });

  it('bounds the edge table and drops records older than the retention', () => {
    const g = new ServiceGraph({ slotMs: 1000, retentionMs: 10_000, maxEdges: 2 });
    g.add(sampleRecord(), T0 + 20_000);
    g.add(sampleRecord({ destinationWorkload: 'other', destinationApp: 'other' }), T0 + 20_000);
    expect(g.droppedEdges).toBe(1);
    g.add(sampleRecord(), T0);
    expect(g.droppedLate).toBe(1);
  });
});

describe('LatencySketch', () => {
  it('stays within 1% relative error', () => {
    const s = new LatencySketch();
    for (let i = 1; i <= 1000; i++) s.add(i);
    for (const [q, want] of [[0.5, 500], [0.9, 900], [0.99, 990]] as const) expect(Math.abs(s.quantile(q) - want) / want).toBeLessThan(0.012);
  });
});

describe('parseWindow', () => {
  it('parses durations and rejects bad ones with WINDOW_INVALID', () => {
    expect(parseWindow('60s', 600_000)).toBe(60_000);
    expect(parseWindow('5m', 600_000)).toBe(300_000);
    expect(() => parseWindow('1h', 600_000)).toThrow(AviaryError);
    expect(() => parseWindow('abc', 600_000)).toThrow(/WINDOW|duration/);
    expect(() => parseWindow('500ms', 600_000)).toThrow(/between/);
  });
});
