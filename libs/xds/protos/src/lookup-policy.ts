/**
 * Whether a cache lookup that costs work of its own (a JSON text, a digest) pays under one key.
 * After `MAX_MISSES` lookups in a row found nothing, only one in `PROBE_EVERY` is made again;
 * a hit makes every one made again. Only the cost changes: what is not looked up is computed.
 */
export class LookupPolicy {
  static readonly MAX_MISSES = 8;
  static readonly PROBE_EVERY = 32;
  private misses = 0;
  private skipped = 0;

  want(): boolean {
    if (this.misses < LookupPolicy.MAX_MISSES) return true;
    if (++this.skipped < LookupPolicy.PROBE_EVERY) return false;
    this.skipped = 0;
    this.misses = LookupPolicy.MAX_MISSES - 1;
    return true;
  }

  hit(): void {
    this.misses = 0;
  }

  missed(): void {
    this.misses++;
  }
}
