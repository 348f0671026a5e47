import type { Clock } from '@aviary/xds-cache';

/**
 * Bounds the response bytes handed to grpc-js and not yet written, across all streams. A
 * response is framed into a pooled buffer when grpc-js sends it and the buffer is reused once
 * it is written (framing.ts). When responses are made faster than proxies read them (a cold
 * start: in the bench, some 300 MB were waiting to be written at once), unbounded, nearly every
 * response would need a buffer of its own, i.e. new external memory to V8 and the full
 * collections that it starts. Bounded, the same buffers go round. A response that waits here
 * holds its parts (references to cached resource bytes), not bytes.
 *
 * Responses are sent in the order they were submitted, so one stream's responses keep their
 * order. A stream that stops reading must not hold the budget for all the others: a response
 * counts against it until it is written or for at most `holdMs`, whichever comes first.
 */
export class SendBudget {
  /** Admitted responses not yet written: bytes and admission time, oldest first. */
  private readonly held = new Set<{ readonly bytes: number; readonly at: number }>();
  private heldBytes = 0;
  private readonly waiting: { readonly bytes: number; readonly send: (done: () => void) => void }[] = [];
  private timer: unknown;
  private pumping = false;

  constructor(
    private readonly maxBytes: number,
    private readonly holdMs: number,
    private readonly clock: Clock,
  ) {}

  /**
   * Calls `send` once the response's `bytes` fit (at once if they do; a response larger than
   * the budget is sent when nothing else is held). `send` must call `done` once the response is
   * written, or at once if its stream is gone.
   */
  submit(bytes: number, send: (done: () => void) => void): void {
    this.waiting.push({ bytes, send });
    if (this.waiting.length === 1) this.pump();
  }

  /** Bytes admitted and not yet written (for tests and metrics). */
  get heldSize(): number {
    return this.heldBytes;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    this.expire();
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (this.heldBytes > 0 && this.heldBytes + next.bytes > this.maxBytes) break;
      this.waiting.shift();
      const grant = { bytes: next.bytes, at: this.clock.now() };
      this.held.add(grant);
      this.heldBytes += grant.bytes;
      next.send(() => this.release(grant));
    }
    this.pumping = false;
    if (this.waiting.length > 0 && this.timer === undefined) {
      const oldest = this.held.values().next().value;
      const wait = oldest === undefined ? 0 : Math.max(0, oldest.at + this.holdMs - this.clock.now());
      this.timer = this.clock.setTimer(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
    }
  }

  /** Stops counting responses held longer than `holdMs` (their streams are not reading). */
  private expire(): void {
    const before = this.clock.now() - this.holdMs;
    for (const grant of this.held) {
      if (grant.at > before) break;
      this.forget(grant);
    }
  }

  private forget(grant: { readonly bytes: number; readonly at: number }): boolean {
    if (!this.held.delete(grant)) return false;
    this.heldBytes -= grant.bytes;
    return true;
  }

  private release(grant: { readonly bytes: number; readonly at: number }): void {
    if (this.forget(grant) && this.waiting.length > 0) this.pump();
  }
}
