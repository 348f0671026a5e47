import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Envoy's log levels as `%l` prints them, mapped to pino's. */
const LEVELS: Record<string, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
};

/** One line of Envoy's log, as the agent's `--log-format` writes it: `<level>|<logger>|<message>`. */
export const ENVOY_LOG_FORMAT = '%l|%n|%v';

export interface EnvoyLogLine {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly logger: string;
  readonly msg: string;
}

/** Parses a line written with ENVOY_LOG_FORMAT; anything else (a crash trace) is kept as an error line. */
export function parseEnvoyLogLine(line: string): EnvoyLogLine {
  const m = /^(trace|debug|info|warning|error|critical)\|([^|]*)\|(.*)$/.exec(line);
  if (m === null) return { level: 'error', logger: 'envoy', msg: line };
  return { level: LEVELS[m[1] as string] ?? 'info', logger: m[2] as string, msg: m[3] as string };
}

export interface EnvoyLogger {
  trace(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  fatal(obj: object, msg: string): void;
}

export interface SupervisorOptions {
  readonly binary: string;
  readonly args: readonly string[];
  /** Extra environment for Envoy (e.g. ISTIO_META_WORKLOAD_NAME, read by %ENVIRONMENT()% in pilot's config). */
  readonly env?: Readonly<Record<string, string>>;
  readonly logger: EnvoyLogger;
  /** Restart back-off after a crash: first and largest delay (default 1 s, 30 s); reset after `stableMs` of uptime. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number; readonly stableMs: number };
  readonly onExit?: (code: number | null, signal: NodeJS.Signals | null, restartInMs: number | undefined) => void;
  readonly onStart?: (pid: number, restarts: number) => void;
}

/**
 * Runs Envoy as a child process and keeps it running: a crash (any exit not asked for) restarts
 * it after an exponential back-off; its stdout/stderr lines go to the agent's structured log at
 * their own level. `stop()` sends SIGTERM, then SIGKILL after the grace period.
 */
export class EnvoySupervisor {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  restarts = 0;

  constructor(private readonly opts: SupervisorOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    this.stopping = false;
    this.spawnOnce();
  }

  private spawnOnce(): void {
    if (this.stopping) return;
    const startedAt = Date.now();
    // eslint-disable-next-line no-restricted-properties -- Envoy inherits the agent's environment (PATH, HOME); no configuration is read from it here
    const child = spawn(this.opts.binary, [...this.opts.args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.opts.env } });
    this.child = child;
    const log = this.opts.logger;
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream }).on('line', (line) => {
        if (line === '') return;
        const l = parseEnvoyLogLine(line);
        log[l.level]({ envoy: l.logger }, l.msg);
      });
    }
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        log.error({ err, binary: this.opts.binary }, 'cannot start Envoy');
      });
      child.once('close', (code, signal) => {
        resolve();
        if (this.child === child) this.child = undefined;
        if (this.stopping) {
          this.opts.onExit?.(code, signal, undefined);
          return;
        }
        const { initialMs, maxMs, stableMs } = this.opts.backoff ?? { initialMs: 1_000, maxMs: 30_000, stableMs: 60_000 };
        if (Date.now() - startedAt >= stableMs) this.failures = 0;
        this.failures++;
        const delay = Math.min(maxMs, initialMs * 2 ** Math.min(20, this.failures - 1));
        this.opts.onExit?.(code, signal, delay);
        this.timer = setTimeout(() => {
          this.restarts++;
          this.spawnOnce();
        }, delay);
      });
    });
    if (child.pid !== undefined) this.opts.onStart?.(child.pid, this.restarts);
  }

  /** Stops Envoy (no restart): SIGTERM, SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(kill);
  }

  /** Waits for the current process to exit (after `/quitquitquit`, for instance). */
  async waitExit(timeoutMs: number): Promise<boolean> {
    if (!this.running) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const done = await Promise.race([this.exited.then(() => true), timedOut]);
    clearTimeout(timer);
    return done;
  }

  /** Marks the next exit as asked for (no restart), e.g. before `/quitquitquit`. */
  expectExit(): void {
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

/**
 * An Envoy left running by a previous agent that was killed (SIGKILL gives the agent no chance
 * to stop its child, and Envoy does not watch its parent): it would keep serving the listeners
 * with a stale config beside the new one (Envoy binds with SO_REUSEPORT). Reads the pid the
 * previous agent wrote to `pidFile` and ends that process, but only while its command line still
 * names `bootstrapPath` (a reused pid is left alone). Linux (/proc); elsewhere a no-op.
 * Returns the pid it stopped.
 */
export async function reapStaleEnvoy(pidFile: string, bootstrapPath: string, graceMs = 2_000): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  const ours = (): boolean => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(bootstrapPath);
    } catch {
      return false;
    }
  };
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !ours()) return undefined;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return undefined;
  }
  const deadline = Date.now() + graceMs;
  while (ours() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (ours()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    while (ours()) await new Promise((r) => setTimeout(r, 20));
  }
  return pid;
}
