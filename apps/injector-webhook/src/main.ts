import { configFromProcess, injectorConfig } from '@aviary/config';
import { runComponent } from '@aviary/runtime';
import { buildInjector } from './lib/component';

const config = configFromProcess(injectorConfig);
await runComponent({
  spec: injectorConfig,
  config,
  description: 'Sidecar injection and mesh config validation webhooks.',
  build: (ctx) => buildInjector(ctx),
});
