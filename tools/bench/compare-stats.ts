// Pure helpers of the side-by-side benchmarks (tools/bench/pilot.ts --vs-istiod): reading Go's
// runtime.MemStats from a pprof heap profile in text form, and summarizing interleaved rounds of
// two control planes as medians and ratios. No I/O here, so tools/bench/compare-stats.spec.ts
// tests them on fixed inputs.
import { median } from './dataplane-parse';

/**
 * The `# runtime.MemStats` block that Go's `/debug/pprof/heap?debug=1` appends to the profile
 * (runtime/pprof writeHeapInternal): lines `# Name = value`, and `# Stack = inuse / sys` (likewise
 * MSpan, MCache), which become `StackInuse` and `StackSys`. Returns the integer ones
 * (`HeapInuse`, `HeapIdle`, `HeapReleased`, `StackInuse`, `Sys`, `NumGC`, …). Throws when the block
 * or HeapInuse is missing, so a wrong endpoint (an HTML page, a 404 body) is an error, not zeros.
 */
export function parseGoMemStats(text: string): Record<string, number> {
  const start = text.indexOf('# runtime.MemStats');
  if (start < 0) throw new Error('no "# runtime.MemStats" block in the heap profile (is this /debug/pprof/heap?debug=1 of a Go program?)');
  const out: Record<string, number> = {};
  for (const line of text.slice(start).split('\n').slice(1)) {
    const pair = /^# (\w+) = (\d+) \/ (\d+)\s*$/.exec(line);
    if (pair) {
      out[`${pair[1]}Inuse`] = Number(pair[2]);
      out[`${pair[1]}Sys`] = Number(pair[3]);
      continue;
    }
    const m = /^# (\w+) = (\d+)\s*$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  if (out['HeapInuse'] === undefined) throw new Error('runtime.MemStats block has no HeapInuse');
  return out;
}

/** Bytes of Go memory in live use after a collection: heap spans in use plus goroutine stacks. */
export function goLiveBytes(memStats: Record<string, number>): number {
  return (memStats['HeapInuse'] ?? 0) + (memStats['StackInuse'] ?? 0);
}

/** `a / b` rounded to two decimals; NaN when either is missing or b is 0. */
export function ratio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return Math.round((a / b) * 100) / 100;
}

/** One measured round of one control plane: named metrics (lower is better for all of them). */
export interface RoundMetrics {
  readonly target: string;
  readonly metrics: Readonly<Record<string, number>>;
}

export interface ComparedMetric {
  readonly metric: string;
  /** Per target: the value of each round in run order, and their median. */
  readonly values: Readonly<Record<string, readonly number[]>>;
  readonly medians: Readonly<Record<string, number>>;
  /** median(subject) / median(reference). */
  readonly ratio: number;
}

/**
 * Medians per metric and target over interleaved rounds, and the ratio subject ÷ reference.
 * Metrics are listed in first-seen order; a metric a target lacks gets NaN for it.
 */
export function compareRounds(rounds: readonly RoundMetrics[], subject: string, reference: string): ComparedMetric[] {
  const names: string[] = [];
  for (const r of rounds) for (const k of Object.keys(r.metrics)) if (!names.includes(k)) names.push(k);
  return names.map((metric) => {
    const values: Record<string, number[]> = {};
    const medians: Record<string, number> = {};
    for (const target of [subject, reference]) {
      values[target] = rounds.filter((r) => r.target === target).map((r) => r.metrics[metric] ?? NaN);
      medians[target] = median(values[target]);
    }
    return { metric, values, medians, ratio: ratio(medians[subject]!, medians[reference]!) };
  });
}

/** A Markdown table of compareRounds' result (values rounded to 0.1). */
export function comparisonTable(rows: readonly ComparedMetric[], subject: string, reference: string): string {
  const fmt = (v: number): string => (Number.isFinite(v) ? String(Math.round(v * 10) / 10) : '—');
  const lines = [
    `| metric | ${subject} (median; rounds) | ${reference} (median; rounds) | ${subject} ÷ ${reference} |`,
    '| --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const cell = (t: string): string => `${fmt(r.medians[t]!)} (${(r.values[t] ?? []).map(fmt).join(', ')})`;
    lines.push(`| ${r.metric} | ${cell(subject)} | ${cell(reference)} | ${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '—'} |`);
  }
  return `${lines.join('\n')}\n`;
}
