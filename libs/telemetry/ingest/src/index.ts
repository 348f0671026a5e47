export { Ingestor, DropReasons } from './ingest';
export type { DropReason, IngestOptions } from './ingest';
export { startRecordTracer } from './tracing';
export type { RecordTracer } from './tracing';
export { registerIstioMetrics, registerReadCounter } from './istio-prom';
