import { NodeSDK } from '@opentelemetry/sdk-node';
import type { Logger } from './logger';

export interface Tracing {
  readonly enabled: boolean;
  shutdown(): Promise<void>;
}

/**
 * Starts OpenTelemetry tracing when an OTLP endpoint is configured; otherwise returns a no-op.
 * The exporter reads the standard OTEL_EXPORTER_OTLP_* variables.
 */
export function startTracing(serviceName: string, otlpEndpoint: string, logger: Logger): Tracing {
  if (otlpEndpoint === '') return { enabled: false, shutdown: async () => {} };
  const sdk = new NodeSDK({ serviceName });
  sdk.start();
  logger.info({ otlpEndpoint }, 'tracing enabled');
  return {
    enabled: true,
    shutdown: async () => {
      await sdk.shutdown().catch((err: unknown) => logger.warn({ err }, 'tracing shutdown failed'));
    },
  };
}
