export { buildAdminApp, ErrorBody, readinessReport } from './app';
export type { AdminApp, AdminOptions, ReadinessCheck } from './app';
export { listenAdmin } from './server';
export { httpStatusByKind } from './errors';
export { createProbeServer, listenProbes } from './probes';
export type { ProbeServerOptions } from './probes';
