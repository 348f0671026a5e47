import { configFromProcess, injectorConfig } from '@aviary/config';
import { runComponent } from '@aviary/runtime';

const config = configFromProcess(injectorConfig);
await runComponent({
  spec: injectorConfig,
  config,
  description: 'Sidecar injection and mesh config validation webhooks.',
  build: async () => ({}),
});
