import { configFromProcess, pilotConfig } from '@aviary/config';
import { KvConfigStore } from '@aviary/config-store';
import { runComponent } from '@aviary/runtime';
import { configApi } from './lib/config-api';

const config = configFromProcess(pilotConfig);
await runComponent({
  spec: pilotConfig,
  config,
  description: 'Mesh config (Istio API) and discovery; xDS status and debug.',
  build: async ({ bus }) => {
    const store = await KvConfigStore.open(bus);
    return {
      routes: configApi({ store, maxDocuments: config.maxConfigDocuments }),
    };
  },
});
