import {
  BYTES_BUCKETS,
  DURATION_BUCKETS_MS,
  HTTP_METRICS,
  istioLabels,
  OVERFLOW_LABELS,
  seriesKey,
  TCP_METRICS,
  type IstioLabels,
  type IstioMetricName,
} from './istio';
import type { TelemetryRecord } from './record';

/** Per-bucket (not cumulative) counts, the last slot being +Inf; plus sum and count. */
export interface HistogramData {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export interface HttpSeries {
  readonly labels: IstioLabels;
  requests: number;
  readonly duration: HistogramData;
  readonly requestBytes: HistogramData;
  readonly responseBytes: HistogramData;
}

export interface TcpSeries {
  readonly labels: IstioLabels;
  sentBytes: number;
  receivedBytes: number;
  opened: number;
  closed: number;
}

export interface IstioAggregatorOptions {
  /**
   * Most distinct label sets per metric family (the four request metrics share one table, the
   * four TCP metrics another). A record with a new label set past the cap is counted in one
   * series whose every label is `overflow`.
   */
  readonly maxSeriesPerMetric: number;
}

function histogram(bounds: readonly number[]): HistogramData {
  return { bounds, counts: new Float64Array(bounds.length + 1), sum: 0, count: 0 };
}

/** Prometheus `le` semantics: the first bucket whose upper bound is >= value. */
function observe(h: HistogramData, value: number): void {
  const b = h.bounds;
  let lo = 0;
  let hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (value <= (b[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  h.counts[lo] = (h.counts[lo] as number) + 1;
  h.sum += value;
  h.count += 1;
}

/**
 * Aggregates request records into Istio's standard metric families, in memory, with bounded
 * cardinality. Pure and synchronous: the app exposes the series through prom-client.
 */
export class IstioAggregator {
  private readonly http = new Map<string, HttpSeries>();
  private readonly tcp = new Map<string, TcpSeries>();
  private httpOverflow: HttpSeries | undefined;
  private tcpOverflow: TcpSeries | undefined;
  /** Records counted in the overflow series, per metric name. */
  readonly overflowed = new Map<IstioMetricName, number>();

  constructor(private readonly opts: IstioAggregatorOptions) {}

  add(r: TelemetryRecord): void {
    if (r.protocol === 'tcp') this.addTcp(r);
    else this.addHttp(r);
  }

  private addHttp(r: TelemetryRecord): void {
    const key = seriesKey(r);
    let s = this.http.get(key);
    if (s === undefined) {
      if (this.http.size < this.opts.maxSeriesPerMetric) {
        s = newHttpSeries(istioLabels(r));
        this.http.set(key, s);
      } else {
        s = this.httpOverflow ??= newHttpSeries(OVERFLOW_LABELS);
        this.countOverflow(HTTP_METRICS);
      }
    }
    s.requests += 1;
    observe(s.duration, r.durationMs);
    observe(s.requestBytes, r.requestBytes);
    observe(s.responseBytes, r.responseBytes);
  }

  private addTcp(r: TelemetryRecord): void {
    const key = seriesKey(r);
    let s = this.tcp.get(key);
    if (s === undefined) {
      if (this.tcp.size < this.opts.maxSeriesPerMetric) {
        s = { labels: istioLabels(r), sentBytes: 0, receivedBytes: 0, opened: 0, closed: 0 };
        this.tcp.set(key, s);
      } else {
        s = this.tcpOverflow ??= { labels: OVERFLOW_LABELS, sentBytes: 0, receivedBytes: 0, opened: 0, closed: 0 };
        this.countOverflow(TCP_METRICS);
      }
    }
    // A tcp record is reported when the connection closes: it was opened and closed.
    s.sentBytes += r.responseBytes;
    s.receivedBytes += r.requestBytes;
    s.opened += 1;
    s.closed += 1;
  }

  private countOverflow(metrics: readonly IstioMetricName[]): void {
    for (const m of metrics) this.overflowed.set(m, (this.overflowed.get(m) ?? 0) + 1);
  }

  /** Request series in insertion order, then the overflow series if any. */
  *httpSeries(): IterableIterator<HttpSeries> {
    yield* this.http.values();
    if (this.httpOverflow !== undefined) yield this.httpOverflow;
  }

  *tcpSeries(): IterableIterator<TcpSeries> {
    yield* this.tcp.values();
    if (this.tcpOverflow !== undefined) yield this.tcpOverflow;
  }

  /** Distinct label sets held (not counting the overflow series). */
  get seriesCount(): { http: number; tcp: number } {
    return { http: this.http.size, tcp: this.tcp.size };
  }
}

function newHttpSeries(labels: IstioLabels): HttpSeries {
  return { labels, requests: 0, duration: histogram(DURATION_BUCKETS_MS), requestBytes: histogram(BYTES_BUCKETS), responseBytes: histogram(BYTES_BUCKETS) };
}
