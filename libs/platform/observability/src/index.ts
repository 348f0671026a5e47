export { createLogger } from './logger';
export type { Logger } from './logger';
export { createMetricsRegistry } from './metrics';
export { startTracing } from './tracing';
export type { Tracing } from './tracing';
