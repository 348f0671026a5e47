import { Counter, type Registry } from 'prom-client';
import type { Logger } from '@aviary/observability';
import { DropReasons, RecordBatcher } from './batcher';
import type { TelemetryRecord } from './record';

export interface TelemetryPublisherOptions {
  /** Publishes one batch on `aviary.telemetry.v1.requests` (e.g. `bus.publishDurable(Subjects.telemetryRequests, { proxyId, records })`). */
  readonly publish: (records: TelemetryRecord[]) => Promise<unknown>;
  /** Records per batch (default 500, at most 10,000). */
  readonly maxRecords?: number;
  /** A partial batch waits at most this long (default 1000 ms). */
  readonly flushMs?: number;
  /** Records buffered while NATS is slow or away; beyond it records are dropped (default 20 batches). */
  readonly maxBuffered?: number;
  /** Registers `aviary_agent_telemetry_records_dropped_total{reason}`. */
  readonly registry?: Registry;
  readonly logger?: Logger;
}

/**
 * The agent's side of `aviary.telemetry.v1.requests`: a bounded batcher whose drops are counted
 * by reason (`buffer_full`, `publish_failed`) in `aviary_agent_telemetry_records_dropped_total`.
 */
export function createTelemetryPublisher(o: TelemetryPublisherOptions): RecordBatcher<TelemetryRecord> {
  const dropped = new Counter({
    name: 'aviary_agent_telemetry_records_dropped_total',
    help: 'Request records the agent dropped instead of publishing, by reason',
    labelNames: ['reason'],
    registers: o.registry === undefined ? [] : [o.registry],
  });
  for (const reason of DropReasons) dropped.inc({ reason }, 0);
  return new RecordBatcher<TelemetryRecord>({
    maxRecords: o.maxRecords ?? 500,
    flushMs: o.flushMs ?? 1000,
    publish: o.publish,
    ...(o.maxBuffered !== undefined && { maxBuffered: o.maxBuffered }),
    onDropped: (reason, count) => dropped.inc({ reason }, count),
    onError: (err, count) => o.logger?.warn({ err, dropped: count }, 'telemetry batch dropped'),
  });
}
