import { configFromProcess, pilotConfig } from '@aviary/config';
import { KvConfigStore } from '@aviary/config-store';
import { runComponent } from '@aviary/runtime';
import { configApi } from './lib/config-api';
import { Discovery } from './lib/discovery';
import { xdsApi } from './lib/xds-api';

const config = configFromProcess(pilotConfig);
await runComponent({
  spec: pilotConfig,
  config,
  description: 'Mesh config (Istio API) and discovery: the config store, xDS (ADS) status and debug.',
  build: async ({ bus, logger, registry }) => {
    const store = await KvConfigStore.open(bus);
    const discovery = new Discovery({
      store,
      bus,
      logger,
      registry,
      trustDomain: config.trustDomain,
      debounce: { quietMs: config.pushDebounceMs, maxDelayMs: config.pushMaxDelayMs },
    });
    await discovery.start();
    const routes = [configApi({ store, maxDocuments: config.maxConfigDocuments }), xdsApi(discovery.server)];
    return {
      readiness: [{ name: 'xds', ready: () => discovery.ready }],
      routes: async (app) => {
        for (const r of routes) await r(app);
      },
      listen: async () => ({ xds: `${config.xdsHost}:${await discovery.listen(config.xdsHost, config.xdsPort)}` }),
      stop: () => discovery.stop(),
    };
  },
});
