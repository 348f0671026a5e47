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
}

/**
 * Merges values arriving in a burst and flushes once the burst is quiet for `quietMs`, or
 * `maxDelayMs` after its first value, whichever comes first (Istio's PILOT_DEBOUNCE_AFTER /
 * PILOT_DEBOUNCE_MAX).
 */
export class Debouncer<T> {
  private pendingValue: { value: T } | undefined;
  private firstAt = 0;
  private timer: unknown;
  private readonly clock: Clock;

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
    if (this.pendingValue) {
      this.pendingValue = { value: this.options.merge(this.pendingValue.value, value) };
      this.clock.clearTimer(this.timer);
    } else {
      this.pendingValue = { value };
      this.firstAt = now;
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
    this.options.flush(pending.value);
  }

  cancel(): void {
    this.clock.clearTimer(this.timer);
    this.pendingValue = undefined;
    this.timer = undefined;
  }
}
