import { randomBytes } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '@aviary/observability';
import { DropReasons, RecordBatcher } from './batcher';
import type { TelemetryRecord } from './record';

export interface TelemetryPublisherOptions {
  /**
   * Publishes one batch on `aviary.telemetry.v1.requests`, e.g.
   * `bus.publishDurable(Subjects.telemetryRequests, { proxyId, records }, batchId)`: the batch id
   * is the JetStream message id, so a retry whose first attempt was stored (ack lost) is stored once.
   */
  readonly publish: (records: TelemetryRecord[], batchId: string) => Promise<unknown>;
  /** Records per batch (default 500, at most 10,000). */
  readonly maxRecords?: number;
  /** A partial batch waits at most this long (default 1000 ms). */
  readonly flushMs?: number;
  /** Records held while NATS is slow or away; beyond it records are dropped (default 20 batches). */
  readonly maxBuffered?: number;
  /** Back-off between attempts to publish a failed batch (default 250 ms doubling to 5 s). */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  /** Makes batch ids unique to this proxy (with a random boot nonce added). */
  readonly proxyId?: string;
  /** Registers `aviary_agent_telemetry_records_dropped_total{reason}`, `…_buffered` and `…_publish_retries_total`. */
  readonly registry?: Registry;
  readonly logger?: Logger;
}

/**
 * The agent's side of `aviary.telemetry.v1.requests`: a bounded batcher that holds records while
 * NATS is away and sends them when it returns. Drops are counted by reason (`buffer_full`,
 * `publish_failed`, `shutdown`) in `aviary_agent_telemetry_records_dropped_total`; the records
 * held are the gauge `aviary_agent_telemetry_records_buffered`.
 */
export function createTelemetryPublisher(o: TelemetryPublisherOptions): RecordBatcher<TelemetryRecord> {
  const registers = o.registry === undefined ? [] : [o.registry];
  const dropped = new Counter({
    name: 'aviary_agent_telemetry_records_dropped_total',
    help: 'Request records the agent dropped instead of publishing, by reason',
    labelNames: ['reason'],
    registers,
  });
  const retries = new Counter({
    name: 'aviary_agent_telemetry_publish_retries_total',
    help: 'Telemetry batches whose publish failed and was retried (NATS away or slow)',
    registers,
  });
  for (const reason of DropReasons) dropped.inc({ reason }, 0);
  let failing = false;
  const batcher: RecordBatcher<TelemetryRecord> = new RecordBatcher<TelemetryRecord>({
    maxRecords: o.maxRecords ?? 500,
    flushMs: o.flushMs ?? 1000,
    publish: async (records, batchId) => {
      await o.publish(records, batchId);
      if (failing) o.logger?.info({ buffered: batcher.buffered }, 'telemetry publishing again; sending the records held meanwhile');
      failing = false;
    },
    batchIdPrefix: `${o.proxyId ?? 'proxy'}-${randomBytes(6).toString('hex')}`,
    ...(o.maxBuffered !== undefined && { maxBuffered: o.maxBuffered }),
    ...(o.retry !== undefined && { retry: o.retry }),
    onDropped: (reason, count) => dropped.inc({ reason }, count),
    onError: (err, outcome) => {
      if (outcome.retrying > 0) {
        retries.inc();
        // Once per outage, not per attempt.
        if (!failing) o.logger?.warn({ err, buffered: batcher.buffered }, 'telemetry batch not published; holding records and retrying');
        failing = true;
      } else o.logger?.warn({ err, dropped: outcome.dropped }, 'telemetry batch dropped');
    },
  });
  new Gauge({
    name: 'aviary_agent_telemetry_records_buffered',
    help: 'Request records the agent holds, waiting to be published (bounded by AVIARY_TELEMETRY_MAX_BUFFERED)',
    registers,
    collect() {
      this.set(batcher.buffered);
    },
  });
  return batcher;
}
