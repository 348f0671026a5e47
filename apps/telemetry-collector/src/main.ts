import { configFromProcess, telemetryConfig } from '@aviary/config';
import { runComponent } from '@aviary/runtime';
import { buildCollector } from './lib/collector';

const config = configFromProcess(telemetryConfig);
await runComponent({
  spec: telemetryConfig,
  // The collector registers the tracer provider itself (its spans carry the proxies' ids), so
  // the runtime's own tracing stays off.
  config: { ...config, otelExporterOtlpEndpoint: '' },
  description: 'Request metrics with Istio names, traces and the service graph.',
  build: (ctx) => buildCollector(ctx, { otlpEndpoint: config.otelExporterOtlpEndpoint }),
});
