/** Shortest spacing of model builds while store events keep coming. */
export const MIN_BUILD_INTERVAL_MS = 50;

export interface BuildPacerOptions<T> {
  /** Builds the model (timed: its duration spaces the next build). */
  readonly build: () => T;
  /** Hands a build on (not timed); `observedAt` is when the build started. */
  readonly publish: (result: T, observedAt: number) => void;
  readonly minIntervalMs?: number;
  readonly now?: () => number;
}

/**
 * Coalesces store events into model builds: the first request after a quiet spell is built on
 * the next turn of the event loop; while requests keep coming, builds are at least
 * `max(minIntervalMs, 2 × last build time)` apart, so a bulk apply costs a bounded share of CPU
 * in builds instead of one build per event. The xDS server's push debounce (quiet period, max
 * delay) still bounds how late proxies hear of it.
 */
export class BuildPacer<T> {
  private pending = false;
  /** When the last build ended and how long it took (ms). */
  private lastBuildAt = 0;
  private lastBuildMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly minIntervalMs: number;
  private readonly now: () => number;

  constructor(private readonly options: BuildPacerOptions<T>) {
    this.minIntervalMs = options.minIntervalMs ?? MIN_BUILD_INTERVAL_MS;
    this.now = options.now ?? Date.now;
  }

  /** Builds and publishes now. */
  buildNow(): void {
    const observedAt = this.now();
    const result = this.options.build();
    this.lastBuildAt = this.now();
    this.lastBuildMs = this.lastBuildAt - observedAt;
    this.options.publish(result, observedAt);
  }

  /** Asks for a build; requests made before it runs share it. */
  request(): void {
    if (this.pending) return;
    this.pending = true;
    const wait = this.lastBuildAt + Math.max(this.minIntervalMs, 2 * this.lastBuildMs) - this.now();
    const run = () => {
      this.timer = undefined;
      this.immediate = undefined;
      this.pending = false;
      this.buildNow();
    };
    if (wait <= 0) this.immediate = setImmediate(run);
    else this.timer = setTimeout(run, wait);
  }

  /** Drops a requested build that has not run yet. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    this.pending = false;
  }
}
