export { isErrorRecord, serviceNamespace, serviceShortName } from './record';
export type { TelemetryRecord } from './record';
export {
  IstioMetricNames,
  HTTP_METRICS,
  TCP_METRICS,
  DURATION_BUCKETS_MS,
  BYTES_BUCKETS,
  ISTIO_LABEL_NAMES,
  OVERFLOW_VALUE,
  OVERFLOW_LABELS,
  istioLabels,
  seriesKey,
} from './istio';
export type { IstioMetricName, IstioLabelName, IstioLabels } from './istio';
export { IstioAggregator } from './metrics';
export type { HistogramData, HttpSeries, TcpSeries, IstioAggregatorOptions } from './metrics';
export { LatencySketch } from './sketch';
export { sampleRecord } from './fixtures';
export { ServiceGraph, parseWindow } from './graph';
export type { GraphNode, GraphEdge, EdgeStats, NodeKind, ServiceGraphSnapshot, ServiceGraphOptions, ServiceSummaryData, ServiceTimeseries, TimeseriesPoint, VersionSummaryData } from './graph';
