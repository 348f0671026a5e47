import { Registry } from 'prom-client';
import type { telemetryConfig, ConfigOf, CommonConfig } from '@aviary/config';
import { AviaryError } from '@aviary/errors';
import { Subjects, type Stoppable } from '@aviary/events';
import type { Component, ComponentContext } from '@aviary/runtime';
import { telemetryRoutes } from './api';
import { CanaryTimeline } from './canaries';
import { Ingestor, startRecordTracer } from '@aviary/telemetry-ingest';

export type TelemetryConfig = ConfigOf<typeof telemetryConfig> & CommonConfig;

/** The durable consumer's name: its position in the stream survives a restart. */
export const DURABLE_NAME = 'telemetry-collector';

/** Attempts (1 s apart) to read the graph back from the stream at startup before giving up (the process exits and is restarted). */
const STARTUP_ATTEMPTS = 30;

/** How long nats-server keeps a replica's durable consumer once nothing pulls from it: the stream's max age (after that it holds nothing to resume). */
export const REPLICA_DURABLE_INACTIVE_MS = 3_600_000;

/**
 * Where a collector reads the request records from. One collector: the shared durable
 * `telemetry-collector`, from the stream's start. A replica (`replicaId` set): a durable of its
 * own, `telemetry-collector-<replicaId>`, so every replica consumes every record (the stream fans
 * out; replicas do not split it) and holds the whole graph and metrics. nats-server removes a
 * replica's durable an hour after nothing pulls from it (a Deployment's pod names change on every
 * rollout).
 */
export function durableName(config: Pick<TelemetryConfig, 'replicaId'>): string {
  return config.replicaId === '' ? DURABLE_NAME : `${DURABLE_NAME}-${config.replicaId}`;
}

export interface CollectorOptions {
  /** OTLP endpoint for request spans (empty: no spans). */
  readonly otlpEndpoint: string;
  readonly now?: () => number;
}

export interface Collector extends Component {
  readonly ingestor: Ingestor;
  /** Publishes the per-service summaries now (also done every summary interval). */
  publishSummaries(): void;
}

/**
 * The published summaries' window, checked at boot: the graph must still hold every record of
 * it (a longer window would be cut to the retention silently, and pilot's canary controller
 * judges a step only on windows that begin after the step started, so it must know the real one).
 */
export function summaryWindowMs(config: Pick<TelemetryConfig, 'summaryWindowSeconds' | 'graphRetentionSeconds'>): number {
  if (config.summaryWindowSeconds > config.graphRetentionSeconds) {
    throw new AviaryError(
      'INVALID_ARGUMENT',
      'CONFIG_INVALID',
      `AVIARY_SUMMARY_WINDOW_SECONDS (${config.summaryWindowSeconds}) is longer than AVIARY_GRAPH_RETENTION_SECONDS (${config.graphRetentionSeconds}): the service graph keeps no older records to sum`,
    );
  }
  return config.summaryWindowSeconds * 1000;
}

/**
 * Wires the collector: durable consumer → ingestor (Istio metrics, service graph, spans) →
 * /metrics, /stats/prometheus, REST API, dashboard, and summaries on the bus.
 */
export async function buildCollector(ctx: ComponentContext<TelemetryConfig>, opts: CollectorOptions): Promise<Collector> {
  const { config, bus, logger, registry } = ctx;
  const windowMs = summaryWindowMs(config);
  const now = opts.now ?? Date.now;
  const tracer = startRecordTracer(opts.otlpEndpoint, logger);
  // Istio's metrics live in a registry of their own (no default labels) for /stats/prometheus,
  // and in the app registry so the admin /metrics shows them too.
  const istioRegistry = new Registry();
  const ingestor = new Ingestor({
    maxSeriesPerMetric: config.maxSeriesPerMetric,
    graphRetentionMs: config.graphRetentionSeconds * 1000,
    graphMaxEdges: config.graphMaxEdges,
    graphReporter: config.graphReporter,
    istioRegistries: [istioRegistry, registry],
    registry,
    tracer,
    now,
  });

  const durable = durableName(config);
  let replayed = 0;
  let startSeq: number | undefined;
  if (config.replicaId !== '') {
    // A replica starts with the graph the others hold: the records of the last graph retention
    // that its durable already acknowledged (a restart) or that were stored before it existed (a
    // new replica) are read back into the graph only, so no counter counts a request twice; its
    // durable then delivers everything after them. Until this is done the collector is not ready.
    // Retried: right after the stream was created, or while NATS elects a leader, JetStream
    // answers "temporarily unavailable"; a graph half read is dropped before the next attempt.
    for (let attempt = 1; ; attempt++) {
      try {
        const position = await bus.durablePosition(Subjects.telemetryRequests, durable);
        startSeq = position.ackFloor === undefined ? position.lastSeq + 1 : undefined;
        const upToSeq = position.ackFloor ?? position.lastSeq;
        const startTime = new Date(now() - config.graphRetentionSeconds * 1000);
        ingestor.graph.clear();
        replayed = await bus.replay(Subjects.telemetryRequests, { startTime, upToSeq }, (event) => void ingestor.replayBatch(event.data));
        logger.info({ durable, upToSeq, batches: replayed, from: startTime.toISOString() }, 'service graph rebuilt from the stream');
        break;
      } catch (err) {
        if (attempt >= STARTUP_ATTEMPTS) throw err;
        logger.warn({ err, attempt }, 'could not read the service graph back from the stream; retrying');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }
  // Back-pressure: the handler runs one batch at a time and JetStream stops delivering past
  // maxAckPending unacknowledged batches, so memory is bounded by maxAckPending batches.
  let consumer: Stoppable | undefined = await bus.consumeDurable(
    Subjects.telemetryRequests,
    durable,
    (event) => ingestor.ingestBatch(event.data),
    { maxAckPending: config.maxAckPending, ...(startSeq !== undefined && { startSeq }), ...(config.replicaId !== '' && { inactiveThresholdMs: REPLICA_DURABLE_INACTIVE_MS }) },
  );

  const canaries = new CanaryTimeline();
  let canarySub: Stoppable | undefined = bus.subscribe(Subjects.canaryEvent, (event) => {
    canaries.add(event.data);
  });

  const publishSummaries = (): void => {
    const t = now();
    ingestor.graph.prune(t);
    const time = new Date(t).toISOString();
    for (const s of ingestor.graph.summaries(windowMs, t)) {
      try {
        bus.publish(Subjects.telemetrySummary, {
          service: s.service,
          namespace: s.namespace,
          windowSeconds: s.windowSeconds,
          requests: s.requests,
          requestsPerSecond: s.requestsPerSecond,
          errorRatio: s.errorRatio,
          p50Ms: s.p50Ms,
          p90Ms: s.p90Ms,
          p99Ms: s.p99Ms,
          mtlsShare: s.mtlsShare,
          time,
          versions: s.versions.slice(0, 256).map((v) => ({
            version: v.version.slice(0, 63),
            requests: v.requests,
            requestsPerSecond: v.requestsPerSecond,
            errorRatio: v.errorRatio,
            p50Ms: v.p50Ms,
            p90Ms: v.p90Ms,
            p99Ms: v.p99Ms,
          })),
        });
      } catch (err) {
        logger.warn({ err, service: s.service }, 'summary not published');
      }
    }
  };
  const timer = setInterval(publishSummaries, config.summaryIntervalMs);
  timer.unref();

  return {
    ingestor,
    publishSummaries,
    readiness: [{ name: 'telemetry-consumer', ready: () => consumer !== undefined }],
    routes: telemetryRoutes({ graph: ingestor.graph, canaries, istioRegistry, now }),
    listen: async () => ({ durable, ...(config.replicaId !== '' && { replayedBatches: replayed }), tracing: tracer.enabled }),
    stop: async () => {
      clearInterval(timer);
      await canarySub?.stop();
      canarySub = undefined;
      const c = consumer;
      consumer = undefined;
      await c?.stop();
      await tracer.shutdown();
    },
  };
}
