import { configFromProcess, pilotConfig, type ConfigOf } from '@aviary/config';
import { KvConfigStore, refKey, type ConfigStore } from '@aviary/config-store';
import { Subjects, type Bus } from '@aviary/events';
import { announcingChanges, KubernetesConfigStore, KubernetesRegistry, loadKubeConfig, withChangeSources } from '@aviary/k8s';
import type { Logger } from '@aviary/observability';
import { runComponent } from '@aviary/runtime';
import { configApi } from './lib/config-api';
import { Discovery } from './lib/discovery';
import { assertXdsListeners, XdsTlsMaterial } from './lib/xds-tls';
import { xdsApi } from './lib/xds-api';

const config = configFromProcess(pilotConfig);

/**
 * The config store the REST API writes, and the one Discovery watches: in Kubernetes mode the
 * CRDs, plus the Service/EndpointSlice registry merged into the watch.
 */
async function openStores(cfg: ConfigOf<typeof pilotConfig>, bus: Bus, logger: Logger): Promise<{ store: ConfigStore; watched: ConfigStore }> {
  if (cfg.configSource === 'nats') {
    const store = await KvConfigStore.open(bus);
    return { store, watched: store };
  }
  const kubeConfig = loadKubeConfig(cfg.kubeconfig);
  const common = { kubeConfig, logger: logger.child({ component: 'kubernetes' }), resyncMs: cfg.kubernetesResyncMs };
  const store = new KubernetesConfigStore(common);
  const registry = new KubernetesRegistry({ ...common, domainSuffix: cfg.domainSuffix });
  logger.info({ server: kubeConfig.getCurrentCluster()?.server }, 'config source: kubernetes');
  // CRD changes (made with kubectl) announced as the KV store announces API writes; the message id
  // lets JetStream drop the duplicates that several pilot replicas publish.
  const announced = announcingChanges(store, (e) => {
    const data = { op: e.op, kind: e.ref.kind, namespace: e.ref.namespace, name: e.ref.name, revision: e.revision };
    bus.publishDurable(Subjects.configChanged, data, `config-${e.op}-${refKey(e.ref)}-${e.revision}`).catch((err: unknown) => logger.warn({ err }, 'could not publish aviary.config.v1.changed'));
  });
  return { store, watched: withChangeSources(announced, [registry]) };
}

await runComponent({
  spec: pilotConfig,
  config,
  description: 'Mesh config (Istio API) and discovery: the config store, xDS (ADS) status and debug.',
  build: async ({ bus, logger, registry }) => {
    assertXdsListeners(config);
    const { store, watched } = await openStores(config, bus, logger);
    const discovery = new Discovery({
      store: watched,
      bus,
      logger,
      registry,
      trustDomain: config.trustDomain,
      debounce: { quietMs: config.pushDebounceMs, maxDelayMs: config.pushMaxDelayMs },
    });
    await discovery.start();
    const tls = config.xdsTls
      ? new XdsTlsMaterial({
          bus,
          logger,
          trustDomain: config.trustDomain,
          dnsNames: config.xdsTlsDnsNames.split(','),
          ttlSeconds: config.xdsTlsCertTtlSeconds,
          signTimeoutMs: config.caSignTimeoutMs,
        })
      : undefined;
    await tls?.start();
    const routes = [configApi({ store, maxDocuments: config.maxConfigDocuments }), xdsApi(discovery.server)];
    return {
      readiness: [{ name: 'xds', ready: () => discovery.ready }, ...(tls ? [{ name: 'xds-tls', ready: () => tls.ready }] : [])],
      routes: async (app) => {
        for (const r of routes) await r(app);
      },
      listen: async () => ({
        ...(config.xdsPlaintext && { xds: `${config.xdsHost}:${await discovery.listen(config.xdsHost, config.xdsPort)}` }),
        ...(tls && { xdsTls: `${config.xdsTlsHost}:${await discovery.listenTls(config.xdsTlsHost, config.xdsTlsPort, tls.credentials)}` }),
      }),
      stop: async () => {
        await discovery.stop();
        await tls?.stop();
      },
    };
  },
});
