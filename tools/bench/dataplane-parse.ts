// Pure helpers of the data-plane benchmark (tools/bench/dataplane.ts): reading wrk's text output,
// vegeta's JSON report and /proc/<pid>/stat, and summarising rounds. No I/O here.

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50ms: number;
  readonly p90ms: number;
  readonly p99ms: number;
  /** Non-2xx/3xx responses plus socket errors (connect, read, write, timeout). */
  readonly errors: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function duration(text: string, label: string): number {
  const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
  if (m === null) throw new Error(`wrk output has no "${label}" latency line (was --latency given?)`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/** Parses the output of `wrk --latency`. Throws when a figure is missing (wrk failed to run). */
export function parseWrk(text: string): WrkResult {
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),/m.exec(text);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (total === null || rps === null) throw new Error(`not wrk output: ${text.slice(0, 200)}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: Number(total[1]),
    seconds: (Number(total[2]) * (UNIT_MS[total[3] as string] as number)) / 1000,
    rps: Number(rps[1]),
    p50ms: duration(text, '50%'),
    p90ms: duration(text, '90%'),
    p99ms: duration(text, '99%'),
    errors: (non2xx === null ? 0 : Number(non2xx[1])) + (sock === null ? 0 : sock.slice(1).reduce((s, x) => s + Number(x), 0)),
  };
}

export interface VegetaResult {
  readonly requests: number;
  /** Requests per second vegeta actually sent. */
  readonly rate: number;
  readonly p50ms: number;
  readonly p90ms: number;
  readonly p99ms: number;
  readonly maxMs: number;
  /** Share of 2xx/3xx answers, 0..1. */
  readonly success: number;
  readonly statusCodes: Readonly<Record<string, number>>;
  readonly errors: readonly string[];
}

/** Parses `vegeta report -type=json` (latencies in nanoseconds). */
export function parseVegeta(json: string): VegetaResult {
  const r = JSON.parse(json) as {
    latencies?: Record<string, number>;
    requests?: number;
    rate?: number;
    success?: number;
    status_codes?: Record<string, number>;
    errors?: string[] | null;
  };
  const lat = r.latencies;
  if (lat === undefined || typeof r.requests !== 'number') throw new Error(`not a vegeta JSON report: ${json.slice(0, 200)}`);
  const ms = (key: string): number => {
    const v = lat[key];
    if (typeof v !== 'number') throw new Error(`vegeta report has no latencies.${key}`);
    return v / 1e6;
  };
  return {
    requests: r.requests,
    rate: r.rate ?? NaN,
    p50ms: ms('50th'),
    p90ms: ms('90th'),
    p99ms: ms('99th'),
    maxMs: ms('max'),
    success: r.success ?? 0,
    statusCodes: r.status_codes ?? {},
    errors: r.errors ?? [],
  };
}

/**
 * CPU time (user + system, all threads) in clock ticks from the text of /proc/<pid>/stat. The
 * command name (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
 */
export function cpuTicks(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state(3) ppid(4) … utime is field 14, stime field 15 → indexes 11 and 12 here.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`not a /proc/<pid>/stat line: ${stat.slice(0, 120)}`);
  return utime + stime;
}

/** The median of the finite values (NaN when none). */
export function median(values: readonly number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Rounds to `digits` decimals. */
export function round(v: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
