import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { parseConfig, telemetryConfig } from '@aviary/config';
import { Bus, type Event } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { createLogger } from '@aviary/observability';
import { runComponent, type RunningComponent } from '@aviary/runtime';
import { sampleRecord } from '@aviary/telemetry';
import { buildCollector, DURABLE_NAME, durableName, REPLICA_DURABLE_INACTIVE_MS, summaryWindowMs, type Collector, type TelemetryConfig } from './collector';

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

describe('durable name', () => {
  it('one collector shares "telemetry-collector"; a replica has its own', () => {
    expect(durableName({ replicaId: '' })).toBe(DURABLE_NAME);
    expect(durableName({ replicaId: 'collector-2' })).toBe('telemetry-collector-collector-2');
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

  async function start(overrides: Partial<TelemetryConfig> = {}): Promise<{ running: RunningComponent; collector: Collector }> {
    let collector: Collector | undefined;
    const running = await runComponent({
      spec: telemetryConfig,
      config: { ...config, ...overrides },
      description: 'test',
      build: async (ctx) => (collector = await buildCollector(ctx, { otlpEndpoint: '' })),
    });
    return { running, collector: collector! };
  }

  /** One batch: `n` good records (every 10th a 503) and one malformed record. */
  async function publishBatch(n: number, destinationService = 'reviews.default.svc.cluster.local'): Promise<void> {
    const startTime = new Date().toISOString();
    const records: unknown[] = Array.from({ length: n }, (_, i) => sampleRecord({ startTime, destinationService, responseCode: i % 10 === 0 ? 503 : 200 }));
    records.push({ reporter: 'nobody' });
    await proxy.publishDurable('aviary.telemetry.v1.requests', { proxyId: 'sidecar~10.0.0.9~reviews-v2.default~default.svc.cluster.local', records });
  }

  async function settled(durable = DURABLE_NAME): Promise<boolean> {
    const info = await (await proxy.manager()).consumers.info('AVIARY_TELEMETRY', durable);
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

  it('replicas: each consumes every record; a replica rebuilds its graph from the stream without counting anything twice', async () => {
    const replica = { summaryWindowSeconds: 60, graphRetentionSeconds: 600 };
    // A service of its own: the stream also holds the records the test above published.
    const SERVICE = 'ratings.default.svc.cluster.local';
    const graphRequests = (r: { collector: Collector }): number => r.collector.ingestor.graph.summaries(60_000, Date.now()).find((x) => x.service === SERVICE)?.requests ?? 0;
    const counted = async (r: { running: RunningComponent }): Promise<number> => {
      const text = (await r.running.admin.inject({ method: 'GET', url: '/stats/prometheus' })).body;
      return text.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes(`destination_service="${SERVICE}"`)).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    };
    // Stored before any replica exists: a new replica puts them in its graph, not its counters.
    await publishBatch(50, SERVICE);
    const a = await start({ ...replica, replicaId: 'a' });
    const b = await start({ ...replica, replicaId: 'b' });
    const summaries: Event<'aviary.telemetry.v1.summary'>[] = [];
    const sub = proxy.subscribe('aviary.telemetry.v1.summary', (e) => void (e.data.service === SERVICE && summaries.push(e)));
    await proxy.nc.flush();
    const bothSettled = async (): Promise<boolean> => (await settled('telemetry-collector-a')) && (await settled('telemetry-collector-b'));
    try {
      expect([graphRequests(a), graphRequests(b)]).toEqual([50, 50]);
      expect([await counted(a), await counted(b)]).toEqual([0, 0]);
      for (let i = 0; i < 3; i++) await publishBatch(50, SERVICE);
      await until(bothSettled, 'both durables to ack everything');
      expect([graphRequests(a), graphRequests(b)]).toEqual([200, 200]);
      expect([await counted(a), await counted(b)]).toEqual([150, 150]);
      a.collector.publishSummaries();
      b.collector.publishSummaries();
      await until(() => summaries.length === 2, 'a summary from each replica');
      expect(summaries.map((e) => e.data.requests)).toEqual([200, 200]);
      const info = await (await proxy.manager()).consumers.info('AVIARY_TELEMETRY', 'telemetry-collector-a');
      expect(info.config.inactive_threshold).toBe(REPLICA_DURABLE_INACTIVE_MS * 1_000_000);

      // Replica a stops; b goes on counting; a comes back: its graph from the stream (up to its
      // last ack) and its durable (everything after), its counters only for what it had not counted.
      await a.running.shutdown('test: replica a down');
      for (let i = 0; i < 2; i++) await publishBatch(50, SERVICE);
      await until(() => graphRequests(b) === 300, 'replica b to count the records sent while a was down');
      const a2 = await start({ ...replica, replicaId: 'a' });
      try {
        await until(() => settled('telemetry-collector-a'), 'the restarted replica to ack everything');
        expect(graphRequests(a2)).toBe(300);
        expect(await counted(a2)).toBe(100);
        expect(await counted(b)).toBe(250);
        expect((await a2.running.admin.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      } finally {
        await a2.running.shutdown('test done');
      }
    } finally {
      await sub.stop();
      await b.running.shutdown('test done');
    }
  });
});
