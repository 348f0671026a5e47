export { startAccessLogServer, ServerSkipReasons } from './server';
export type { AccessLogServer, AccessLogServerOptions, ServerSkipReason } from './server';
export { recordFromHttp, recordFromTcp, responseFlagsOf, serviceOfCluster, spiffeNamespace, SkipReasons } from './record';
export type { Mapped, ProxyIdentity, SkipReason, TelemetryRecord } from './record';
export { RecordBatcher, DropReasons } from './batcher';
export type { BatcherOptions, DropReason } from './batcher';
export { createTelemetryPublisher } from './publisher';
export type { TelemetryPublisherOptions } from './publisher';
export type { HttpAccessLogEntry, TcpAccessLogEntry, StreamAccessLogsMessage } from './entry';
