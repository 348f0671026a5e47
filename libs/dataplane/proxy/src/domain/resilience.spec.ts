import { describe, expect, it } from 'vitest';
import { CircuitBreaker, OutlierDetector, retryBackoffMs, seededRng, shouldRetry, TokenBucket } from './resilience';
import { LoadBalancer } from './balancer';
import { compileCluster, compileLoadAssignment, type Endpoint } from './cluster';
import { compileRetryPolicy } from './routes';
import { ProxyConfigError } from './raw';
import { edsCluster, loadAssignment, staticCluster } from '../testing/fixtures';

function eps(n: number, weights: number[] = []): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({ key: `10.0.0.${i}:80`, host: `10.0.0.${i}`, port: 80, weight: weights[i] ?? 1, priority: 0, healthy: true, locality: '' }));
}
const all = () => true;
const none = () => 0;
const ctx = { hash: undefined, avoid: undefined };

describe('load balancers', () => {
  it('round robin cycles and weighted round robin interleaves by weight', () => {
    const lb = new LoadBalancer('ROUND_ROBIN', eps(3), seededRng(1));
    expect(Array.from({ length: 6 }, () => lb.pick(all, none, ctx)!.host)).toEqual(['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.0', '10.0.0.1', '10.0.0.2']);
    const w = new LoadBalancer('ROUND_ROBIN', eps(2, [3, 1]), seededRng(1));
    const picks = Array.from({ length: 8 }, () => w.pick(all, none, ctx)!.host);
    expect(picks.filter((h) => h === '10.0.0.0')).toHaveLength(6);
  });

  it('least request prefers the endpoint with fewer active requests', () => {
    const lb = new LoadBalancer('LEAST_REQUEST', eps(2), seededRng(3));
    const active = (k: string) => (k === '10.0.0.0:80' ? 10 : 0);
    let idle = 0;
    for (let i = 0; i < 200; i++) if (lb.pick(all, active, ctx)!.host === '10.0.0.1') idle++;
    expect(idle).toBeGreaterThan(140); // P(both draws hit the busy one) = 1/4
  });

  it('random is deterministic under a seeded RNG', () => {
    const a = new LoadBalancer('RANDOM', eps(4), seededRng(9));
    const b = new LoadBalancer('RANDOM', eps(4), seededRng(9));
    const seqA = Array.from({ length: 20 }, () => a.pick(all, none, ctx)!.key);
    expect(Array.from({ length: 20 }, () => b.pick(all, none, ctx)!.key)).toEqual(seqA);
    expect(new Set(seqA).size).toBeGreaterThan(1);
  });

  it('ring hash maps a hash to the same endpoint and moves few keys when one goes away', () => {
    const lb = new LoadBalancer('RING_HASH', eps(4), seededRng(1));
    const before = Array.from({ length: 200 }, (_, i) => lb.pick(all, none, { hash: i * 9_007_199_254, avoid: undefined })!.key);
    expect(Array.from({ length: 200 }, (_, i) => lb.pick(all, none, { hash: i * 9_007_199_254, avoid: undefined })!.key)).toEqual(before);
    const without = (e: Endpoint) => e.key !== '10.0.0.3:80';
    const after = Array.from({ length: 200 }, (_, i) => lb.pick(without, none, { hash: i * 9_007_199_254, avoid: undefined })!.key);
    expect(after.filter((k, i) => before[i] !== '10.0.0.3:80' && k !== before[i])).toHaveLength(0);
  });

  it('skips unusable endpoints, avoids previous hosts, and panics when none is usable', () => {
    const lb = new LoadBalancer('ROUND_ROBIN', eps(3), seededRng(1));
    const notZero = (e: Endpoint) => e.key !== '10.0.0.0:80';
    for (let i = 0; i < 6; i++) expect(lb.pick(notZero, none, ctx)!.key).not.toBe('10.0.0.0:80');
    expect(lb.pick(all, none, { hash: undefined, avoid: new Set(['10.0.0.0:80', '10.0.0.1:80']) })!.key).toBe('10.0.0.2:80');
    expect(lb.pick(() => false, none, ctx)).toBeDefined();
  });
});

describe('outlier detection', () => {
  const cfg = { consecutive5xx: 3, consecutiveGatewayFailure: undefined, intervalMs: 1000, baseEjectionMs: 30_000, maxEjectionPercent: 10, enforcing5xx: 1 };
  it('ejects after consecutive 5xx for base_ejection_time × ejections, at least one host', () => {
    let now = 0;
    const od = new OutlierDetector(cfg, () => now, seededRng(1));
    const keys = ['a', 'b'];
    expect(od.record('a', 500, keys)).toBe(false);
    expect(od.record('a', 200, keys)).toBe(false); // a success resets the count
    od.record('a', 500, keys);
    od.record('a', 502, keys);
    expect(od.record('a', 503, keys)).toBe(true);
    expect(od.isEjected('a')).toBe(true);
    // 10 % of 2 hosts rounds to 0, but one host may always be ejected: not a second one.
    for (let i = 0; i < 5; i++) od.record('b', 500, keys);
    expect(od.isEjected('b')).toBe(false);
    now = 30_001;
    expect(od.isEjected('a')).toBe(false);
    for (let i = 0; i < 3; i++) od.record('a', 0, keys);
    expect(od.isEjected('a')).toBe(true);
    now = 30_001 + 59_999;
    expect(od.isEjected('a')).toBe(true); // second ejection lasts twice as long
    now = 30_001 + 60_001;
    expect(od.isEjected('a')).toBe(false);
  });
});

describe('circuit breaker', () => {
  it('overflows max_requests and max_pending_requests', () => {
    const cb = new CircuitBreaker({ maxConnections: 1, maxPendingRequests: 1, maxRequests: 10, maxRetries: 1 });
    expect(cb.tryAcquire()).toBe('ok'); // on the connection
    expect(cb.tryAcquire()).toBe('ok'); // pending
    expect(cb.tryAcquire()).toBe('overflow');
    cb.release();
    expect(cb.tryAcquire()).toBe('ok');
    const r = new CircuitBreaker({ maxConnections: 100, maxPendingRequests: 100, maxRequests: 2, maxRetries: 1 });
    r.tryAcquire();
    r.tryAcquire();
    expect(r.tryAcquire()).toBe('overflow');
    expect(r.tryRetry()).toBe(true);
    expect(r.tryRetry()).toBe(false);
  });
});

describe('token bucket', () => {
  it('starts full, refills whole intervals, never above max', () => {
    let now = 0;
    const b = new TokenBucket(3, 2, 1000, () => now);
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false]);
    now = 999;
    expect(b.tryTake()).toBe(false);
    expect(b.resetSeconds).toBe(1);
    now = 1000;
    expect(b.remaining).toBe(2);
    now = 10_000;
    expect(b.remaining).toBe(3);
  });
});

describe('retry decisions', () => {
  const policy = compileRetryPolicy({ retry_on: 'gateway-error,connect-failure', num_retries: { value: 2 } }, 'r')!;
  it('follows retry_on', () => {
    expect(shouldRetry(policy, { kind: 'response', status: 503 })).toBe(true);
    expect(shouldRetry(policy, { kind: 'response', status: 500 })).toBe(false);
    expect(shouldRetry(policy, { kind: 'connect-failure' })).toBe(true);
    expect(shouldRetry(policy, { kind: 'reset' })).toBe(false);
    const fivexx = compileRetryPolicy({ retry_on: '5xx' }, 'r')!;
    expect(shouldRetry(fivexx, { kind: 'response', status: 500 })).toBe(true);
    expect(shouldRetry(fivexx, { kind: 'reset' })).toBe(true);
    expect(shouldRetry(fivexx, { kind: 'timeout' })).toBe(true);
    expect(fivexx.numRetries).toBe(1);
  });
  it('backs off with full jitter below the cap', () => {
    const rng = seededRng(5);
    for (let i = 0; i < 50; i++) expect(retryBackoffMs(policy, 3, rng)).toBeLessThan(200);
  });
});

describe('cluster compilation', () => {
  it('compiles EDS clusters with defaults and static clusters with endpoints', () => {
    const c = compileCluster(edsCluster('outbound|80||svc', { lb_policy: 'LEAST_REQUEST', outlier_detection: { consecutive_5xx: { value: 2 }, base_ejection_time: { seconds: 5 } } }));
    expect(c.edsName).toBe('outbound|80||svc');
    expect(c.limits).toEqual({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 });
    expect(c.outlier).toMatchObject({ consecutive5xx: 2, baseEjectionMs: 5000, maxEjectionPercent: 10 });
    const s = compileCluster(staticCluster('s', [['127.0.0.1', 8080]], { circuit_breakers: { thresholds: [{ max_connections: { value: 1 }, max_pending_requests: { value: 1 } }] } }));
    expect(s.staticEndpoints.map((e) => e.key)).toEqual(['127.0.0.1:8080']);
    expect(s.limits.maxConnections).toBe(1);
  });

  it('rejects what it cannot apply, naming the field', () => {
    expect(() => compileCluster(edsCluster('x', { lb_policy: 'MAGLEV' }))).toThrow(/Cluster\.lb_policy: unsupported lb_policy MAGLEV/);
    expect(() => compileCluster({ name: 'x', type: 'EDS', eds_cluster_config: {} })).toThrow(/eds_config: must be ads or self/);
    expect(() => compileLoadAssignment(loadAssignment('x', [['localhost', 80]]))).toThrow(ProxyConfigError);
    expect(() => compileLoadAssignment(loadAssignment('x', [['localhost', 80]]))).toThrow(
      'ClusterLoadAssignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: address is not a valid IPv4 or IPv6 address: localhost',
    );
  });
});
