import { Compile } from 'typebox/compile';
import { Counter, type Registry } from 'prom-client';
import { RequestRecord, type EventData } from '@aviary/events';
import { IstioAggregator, ServiceGraph, type TelemetryRecord } from '@aviary/telemetry';
import type { Static } from 'typebox';
import { registerIstioMetrics, registerReadCounter } from './istio-prom';
import type { RecordTracer } from './tracing';

// The wire schema and the domain's view of a record must agree field for field.
type WireRecord = Static<typeof RequestRecord>;
const _sameShape: (r: WireRecord) => TelemetryRecord = (r) => r;
void _sameShape;

const checkRecord = Compile(RequestRecord);

/** Closed set of reasons a record is dropped (the `reason` label). */
export const DropReasons = ['not_object', 'schema'] as const;
export type DropReason = (typeof DropReasons)[number];

export interface IngestOptions {
  readonly maxSeriesPerMetric: number;
  readonly graphRetentionMs: number;
  readonly graphMaxEdges: number;
  readonly graphReporter: 'auto' | 'source' | 'destination';
  /** prom-client registries the istio_* metrics are registered in. */
  readonly istioRegistries: Registry[];
  /** The app registry for the collector's own aviary_telemetry_* metrics. */
  readonly registry: Registry;
  readonly tracer: RecordTracer;
  /** ms since the epoch; records from the future are placed at now. */
  readonly now: () => number;
}

/**
 * Decode → validate → aggregate. Each record in a batch is validated on its own against
 * `RequestRecord`; a bad one is counted by reason and dropped, the rest of the batch counts.
 * Never throws for bad input, so a batch is acknowledged once and never redelivered for it.
 */
export class Ingestor {
  readonly metrics: IstioAggregator;
  readonly graph: ServiceGraph;
  private readonly dropped: Counter<'reason'>;
  private readonly ingested: Counter;
  private readonly batches: Counter;
  private readonly ingestedByReporter = { source: 0, destination: 0 };

  constructor(private readonly opts: IngestOptions) {
    this.metrics = new IstioAggregator({ maxSeriesPerMetric: opts.maxSeriesPerMetric });
    this.graph = new ServiceGraph({ slotMs: 1000, retentionMs: opts.graphRetentionMs, maxEdges: opts.graphMaxEdges, reporter: opts.graphReporter });
    registerIstioMetrics(this.metrics, opts.istioRegistries);
    const registers = [opts.registry];
    this.dropped = new Counter({ name: 'aviary_telemetry_records_dropped_total', help: 'Request records dropped as malformed, by reason', labelNames: ['reason'], registers });
    for (const reason of DropReasons) this.dropped.inc({ reason }, 0);
    this.ingested = new Counter({ name: 'aviary_telemetry_records_total', help: 'Request records aggregated', registers });
    this.batches = new Counter({ name: 'aviary_telemetry_batches_total', help: 'Request record batches processed', registers });
    registerReadCounter<'metric'>('aviary_telemetry_series_overflow_total', 'Records counted in the overflow series because a metric hit its label-set cap, by metric', registers, () =>
      [...this.metrics.overflowed].map(([metric, value]) => ({ labels: { metric }, value })),
    );
    registerReadCounter<'reason'>('aviary_telemetry_graph_dropped_total', 'Records left out of the service graph, by reason (edges: edge table full; late: older than the retention)', registers, () => [
      { labels: { reason: 'edges' }, value: this.graph.droppedEdges },
      { labels: { reason: 'late' }, value: this.graph.droppedLate },
    ]);
  }

  /** Records aggregated since start. */
  get count(): number {
    return this.ingestedByReporter.source + this.ingestedByReporter.destination;
  }

  ingestBatch(batch: EventData<'aviary.telemetry.v1.requests'>): void {
    const now = this.opts.now();
    let ok = 0;
    for (const raw of batch.records) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        this.dropped.inc({ reason: 'not_object' });
        continue;
      }
      if (!checkRecord.Check(raw)) {
        this.dropped.inc({ reason: 'schema' });
        continue;
      }
      this.ingestRecord(raw, batch.proxyId, now);
      ok++;
    }
    this.ingested.inc(ok);
    this.batches.inc();
  }

  /**
   * Rebuilds the service graph from records an earlier process of this collector already counted
   * (read back from the stream at startup): the graph only; no istio_* counter, span or ingest
   * counter moves, so a restart does not count a request twice. Invalid records are skipped.
   */
  replayBatch(batch: EventData<'aviary.telemetry.v1.requests'>): number {
    const now = this.opts.now();
    let ok = 0;
    for (const raw of batch.records) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !checkRecord.Check(raw)) continue;
      const r = raw as TelemetryRecord;
      const end = Date.parse(r.startTime) + r.durationMs;
      this.graph.add(r, end < now ? end : now);
      ok++;
    }
    return ok;
  }

  /** One validated record. */
  ingestRecord(r: TelemetryRecord, proxyId: string, now: number): void {
    this.metrics.add(r);
    const end = Date.parse(r.startTime) + r.durationMs;
    this.graph.add(r, end < now ? end : now); // NaN (unparseable time) compares false: now
    this.opts.tracer.span(r, proxyId);
    this.ingestedByReporter[r.reporter] += 1;
  }
}
