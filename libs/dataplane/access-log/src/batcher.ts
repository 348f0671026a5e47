import { AviaryError, isAviaryError } from '@aviary/errors';

export interface BatcherOptions<R> {
  /** Records per published batch (≤ 10,000, the batch schema's bound). */
  readonly maxRecords: number;
  /** A partial batch waits at most this long. */
  readonly flushMs: number;
  /**
   * Publishes one batch. `batchId` is stable across retries of the same batch (a JetStream
   * `msgID`, so a retry after a lost ack is stored once). A rejection keeps the batch and retries
   * it after a back-off, unless `retryable` says the error is permanent: then the batch is dropped.
   */
  readonly publish: (records: R[], batchId: string) => Promise<unknown>;
  /**
   * Records held while publishing is slow or failing (NATS away), the batch in flight included;
   * beyond this, new records are dropped and counted (`buffer_full`). Default 20 batches.
   */
  readonly maxBuffered?: number;
  /** Retry back-off after a failed publish: doubles from `initialMs` to `maxMs` (defaults 250 ms, 5 s). */
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  /** Whether a failed publish is worth retrying. Default: everything but an invalid event (EVENT_INVALID, EVENT_TOO_LARGE). */
  readonly retryable?: (err: unknown) => boolean;
  /** Prefix of the batch ids (unique per process, e.g. the proxy id and a boot nonce). */
  readonly batchIdPrefix?: string;
  /** A publish failed: `retrying` records kept for the next attempt, or `dropped` when the error is permanent. */
  readonly onError?: (err: unknown, outcome: { readonly dropped: number; readonly retrying: number }) => void;
  /** Called for every dropped record count, by reason (the agent's dropped-records metric). */
  readonly onDropped?: (reason: DropReason, count: number) => void;
}

/**
 * Closed set of reasons the batcher drops records (a metric label): `buffer_full` (the bound was
 * reached while publishing failed or lagged), `publish_failed` (a permanent publish error, e.g.
 * a record the schema refuses), `shutdown` (still unpublished when the flush deadline passed).
 */
export const DropReasons = ['buffer_full', 'publish_failed', 'shutdown'] as const;
export type DropReason = (typeof DropReasons)[number];

const MAX_BATCH = 10_000;

function permanent(err: unknown): boolean {
  return isAviaryError(err) && (err.code === 'EVENT_INVALID' || err.code === 'EVENT_TOO_LARGE');
}

/**
 * Batches records by size and time. Adding never blocks or throws; at most one publish is in
 * flight and the records held (buffered plus in flight) are bounded, so a slow or absent NATS
 * costs records beyond the bound, never memory. A batch whose publish fails stays at the head of
 * the queue and is retried with back-off until it is published: records buffered while NATS was
 * away go out, in order, when it returns.
 */
export class RecordBatcher<R> {
  private buffer: R[] = [];
  private inflightRecords = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private readonly maxBuffered: number;
  private readonly retry: { readonly initialMs: number; readonly maxMs: number };
  private failures = 0;
  private seq = 0;
  /** The id of the batch at the head of the buffer when it was tried and failed (reused on retry). */
  private retryId: { readonly id: string; readonly size: number } | undefined;
  private closed = false;
  dropped = 0;
  published = 0;
  /** Publish attempts that failed and were retried. */
  retried = 0;

  constructor(private readonly opts: BatcherOptions<R>) {
    if (!Number.isInteger(opts.maxRecords) || opts.maxRecords < 1 || opts.maxRecords > MAX_BATCH) {
      throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `maxRecords: must be an integer in [1, ${MAX_BATCH}], got ${opts.maxRecords}`, { field: 'maxRecords' });
    }
    if (!(opts.flushMs > 0)) throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `flushMs: must be positive, got ${opts.flushMs}`, { field: 'flushMs' });
    this.maxBuffered = opts.maxBuffered ?? opts.maxRecords * 20;
    if (!Number.isInteger(this.maxBuffered) || this.maxBuffered < opts.maxRecords) {
      throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `maxBuffered: must be an integer ≥ maxRecords (${opts.maxRecords}), got ${this.maxBuffered}`, { field: 'maxBuffered' });
    }
    this.retry = opts.retry ?? { initialMs: 250, maxMs: 5_000 };
    if (!(this.retry.initialMs > 0 && this.retry.maxMs >= this.retry.initialMs)) {
      throw new AviaryError('INVALID_ARGUMENT', 'ACCESS_LOG_BAD_OPTION', `retry: needs 0 < initialMs ≤ maxMs, got ${this.retry.initialMs} and ${this.retry.maxMs}`, { field: 'retry' });
    }
  }

  /** Records held: waiting to be published or in flight. */
  get buffered(): number {
    return this.buffer.length + this.inflightRecords;
  }

  add(record: R): void {
    if (this.closed || this.buffered >= this.maxBuffered) {
      this.drop(this.closed ? 'shutdown' : 'buffer_full', 1);
      return;
    }
    this.buffer.push(record);
    // While a failed batch waits for its retry, new records only queue behind it.
    if (this.failures > 0) return;
    if (this.buffer.length >= this.opts.maxRecords) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.flushMs);
  }

  private drop(reason: DropReason, count: number): void {
    this.dropped += count;
    this.opts.onDropped?.(reason, count);
  }

  private schedule(ms: number): void {
    this.timer ??= setTimeout(() => this.kick(), ms);
  }

  private kick(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inflight !== undefined || this.buffer.length === 0) return;
    const batch = this.buffer.splice(0, this.opts.maxRecords);
    // A retried batch keeps its id (same records: the head of the queue, at most as many as before).
    const id = this.retryId !== undefined && this.retryId.size === batch.length ? this.retryId.id : `${this.opts.batchIdPrefix ?? 'batch'}-${++this.seq}`;
    this.retryId = undefined;
    this.inflightRecords = batch.length;
    this.inflight = Promise.resolve()
      .then(() => this.opts.publish(batch, id))
      .then(
        () => {
          this.published += batch.length;
          this.failures = 0;
        },
        (err: unknown) => {
          if (this.closed) {
            // Failed after the shutdown flush gave up on it.
            this.drop('shutdown', batch.length);
            this.opts.onError?.(err, { dropped: batch.length, retrying: 0 });
          } else if ((this.opts.retryable ?? ((e: unknown) => !permanent(e)))(err)) {
            this.buffer.unshift(...batch);
            this.retryId = { id, size: batch.length };
            this.failures++;
            this.retried++;
            this.opts.onError?.(err, { dropped: 0, retrying: batch.length });
          } else {
            this.drop('publish_failed', batch.length);
            this.opts.onError?.(err, { dropped: batch.length, retrying: 0 });
          }
        },
      )
      .finally(() => {
        this.inflight = undefined;
        this.inflightRecords = 0;
        if (this.buffer.length === 0 || this.closed) return;
        if (this.failures > 0) this.schedule(Math.min(this.retry.maxMs, this.retry.initialMs * 2 ** (this.failures - 1)));
        else if (this.buffer.length >= this.opts.maxRecords) this.kick();
        else this.schedule(this.opts.flushMs);
      });
  }

  /**
   * Publishes whatever is held (shutdown), trying for at most `timeoutMs`; records still
   * unpublished then are dropped and counted (`shutdown`), and later `add`s are refused.
   */
  async flush(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.buffer.length > 0 || this.inflight !== undefined) && Date.now() < deadline) {
      if (this.inflight === undefined) {
        // Shutting down: retry at once rather than after the back-off.
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = undefined;
        this.kick();
      }
      const inflight = this.inflight as Promise<void> | undefined;
      if (inflight === undefined) break;
      let t: NodeJS.Timeout | undefined;
      await Promise.race([inflight, new Promise<void>((r) => (t = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(t);
      // A failing publish: pause briefly instead of spinning until the deadline.
      if (this.failures > 0 && this.inflight === undefined) await new Promise((r) => setTimeout(r, Math.min(this.retry.initialMs, Math.max(0, deadline - Date.now()))));
    }
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const left = this.buffer.length;
    this.buffer = [];
    if (left > 0) this.drop('shutdown', left);
  }
}
