/**
 * Istio durations are strings in Go's `time.ParseDuration` form, which includes the protobuf
 * JSON form (`1.5s`): one or more `<decimal><unit>` terms, units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`.
 * Negative durations are not valid in Istio config.
 */
const unitMs: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };
const term = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
const MAX_INPUT = 64;

/** Milliseconds for a duration string (`'1.5s'` → 1500, `'1m30s'` → 90000), or `undefined` if invalid. */
export function parseDuration(value: string): number | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_INPUT) return undefined;
  if (value === '0') return 0;
  let total = 0;
  term.lastIndex = 0;
  while (term.lastIndex < value.length) {
    const start = term.lastIndex;
    const m = term.exec(value);
    if (m === null || m.index !== start) return undefined;
    total += Number(m[1]) * unitMs[m[2]!]!;
  }
  return Number.isFinite(total) ? total : undefined;
}

export function isDuration(value: unknown): value is string {
  return typeof value === 'string' && parseDuration(value) !== undefined;
}
