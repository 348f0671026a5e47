/**
 * The launcher's restart policy for the processes it runs (the apps, the demo's processes and
 * nats-server), as a kubelet restarts a crashed container: the first restart after
 * `initialMs`, each consecutive one waiting twice as long up to `maxMs`; a process that stayed up
 * `stableMs` starts the back-off over.
 */
export interface RestartPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly stableMs: number;
}

/** Wait before restart number `consecutive` (1 = the first restart after a stable run). */
export function restartDelay(policy: RestartPolicy, consecutive: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, Math.min(consecutive - 1, 30)));
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal?: NodeJS.Signals | null;
}

export interface SupervisorEvents {
  /** The process exited on its own; it is restarted in `delayMs` (restart number `restarts`). */
  readonly restarting: (e: { readonly name: string; readonly exit: ExitInfo; readonly delayMs: number; readonly restarts: number; readonly upMs: number }) => void;
  /** The process was started again (`pid` when known). */
  readonly restarted: (e: { readonly name: string; readonly restarts: number; readonly pid: number | undefined }) => void;
  /** Starting it again failed; another attempt follows after the next back-off. */
  readonly restartFailed: (e: { readonly name: string; readonly err: unknown; readonly restarts: number }) => void;
}

export interface SupervisedOptions<P> {
  readonly name: string;
  /** Starts (or restarts) the process. */
  readonly start: () => P | Promise<P>;
  /** Resolves when that process exits. */
  readonly exited: (p: P) => Promise<ExitInfo>;
  readonly pid: (p: P) => number | undefined;
  readonly policy: RestartPolicy;
  readonly events: SupervisorEvents;
  readonly now?: () => number;
}

/**
 * One process kept running: restarted with back-off whenever it exits, until `stop()`. The
 * caller stops the process itself after `stop()` (which also cancels a pending restart).
 */
export class Supervised<P> {
  private proc: P;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private consecutive = 0;
  private startedAt: number;
  private starting: Promise<void> | undefined;
  restarts = 0;

  private constructor(private readonly opts: SupervisedOptions<P>, first: P) {
    this.proc = first;
    this.startedAt = this.now();
    this.watch(first);
  }

  static async start<P>(opts: SupervisedOptions<P>): Promise<Supervised<P>> {
    return new Supervised(opts, await opts.start());
  }

  /** The process running now (or the last one, while a restart is pending). */
  get current(): P {
    return this.proc;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private watch(p: P): void {
    void this.opts.exited(p).then((exit) => {
      if (this.stopped || p !== this.proc) return;
      const upMs = this.now() - this.startedAt;
      this.consecutive = upMs >= this.opts.policy.stableMs ? 1 : this.consecutive + 1;
      this.schedule(exit, upMs);
    });
  }

  private schedule(exit: ExitInfo, upMs: number): void {
    const delayMs = restartDelay(this.opts.policy, this.consecutive);
    this.restarts++;
    this.opts.events.restarting({ name: this.opts.name, exit, delayMs, restarts: this.restarts, upMs });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.starting = (async () => {
        try {
          const p = await this.opts.start();
          // Stopped meanwhile: still hand it over, so the caller stops it.
          this.proc = p;
          if (this.stopped) return;
          this.startedAt = this.now();
          this.opts.events.restarted({ name: this.opts.name, restarts: this.restarts, pid: this.opts.pid(p) });
          this.watch(p);
        } catch (err) {
          if (this.stopped) return;
          this.opts.events.restartFailed({ name: this.opts.name, err, restarts: this.restarts });
          this.consecutive++;
          this.schedule({ code: null, signal: null }, 0);
        } finally {
          this.starting = undefined;
        }
      })();
    }, delayMs);
  }

  /**
   * No more restarts (a pending one is cancelled; one being started is awaited). Then `current`
   * is the last process started: stopping it is the caller's.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.starting;
  }
}
