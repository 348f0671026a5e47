import type { CircuitBreakerLimits, OutlierDetection } from './cluster';
import type { RetryPolicy } from './routes';

/** Milliseconds, monotonic. Injected so behaviour over time is testable without sleeping. */
export type Clock = () => number;
/** A number in [0, 1). Injected so random choices are deterministic in tests. */
export type Rng = () => number;

/** A deterministic RNG (mulberry32) for tests and reproducible benchmarks. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Token bucket of the local rate limit filter: starts full, adds `tokensPerFill` every
 * `fillIntervalMs` (whole intervals, as Envoy's timer does), never above `maxTokens`.
 */
export class TokenBucket {
  private tokens: number;
  private lastFill: number;

  constructor(
    readonly maxTokens: number,
    readonly tokensPerFill: number,
    readonly fillIntervalMs: number,
    private readonly clock: Clock,
  ) {
    this.tokens = maxTokens;
    this.lastFill = clock();
  }

  private refill(): void {
    const now = this.clock();
    const intervals = Math.floor((now - this.lastFill) / this.fillIntervalMs);
    if (intervals > 0) {
      this.tokens = Math.min(this.maxTokens, this.tokens + intervals * this.tokensPerFill);
      this.lastFill += intervals * this.fillIntervalMs;
    }
  }

  /** Takes one token; false when the bucket is empty. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  get remaining(): number {
    this.refill();
    return this.tokens;
  }

  /** Seconds until the next fill. */
  get resetSeconds(): number {
    const now = this.clock();
    return Math.max(0, Math.ceil((this.lastFill + this.fillIntervalMs - now) / 1000));
  }
}

export type CircuitDecision = 'ok' | 'overflow';

/**
 * Per-cluster circuit breaker counters. `active` requests beyond `maxConnections` are
 * pending (HTTP/1.1: one request per connection); overflowing max_requests or
 * max_pending_requests gives a 503 with response flag UO.
 */
export class CircuitBreaker {
  active = 0;
  retries = 0;
  constructor(private limits: CircuitBreakerLimits) {}

  update(limits: CircuitBreakerLimits): void {
    this.limits = limits;
  }

  get pending(): number {
    return Math.max(0, this.active - this.limits.maxConnections);
  }

  tryAcquire(): CircuitDecision {
    if (this.active >= this.limits.maxRequests) return 'overflow';
    if (this.active >= this.limits.maxConnections && this.pending >= this.limits.maxPendingRequests) return 'overflow';
    this.active++;
    return 'ok';
  }

  release(): void {
    this.active = Math.max(0, this.active - 1);
  }

  tryRetry(): boolean {
    if (this.retries >= this.limits.maxRetries) return false;
    this.retries++;
    return true;
  }

  releaseRetry(): void {
    this.retries = Math.max(0, this.retries - 1);
  }
}

interface HostOutlierState {
  consecutive5xx: number;
  consecutiveGateway: number;
  ejectedUntil: number;
  ejections: number;
}

/**
 * Outlier detection, consecutive-5xx (and consecutive gateway failure) ejection. An ejected host
 * stays out for `baseEjectionMs × times ejected`; at most `maxEjectionPercent` of the hosts are
 * ejected at once, but at least one may be (Envoy's rule).
 */
export class OutlierDetector {
  private readonly hosts = new Map<string, HostOutlierState>();
  constructor(
    private config: OutlierDetection,
    private readonly clock: Clock,
    private readonly rng: Rng,
  ) {}

  update(config: OutlierDetection): void {
    this.config = config;
  }

  private state(key: string): HostOutlierState {
    let s = this.hosts.get(key);
    if (s === undefined) {
      s = { consecutive5xx: 0, consecutiveGateway: 0, ejectedUntil: 0, ejections: 0 };
      this.hosts.set(key, s);
    }
    return s;
  }

  isEjected(key: string): boolean {
    const s = this.hosts.get(key);
    return s !== undefined && s.ejectedUntil > this.clock();
  }

  ejectedCount(keys: readonly string[]): number {
    return keys.filter((k) => this.isEjected(k)).length;
  }

  /** Records a result; returns true when this result ejected the host. `status` 0 = connect failure/reset. */
  record(key: string, status: number, allKeys: readonly string[]): boolean {
    const s = this.state(key);
    const isGateway = status === 0 || status === 502 || status === 503 || status === 504;
    if (status >= 500 || status === 0) {
      s.consecutive5xx++;
      if (isGateway) s.consecutiveGateway++;
    } else {
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return false;
    }
    const c = this.config;
    const hit5xx = s.consecutive5xx >= c.consecutive5xx && this.rng() < c.enforcing5xx;
    const hitGw = c.consecutiveGatewayFailure !== undefined && s.consecutiveGateway >= c.consecutiveGatewayFailure;
    if (!hit5xx && !hitGw) return false;
    if (this.isEjected(key)) return false;
    const ejected = this.ejectedCount(allKeys);
    const allowed = Math.max(1, Math.floor((allKeys.length * c.maxEjectionPercent) / 100));
    if (ejected >= allowed) return false;
    s.ejections++;
    s.ejectedUntil = this.clock() + c.baseEjectionMs * s.ejections;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    return true;
  }

  snapshot(): Record<string, { ejected: boolean; ejections: number; consecutive5xx: number }> {
    const out: Record<string, { ejected: boolean; ejections: number; consecutive5xx: number }> = {};
    for (const [k, s] of this.hosts) out[k] = { ejected: s.ejectedUntil > this.clock(), ejections: s.ejections, consecutive5xx: s.consecutive5xx };
    return out;
  }
}

/** The outcome of one upstream attempt as the retry logic sees it. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'connect-failure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'timeout' };

/** Whether `outcome` is retriable under `policy` (Envoy's retry_on conditions). */
export function shouldRetry(policy: RetryPolicy, outcome: AttemptOutcome): boolean {
  const on = policy.retryOn;
  switch (outcome.kind) {
    case 'connect-failure':
      return on.has('connect-failure') || on.has('5xx') || on.has('gateway-error') || on.has('reset');
    case 'reset':
      return on.has('reset') || on.has('5xx');
    case 'timeout':
      // A per-try timeout is retriable under 5xx/gateway-error (Envoy counts it as a 504).
      return on.has('5xx') || on.has('gateway-error');
    case 'response': {
      const s = outcome.status;
      if (on.has('5xx') && s >= 500) return true;
      if (on.has('gateway-error') && (s === 502 || s === 503 || s === 504)) return true;
      if (on.has('retriable-4xx') && s === 409) return true;
      if (on.has('retriable-status-codes') && policy.retriableStatusCodes.has(s)) return true;
      return false;
    }
  }
}

/** Envoy's fully jittered exponential back-off: uniform in [0, min(max, base × 2^attempt)). */
export function retryBackoffMs(policy: RetryPolicy, attempt: number, rng: Rng): number {
  const ceiling = Math.min(policy.maxIntervalMs, policy.baseIntervalMs * 2 ** Math.min(attempt, 20));
  return Math.floor(rng() * ceiling);
}
