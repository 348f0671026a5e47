import { AviaryError } from '@aviary/errors';

export interface BatcherOptions<R> {
  /** Records per published batch (≤ 10,000, the batch schema's bound). */
  readonly maxRecords: number;
  /** A partial batch waits at most this long. */
  readonly flushMs: number;
  /** Publishes one batch; a rejection drops the batch (telemetry is best effort) and is reported. */
  readonly publish: (records: R[]) => Promise<unknown>;
  /** Records held while publishing is slow; beyond this, new records are dropped and counted. Default 20 batches. */
  readonly maxBuffered?: number;
  readonly onError?: (err: unknown, dropped: number) => void;
  /** Called for every dropped record count, by reason (the agent's dropped-records metric). */
  readonly onDropped?: (reason: DropReason, count: number) => void;
}

/** Closed set of reasons the batcher drops records (a metric label). */
export const DropReasons = ['buffer_full', 'publish_failed'] as const;
export type DropReason = (typeof DropReasons)[number];

const MAX_BATCH = 10_000;

/**
 * Batches records by size and time. Adding never blocks or throws; at most one publish is in
 * flight and the buffer is bounded, so a slow or absent NATS costs records, never memory.
 */
export class RecordBatcher<R> {
  private buffer: R[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private readonly maxBuffered: number;
  dropped = 0;
  published = 0;

  constructor(private readonly opts: BatcherOptions<R>) {
    if (!Number.isInteger(opts.maxRecords) || opts.maxRecords < 1 || opts.maxRecords > MAX_BATCH) {
      throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `maxRecords: must be an integer in [1, ${MAX_BATCH}], got ${opts.maxRecords}`, { field: 'maxRecords' });
    }
    if (!(opts.flushMs > 0)) throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `flushMs: must be positive, got ${opts.flushMs}`, { field: 'flushMs' });
    this.maxBuffered = opts.maxBuffered ?? opts.maxRecords * 20;
    if (!Number.isInteger(this.maxBuffered) || this.maxBuffered < opts.maxRecords) {
      throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `maxBuffered: must be an integer ≥ maxRecords (${opts.maxRecords}), got ${this.maxBuffered}`, { field: 'maxBuffered' });
    }
  }

  /** Records waiting to be published. */
  get buffered(): number {
    return this.buffer.length;
  }

  add(record: R): void {
    if (this.buffer.length >= this.maxBuffered) {
      this.drop('buffer_full', 1);
      return;
    }
    this.buffer.push(record);
    if (this.buffer.length >= this.opts.maxRecords) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.flushMs);
  }

  private drop(reason: DropReason, count: number): void {
    this.dropped += count;
    this.opts.onDropped?.(reason, count);
  }

  private kick(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inflight !== undefined || this.buffer.length === 0) return;
    const batch = this.buffer.splice(0, this.opts.maxRecords);
    this.inflight = Promise.resolve()
      .then(() => this.opts.publish(batch))
      .then(() => {
        this.published += batch.length;
      })
      .catch((err: unknown) => {
        this.drop('publish_failed', batch.length);
        this.opts.onError?.(err, batch.length);
      })
      .finally(() => {
        this.inflight = undefined;
        if (this.buffer.length >= this.opts.maxRecords) this.kick();
        else if (this.buffer.length > 0) this.timer ??= setTimeout(() => this.kick(), this.opts.flushMs);
      });
  }

  /** Publishes whatever is buffered (shutdown). */
  async flush(): Promise<void> {
    while (this.buffer.length > 0 || this.inflight !== undefined) {
      this.kick();
      await this.inflight;
    }
  }
}
