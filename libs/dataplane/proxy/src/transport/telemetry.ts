import type { ProxyRequestRecord } from './proxy';

export interface BatcherOptions {
  readonly maxRecords: number;
  readonly flushMs: number;
  /** Publishes one batch; a rejection drops the batch (telemetry is best effort) and is reported. */
  readonly publish: (records: ProxyRequestRecord[]) => Promise<unknown>;
  readonly onError?: (err: unknown, dropped: number) => void;
  /** Records held while publishing is slow; beyond this, new records are dropped and counted. */
  readonly maxBuffered?: number;
}

/**
 * Batches request records by size and time. Publishing never blocks the request path; at most
 * one publish is in flight and the buffer is bounded.
 */
export class RecordBatcher {
  private buffer: ProxyRequestRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  dropped = 0;
  published = 0;

  constructor(private readonly opts: BatcherOptions) {}

  add(record: ProxyRequestRecord): void {
    if (this.buffer.length >= (this.opts.maxBuffered ?? this.opts.maxRecords * 20)) {
      this.dropped++;
      return;
    }
    this.buffer.push(record);
    if (this.buffer.length >= this.opts.maxRecords) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.flushMs);
  }

  private kick(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inflight !== undefined || this.buffer.length === 0) return;
    const batch = this.buffer.splice(0, this.opts.maxRecords);
    this.inflight = this.opts
      .publish(batch)
      .then(() => {
        this.published += batch.length;
      })
      .catch((err: unknown) => {
        this.dropped += batch.length;
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
