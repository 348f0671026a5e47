import { configFromProcess, pilotConfig } from '@aviary/config';
import { runComponent } from '@aviary/runtime';

const config = configFromProcess(pilotConfig);
await runComponent({
  spec: pilotConfig,
  config,
  description: 'Mesh config (Istio API) and discovery; xDS status and debug.',
  build: async () => ({}),
});
