/**
 * A mergeable latency sketch with bounded relative error (the DDSketch layout): a value v > 0
 * lands in bucket ceil(log_γ v), γ = (1+α)/(1-α), and a bucket reads back as 2γ^i/(γ+1), within
 * α of every value in it. α = 1 %. Values at or below `MIN_VALUE` share one bucket read as 0.
 */
const ALPHA = 0.01;
const GAMMA = (1 + ALPHA) / (1 - ALPHA);
const LOG_GAMMA = Math.log(GAMMA);
const MIN_VALUE = 1e-3;

export class LatencySketch {
  readonly buckets = new Map<number, number>();
  zeros = 0;
  count = 0;

  add(value: number): void {
    this.count += 1;
    if (value <= MIN_VALUE) {
      this.zeros += 1;
      return;
    }
    const i = Math.ceil(Math.log(value) / LOG_GAMMA);
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1);
  }

  merge(other: LatencySketch): void {
    this.count += other.count;
    this.zeros += other.zeros;
    for (const [i, n] of other.buckets) this.buckets.set(i, (this.buckets.get(i) ?? 0) + n);
  }

  /** The q-quantile (0..1), or 0 for an empty sketch. Rank is q·(count-1), as DDSketch. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = q * (this.count - 1);
    let seen = this.zeros;
    if (seen > rank) return 0;
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    for (const i of keys) {
      seen += this.buckets.get(i) as number;
      if (seen > rank) return (2 * GAMMA ** i) / (GAMMA + 1);
    }
    const last = keys[keys.length - 1] as number;
    return (2 * GAMMA ** last) / (GAMMA + 1);
  }
}
