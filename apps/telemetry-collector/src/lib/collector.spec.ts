import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { parseConfig, telemetryConfig } from '@aviary/config';
import { Bus, type Event } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { createLogger } from '@aviary/observability';
import { runComponent, type RunningComponent } from '@aviary/runtime';
import { sampleRecord } from '@aviary/telemetry';
import { buildCollector, DURABLE_NAME, summaryWindowMs, type Collector, type TelemetryConfig } from './collector';

const logger = createLogger('test', 'silent');

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('summary window (checked at boot)', () => {
  it('is the configured window when the graph retains it, and refuses a longer one naming both variables', () => {
    const parsed = parseConfig(telemetryConfig, ['--summary-window-seconds', '10'], {});
    if (parsed.kind !== 'config') throw new Error('help');
    expect(summaryWindowMs(parsed.config)).toBe(10_000);
    expect(summaryWindowMs({ summaryWindowSeconds: 600, graphRetentionSeconds: 600 })).toBe(600_000);
    expect(() => summaryWindowMs({ summaryWindowSeconds: 601, graphRetentionSeconds: 600 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/AVIARY_SUMMARY_WINDOW_SECONDS \(601\) is longer than AVIARY_GRAPH_RETENTION_SECONDS \(600\)/) }),
    );
  });
});

describe('telemetry-collector against a real NATS', () => {
  let nats: NatsServer;
  let proxy: Bus;
  let config: TelemetryConfig;

  beforeAll(async () => {
    nats = await NatsServer.start();
    proxy = await Bus.connect({ url: nats.url, source: 'test-proxy', logger, registry: new Registry() });
    const parsed = parseConfig(telemetryConfig, [], { AVIARY_NATS_URL: nats.url, AVIARY_ADMIN_PORT: '0', AVIARY_LOG_LEVEL: 'silent', AVIARY_MAX_ACK_PENDING: '4' });
    if (parsed.kind !== 'config') throw new Error('help');
    config = parsed.config;
  });

  afterAll(async () => {
    await proxy?.close();
    await nats?.stop();
  });

  async function start(): Promise<{ running: RunningComponent; collector: Collector }> {
    let collector: Collector | undefined;
    const running = await runComponent({
      spec: telemetryConfig,
      config,
      description: 'test',
      build: async (ctx) => (collector = await buildCollector(ctx, { otlpEndpoint: '' })),
    });
    return { running, collector: collector! };
  }

  /** One batch: `n` good records (every 10th a 503) and one malformed record. */
  async function publishBatch(n: number): Promise<void> {
    const startTime = new Date().toISOString();
    const records: unknown[] = Array.from({ length: n }, (_, i) => sampleRecord({ startTime, responseCode: i % 10 === 0 ? 503 : 200 }));
    records.push({ reporter: 'nobody' });
    await proxy.publishDurable('aviary.telemetry.v1.requests', { proxyId: 'sidecar~10.0.0.9~reviews-v2.default~default.svc.cluster.local', records });
  }

  async function settled(): Promise<boolean> {
    const info = await (await proxy.manager()).consumers.info('AVIARY_TELEMETRY', DURABLE_NAME);
    return info.num_pending === 0 && info.num_ack_pending === 0;
  }

  it('loses nothing across a restart, drops malformed records, serves metrics, graph and summaries', async () => {
    const first = await start();
    for (let i = 0; i < 5; i++) await publishBatch(100);
    await until(() => first.collector.ingestor.count === 500, '500 records in the first run');
    await until(settled, 'the consumer to ack everything');

    const metrics = (await first.running.admin.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/istio_requests_total\{reporter="destination",.*response_code="200",.*\} 450/);
    expect(metrics).toMatch(/istio_requests_total\{reporter="destination",.*response_code="503",.*\} 50/);
    expect(metrics).toContain('aviary_telemetry_records_dropped_total{reason="schema",app="telemetry-collector"} 5');
    const istioOnly = (await first.running.admin.inject({ method: 'GET', url: '/stats/prometheus' })).body;
    expect(istioOnly).toMatch(/^istio_requests_total\{reporter="destination",[^}]*response_code="503",[^}]*connection_security_policy="mutual_tls"\} 50$/m);
    expect(istioOnly).not.toContain('app="telemetry-collector"');

    const graph = (await first.running.admin.inject({ method: 'GET', url: '/api/v1/graph?window=60s' })).json() as {
      nodes: { id: string }[];
      edges: { id: string; requests: number; errorRatio: number; mtlsShare: number; requestsPerSecond: number }[];
    };
    expect(graph.nodes.map((n) => n.id)).toEqual(['service:reviews.default.svc.cluster.local', 'workload:default/productpage@v1', 'workload:default/reviews@v2']);
    expect(graph.edges).toHaveLength(2);
    for (const e of graph.edges) expect(e).toMatchObject({ requests: 500, errorRatio: 0.1, mtlsShare: 1, requestsPerSecond: 8.333 });
    const bad = await first.running.admin.inject({ method: 'GET', url: '/api/v1/graph?window=2d' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'WINDOW_INVALID' });
    const sums = (await first.running.admin.inject({ method: 'GET', url: '/api/v1/services/summaries' })).json() as { services: { service: string; requests: number }[] };
    expect(sums.services).toEqual([expect.objectContaining({ service: 'reviews.default.svc.cluster.local', requests: 500, errorRatio: 0.1 })]);

    const received: Event<'aviary.telemetry.v1.summary'>[] = [];
    const sub = proxy.subscribe('aviary.telemetry.v1.summary', (e) => {
      received.push(e);
    });
    await proxy.nc.flush();
    first.collector.publishSummaries();
    await until(() => received.length === 1, 'a summary on the bus');
    expect(received[0]?.data).toMatchObject({ service: 'reviews.default.svc.cluster.local', namespace: 'default', windowSeconds: 60, requests: 500, errorRatio: 0.1, mtlsShare: 1 });
    expect(received[0]?.data.versions).toEqual([expect.objectContaining({ version: 'v2', requests: 500, errorRatio: 0.1 })]);
    await sub.stop();

    const dashboard = await first.running.admin.inject({ method: 'GET', url: '/' });
    expect(dashboard.statusCode).toBe(302);
    expect(dashboard.headers.location).toBe('/dashboard');

    await first.running.shutdown('test restart');
    // The collector is down: these wait in the stream.
    for (let i = 0; i < 3; i++) await publishBatch(50);

    const second = await start();
    try {
      await until(() => second.collector.ingestor.count === 150, '150 records after the restart');
      await until(settled, 'the consumer to ack everything after the restart');
      expect(second.collector.ingestor.count).toBe(150); // nothing counted twice
      const after = (await second.running.admin.inject({ method: 'GET', url: '/stats/prometheus' })).body;
      expect(after).toMatch(/istio_requests_total\{[^}]*response_code="200"[^}]*\} 135$/m);
    } finally {
      await second.running.shutdown('test done');
    }
  });
});
