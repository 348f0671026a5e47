import type { Endpoint, LbPolicy } from './cluster';
import type { Rng } from './resilience';

/** 53-bit string hash (cyrb53): stable across processes, used for the hash ring. */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export interface PickContext {
  /** Request hash from the route's hash policy; undefined → random for RING_HASH. */
  readonly hash: number | undefined;
  /** Endpoints to avoid (retry_host_predicate previous_hosts); honoured when another is available. */
  readonly avoid: ReadonlySet<string> | undefined;
}

/**
 * A load balancer over one cluster's endpoints. Endpoints that are unhealthy or ejected are
 * filtered by the caller's `usable` predicate; if none is usable the lowest-priority healthy set
 * is used anyway (Envoy's panic mode), so a fully ejected cluster still gets traffic.
 */
export class LoadBalancer {
  private rr = 0;
  private readonly wrrCurrent = new Map<string, number>();
  private ring: { hashes: Float64Array; hosts: Endpoint[] } | undefined;

  constructor(
    readonly policy: LbPolicy,
    readonly endpoints: readonly Endpoint[],
    private readonly rng: Rng,
    private readonly ringSize: { readonly min: number; readonly max: number } = { min: 1024, max: 65_536 },
    private readonly choiceCount = 2,
  ) {}

  /** The same balancer state over an equal endpoint list (a re-sent EDS with no change). */
  withEndpoints(endpoints: readonly Endpoint[]): LoadBalancer {
    const lb = new LoadBalancer(this.policy, endpoints, this.rng, this.ringSize, this.choiceCount);
    lb.rr = this.rr;
    for (const [k, v] of this.wrrCurrent) lb.wrrCurrent.set(k, v);
    return lb;
  }

  /** Picks an endpoint; `active(key)` gives in-flight requests (LEAST_REQUEST). */
  pick(usable: (e: Endpoint) => boolean, active: (key: string) => number, ctx: PickContext): Endpoint | undefined {
    const healthy = this.endpoints.filter((e) => e.healthy);
    if (healthy.length === 0) return undefined;
    const minPriority = Math.min(...healthy.map((e) => e.priority));
    let candidates = healthy.filter((e) => usable(e));
    if (candidates.length > 0) {
      const top = Math.min(...candidates.map((e) => e.priority));
      candidates = candidates.filter((e) => e.priority === top);
    } else {
      candidates = healthy.filter((e) => e.priority === minPriority); // panic: all ejected
    }
    if (ctx.avoid !== undefined && ctx.avoid.size > 0) {
      const fresh = candidates.filter((e) => !ctx.avoid?.has(e.key));
      if (fresh.length > 0) candidates = fresh;
    }
    if (candidates.length === 1) return candidates[0];
    switch (this.policy) {
      case 'RANDOM':
        return this.weightedRandom(candidates);
      case 'LEAST_REQUEST':
        return this.leastRequest(candidates, active);
      case 'RING_HASH':
        return this.ringHash(candidates, ctx.hash);
      default:
        return this.roundRobin(candidates);
    }
  }

  private roundRobin(c: readonly Endpoint[]): Endpoint {
    if (c.every((e) => e.weight === c[0]?.weight)) return c[this.rr++ % c.length] as Endpoint;
    // Smooth weighted round robin (nginx): deterministic, evenly interleaved.
    let total = 0;
    let best: Endpoint | undefined;
    let bestCur = -Infinity;
    for (const e of c) {
      const cur = (this.wrrCurrent.get(e.key) ?? 0) + e.weight;
      this.wrrCurrent.set(e.key, cur);
      total += e.weight;
      if (cur > bestCur) {
        bestCur = cur;
        best = e;
      }
    }
    const chosen = best as Endpoint;
    this.wrrCurrent.set(chosen.key, bestCur - total);
    return chosen;
  }

  private weightedRandom(c: readonly Endpoint[]): Endpoint {
    const total = c.reduce((s, e) => s + e.weight, 0);
    let point = this.rng() * total;
    for (const e of c) {
      if (point < e.weight) return e;
      point -= e.weight;
    }
    return c[c.length - 1] as Endpoint;
  }

  /** Power of `choiceCount` choices, fewest active requests wins (ties: first drawn). */
  private leastRequest(c: readonly Endpoint[], active: (key: string) => number): Endpoint {
    let best: Endpoint | undefined;
    for (let i = 0; i < this.choiceCount; i++) {
      const e = c[Math.floor(this.rng() * c.length)] as Endpoint;
      if (best === undefined || active(e.key) / e.weight < active(best.key) / best.weight) best = e;
    }
    return best as Endpoint;
  }

  private buildRing(): { hashes: Float64Array; hosts: Endpoint[] } {
    const healthy = this.endpoints.filter((e) => e.healthy);
    const totalWeight = healthy.reduce((s, e) => s + e.weight, 0);
    const size = Math.min(this.ringSize.max, Math.max(this.ringSize.min, healthy.length));
    const entries: { h: number; e: Endpoint }[] = [];
    for (const e of healthy) {
      const n = Math.max(1, Math.round((size * e.weight) / totalWeight));
      for (let i = 0; i < n; i++) entries.push({ h: hash53(`${e.key}_${i}`), e });
    }
    entries.sort((a, b) => a.h - b.h);
    return { hashes: Float64Array.from(entries.map((x) => x.h)), hosts: entries.map((x) => x.e) };
  }

  /** Consistent hashing: the first ring entry at or after the hash whose host is a candidate. */
  private ringHash(c: readonly Endpoint[], hash: number | undefined): Endpoint {
    this.ring ??= this.buildRing();
    const { hashes, hosts } = this.ring;
    const h = hash ?? Math.floor(this.rng() * 2 ** 53);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((hashes[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    const allowed = new Set(c.map((e) => e.key));
    for (let i = 0; i < hosts.length; i++) {
      const e = hosts[(lo + i) % hosts.length] as Endpoint;
      if (allowed.has(e.key)) return e;
    }
    return c[0] as Endpoint;
  }
}
