import { configFromProcess, telemetryConfig } from '@aviary/config';
import { runComponent } from '@aviary/runtime';

const config = configFromProcess(telemetryConfig);
await runComponent({
  spec: telemetryConfig,
  config,
  description: 'Request metrics with Istio names, traces and the service graph.',
  build: async () => ({}),
});
