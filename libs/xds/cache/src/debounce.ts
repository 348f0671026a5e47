/** Timers behind an interface so debouncing is tested without waiting. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface DebouncerOptions<T> {
  /** Fire after this long without a new value. */
  readonly quietMs: number;
  /** Fire at the latest this long after the first value of a burst. */
  readonly maxDelayMs: number;
  readonly merge: (pending: T, next: T) => T;
  readonly flush: (value: T) => void;
  readonly clock?: Clock;
  /**
   * Values that may go out on the leading edge: such a value arriving after a quiet period (no
   * value for `quietMs`, nothing pending) is flushed at the end of the current turn (a 0 ms
   * timer, so values pushed in the same turn go with it) instead of after `quietMs`, as long as
   * the merge of that turn's values still qualifies. Values arriving within `quietMs` of the
   * last one are debounced as usual, so a burst costs one leading flush plus the trailing ones
   * that `quietMs`/`maxDelayMs` allow. Default: none (every value waits for the quiet period).
   */
  readonly leading?: (value: T) => boolean;
}

/**
 * Merges values arriving in a burst and flushes once the burst is quiet for `quietMs`, or
 * `maxDelayMs` after its first value, whichever comes first (Istio's PILOT_DEBOUNCE_AFTER /
 * PILOT_DEBOUNCE_MAX); optionally flushes the first value of a burst at once (`leading`).
 * No value waits longer than `maxDelayMs` after it arrived.
 */
export class Debouncer<T> {
  private pendingValue: { value: T } | undefined;
  private firstAt = 0;
  /** When the last value arrived (-Infinity: never), for the leading edge's quiet period. */
  private lastAt = Number.NEGATIVE_INFINITY;
  /** The pending value is going out on the leading edge (its timer is the 0 ms one). */
  private leadingEdge = false;
  private timer: unknown;
  private readonly clock: Clock;
  /** Flushes so far, and how many of them were on the leading edge (for tests and metrics). */
  flushes = 0;
  leadingFlushes = 0;

  constructor(private readonly options: DebouncerOptions<T>) {
    if (options.quietMs < 0 || options.maxDelayMs < options.quietMs) {
      throw new RangeError('Debouncer needs 0 <= quietMs <= maxDelayMs');
    }
    this.clock = options.clock ?? systemClock;
  }

  get pending(): boolean {
    return this.pendingValue !== undefined;
  }

  push(value: T): void {
    const now = this.clock.now();
    const quiet = now - this.lastAt >= this.options.quietMs;
    this.lastAt = now;
    const leading = this.options.leading;
    if (this.pendingValue) {
      const merged = this.options.merge(this.pendingValue.value, value);
      this.pendingValue = { value: merged };
      // The leading edge's 0 ms timer has not fired: go with it while the merge qualifies.
      if (this.leadingEdge && leading?.(merged)) return;
      this.leadingEdge = false;
      this.clock.clearTimer(this.timer);
    } else {
      this.pendingValue = { value };
      this.firstAt = now;
      if (quiet && leading?.(value)) {
        this.leadingEdge = true;
        this.timer = this.clock.setTimer(() => this.flushNow(), 0);
        return;
      }
    }
    const delay = Math.max(0, Math.min(this.options.quietMs, this.firstAt + this.options.maxDelayMs - now));
    this.timer = this.clock.setTimer(() => this.flushNow(), delay);
  }

  /** Flushes what is pending now (no-op when nothing is). */
  flushNow(): void {
    const pending = this.pendingValue;
    if (!pending) return;
    this.clock.clearTimer(this.timer);
    this.pendingValue = undefined;
    this.timer = undefined;
    this.flushes++;
    if (this.leadingEdge) this.leadingFlushes++;
    this.leadingEdge = false;
    this.options.flush(pending.value);
  }

  cancel(): void {
    this.clock.clearTimer(this.timer);
    this.pendingValue = undefined;
    this.leadingEdge = false;
    this.timer = undefined;
  }
}
