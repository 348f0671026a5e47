import { configFromProcess, gatewayConfig } from '@aviary/config';
import { runComponent } from '@aviary/runtime';
import { buildGateway } from './lib/gateway';

const config = configFromProcess(gatewayConfig);
await runComponent({
  spec: gatewayConfig,
  config,
  description: 'The mesh proxy: ingress gateway or sidecar; proxy admin (config_dump, clusters, stats).',
  build: buildGateway,
  // The telemetry stream is the collector's; a proxy's bus user may only look it up.
  manageStreams: false,
});
