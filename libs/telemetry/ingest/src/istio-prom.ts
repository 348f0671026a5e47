import { Counter, Histogram, type MetricType, type MetricObjectWithValues, type MetricValue, type MetricValueWithName, type Registry } from 'prom-client';
import { BYTES_BUCKETS, DURATION_BUCKETS_MS, IstioMetricNames, type HistogramData, type HttpSeries, type IstioAggregator, type IstioLabelName, type IstioMetricName, type TcpSeries } from '@aviary/telemetry';

type Label = IstioLabelName;

const noop = (): void => {};
// prom-client declares MetricType as a TypeScript enum but exports no runtime value for it.
const COUNTER = 'counter' as unknown as MetricType.Counter;
const HISTOGRAM = 'histogram' as unknown as MetricType.Histogram;

/**
 * prom-client metrics whose values are read from an `IstioAggregator` at scrape time. The hot
 * path (one record) then costs one map lookup and a few increments instead of prom-client's
 * per-call label hashing, and prom-client still owns names, types and the text format.
 */
class AggregateCounter<L extends string> extends Counter<L> {
  constructor(
    private readonly metricName: string,
    private readonly helpText: string,
    registers: Registry[],
    private readonly read: () => Iterable<{ labels: Partial<Record<L, string>>; value: number }>,
  ) {
    super({ name: metricName, help: helpText, labelNames: [], registers });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValue<L>>> {
    const values = [...this.read()].map((v) => ({ labels: v.labels, value: v.value }));
    return { name: this.metricName, help: this.helpText, type: COUNTER, values, aggregator: 'sum', collect: noop };
  }
}

/** A counter whose values are read from elsewhere at scrape time. */
export function registerReadCounter<L extends string>(
  name: string,
  help: string,
  registers: Registry[],
  read: () => Iterable<{ labels: Partial<Record<L, string>>; value: number }>,
): void {
  new AggregateCounter<L>(name, help, registers, read);
}

class AggregateHistogram extends Histogram<Label | 'le'> {
  constructor(
    private readonly metricName: IstioMetricName,
    private readonly helpText: string,
    buckets: readonly number[],
    registers: Registry[],
    private readonly read: () => Iterable<{ labels: Record<Label, string>; data: HistogramData }>,
  ) {
    super({ name: metricName, help: helpText, labelNames: [], buckets: [...buckets], registers });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<Label | 'le'>>> {
    const values: MetricValueWithName<Label | 'le'>[] = [];
    for (const { labels, data } of this.read()) {
      let cumulative = 0;
      for (let i = 0; i <= data.bounds.length; i++) {
        cumulative += data.counts[i] as number;
        values.push({ metricName: `${this.metricName}_bucket`, labels: { ...labels, le: i < data.bounds.length ? (data.bounds[i] as number) : '+Inf' }, value: cumulative });
      }
      values.push({ metricName: `${this.metricName}_sum`, labels, value: data.sum });
      values.push({ metricName: `${this.metricName}_count`, labels, value: data.count });
    }
    return { name: this.metricName, help: this.helpText, type: HISTOGRAM, values, aggregator: 'sum', collect: noop };
  }

  /** The registry prefers this to get() when rendering text; it must read the aggregate too. */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<Label | 'le'>>> {
    return this.get();
  }
}

/** Registers Istio's eight standard metrics, read from `agg`, in each of `registers`. */
export function registerIstioMetrics(agg: IstioAggregator, registers: Registry[]): void {
  const http = (pick: (s: HttpSeries) => HistogramData) => () => mapIter(agg.httpSeries(), (s) => ({ labels: s.labels, data: pick(s) }));
  const tcp = (pick: (s: TcpSeries) => number) => () => mapIter(agg.tcpSeries(), (s) => ({ labels: s.labels, value: pick(s) }));
  new AggregateCounter<Label>(IstioMetricNames.requests, 'Requests handled by a mesh proxy (Istio standard metric)', registers, () =>
    mapIter(agg.httpSeries(), (s) => ({ labels: s.labels, value: s.requests })),
  );
  new AggregateHistogram(IstioMetricNames.duration, 'Request duration in milliseconds (Istio standard metric)', DURATION_BUCKETS_MS, registers, http((s) => s.duration));
  new AggregateHistogram(IstioMetricNames.requestBytes, 'HTTP request body sizes in bytes (Istio standard metric)', BYTES_BUCKETS, registers, http((s) => s.requestBytes));
  new AggregateHistogram(IstioMetricNames.responseBytes, 'HTTP response body sizes in bytes (Istio standard metric)', BYTES_BUCKETS, registers, http((s) => s.responseBytes));
  new AggregateCounter<Label>(IstioMetricNames.tcpSent, 'Bytes sent during responses on TCP connections (Istio standard metric)', registers, tcp((s) => s.sentBytes));
  new AggregateCounter<Label>(IstioMetricNames.tcpReceived, 'Bytes received during requests on TCP connections (Istio standard metric)', registers, tcp((s) => s.receivedBytes));
  new AggregateCounter<Label>(IstioMetricNames.tcpOpened, 'TCP connections opened (Istio standard metric)', registers, tcp((s) => s.opened));
  new AggregateCounter<Label>(IstioMetricNames.tcpClosed, 'TCP connections closed (Istio standard metric)', registers, tcp((s) => s.closed));
}

function* mapIter<T, U>(it: Iterable<T>, f: (t: T) => U): IterableIterator<U> {
  for (const t of it) yield f(t);
}
