import { citadelConfig, configFromProcess } from '@aviary/config';
import { runComponent } from '@aviary/runtime';

const config = configFromProcess(citadelConfig);
await runComponent({
  spec: citadelConfig,
  config,
  description: 'Certificate authority for SPIFFE workload identities.',
  build: async () => ({}),
});
