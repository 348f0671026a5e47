import { parseLabels } from '@aviary/agent';
import { configFromProcess, pilotConfig, type ConfigOf } from '@aviary/config';
import { announcingChanges, KvConfigStore, KvCredentialStore, WatchedObjects, type ConfigStore } from '@aviary/config-store';
import { hostname } from 'node:os';
import { LeaderLease, type Bus } from '@aviary/events';
import { GatewayDeployer, KubernetesConfigStore, KubernetesCredentials, KubernetesNamespaceLabels, KubernetesRegistry, loadKubeConfig, parsePodTemplate, withChangeSources } from '@aviary/k8s';
import type { Logger } from '@aviary/observability';
import { runComponent } from '@aviary/runtime';
import { canaryApi } from './lib/canary/api';
import { CanaryController, canaryReadKinds } from './lib/canary/controller';
import { configApi } from './lib/config-api';
import { credentialsApi } from './lib/credentials-api';
import { Discovery } from './lib/discovery';
import { GatewayStatusWriter } from './lib/gateway-api/status-writer';
import { readFileSync } from 'node:fs';
import { loadMeshConfig } from './lib/mesh-config';
import { assertXdsListeners, XdsTlsMaterial } from './lib/xds-tls';
import { xdsApi } from './lib/xds-api';

const config = configFromProcess(pilotConfig);
const meshConfig = (() => {
  try {
    return loadMeshConfig(config.meshConfigFile);
  } catch (err) {
    // Same contract as an invalid option: one line naming what is wrong, exit 2.
    process.stderr.write(`aviary pilot: invalid configuration: ${(err as Error).message}\n`);
    process.exit(2);
  }
})();

/**
 * The config store the REST API writes, and the one Discovery watches: in Kubernetes mode the
 * CRDs, plus the Service/EndpointSlice registry merged into the watch. Both are wrapped in
 * `announcingChanges`, the one publisher of aviary.config.v1.changed: what Discovery's watch sees
 * (API writes, kubectl, other replicas) is announced, once per change thanks to the message id.
 */
interface CredentialSource {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The stores, and where gateway credentials come from: in local mode the local secret store
 * (NATS KV, written through the credentials API), in Kubernetes mode TLS Secrets. Either feeds
 * Discovery's credential index; neither is ever logged.
 */
interface Stores {
  readonly store: ConfigStore;
  readonly watched: ConfigStore;
  readonly credentials?: (discovery: Discovery) => CredentialSource;
  /** Local mode: the secret store the credentials API writes. */
  readonly localCredentials?: KvCredentialStore;
  /** Kubernetes mode: the Namespaces' labels for Gateway listeners' `allowedRoutes` Selector (local mode has no Namespace objects). */
  readonly namespaceLabels?: (discovery: Discovery) => KubernetesNamespaceLabels;
  /** Kubernetes mode with gatewayDeploymentTemplateFile: automated deployment of Gateways. */
  readonly deployer?: (opts: Pick<ConstructorParameters<typeof GatewayDeployer>[0], 'isLeader' | 'onInfraChange' | 'gatewayUid'>) => GatewayDeployer;
}

async function openStores(cfg: ConfigOf<typeof pilotConfig>, bus: Bus, logger: Logger): Promise<Stores> {
  const onError = (err: unknown): void => logger.warn({ err }, 'could not publish aviary.config.v1.changed');
  if (cfg.configSource === 'nats') {
    if (cfg.gatewayDeploymentTemplateFile !== '') throw new Error('gatewayDeploymentTemplateFile needs configSource kubernetes: local mode deploys no Gateways (the launcher\'s ingress serves them, see gatewayApiSelector)');
    const store = announcingChanges(await KvConfigStore.open(bus), bus, onError);
    const localCredentials = await KvCredentialStore.open(bus);
    const log = logger.child({ component: 'credentials' });
    const credentials = (discovery: Discovery): CredentialSource => {
      let watch: { initialized: Promise<void>; stop(): Promise<void> } | undefined;
      return {
        start: async () => {
          watch = await localCredentials.watch(
            (c) => discovery.setCredentials(c),
            (ref, err) => log.warn({ credential: ref, error: err.message }, `stored credential ${ref} is not usable; servers naming it are not served one (without an earlier certificate, their TLS handshakes fail)`),
          );
          await watch.initialized;
        },
        stop: async () => watch?.stop(),
      };
    };
    return { store, watched: store, credentials, localCredentials };
  }
  const kubeConfig = loadKubeConfig(cfg.kubeconfig);
  const common = { kubeConfig, logger: logger.child({ component: 'kubernetes' }), resyncMs: cfg.kubernetesResyncMs };
  const store = announcingChanges(new KubernetesConfigStore(common), bus, onError);
  const registry = new KubernetesRegistry({ ...common, domainSuffix: cfg.domainSuffix });
  logger.info({ server: kubeConfig.getCurrentCluster()?.server }, 'config source: kubernetes');
  const credentials = (discovery: Discovery): KubernetesCredentials => new KubernetesCredentials({ ...common, logger: logger.child({ component: 'credentials' }) }, (c) => discovery.setCredentials(c));
  const namespaceLabels = (discovery: Discovery): KubernetesNamespaceLabels => new KubernetesNamespaceLabels(common, (labels) => discovery.setNamespaceLabels(labels));
  const templateFile = cfg.gatewayDeploymentTemplateFile;
  const template = templateFile === '' ? undefined : parsePodTemplate(readFileSync(templateFile, 'utf8'), templateFile);
  const deployer = template && ((o: Parameters<NonNullable<Stores['deployer']>>[0]) => new GatewayDeployer({ ...o, kubeConfig, template, natsPassword: cfg.gatewayNatsPassword, logger: logger.child({ component: 'gateway-deployer' }) }));
  return { store, watched: withChangeSources(store, [registry]), namespaceLabels, ...(cfg.credentialSecrets && { credentials }), ...(deployer && { deployer }) };
}

await runComponent({
  spec: pilotConfig,
  config,
  description: 'Mesh config (Istio API) and discovery: the config store, xDS (ADS) status and debug.',
  build: async ({ bus, logger, registry }) => {
    assertXdsListeners(config);
    const replicaId = config.replicaId === '' ? `${hostname()}-${process.pid}` : config.replicaId;
    const { store, watched, credentials: credentialsFor, localCredentials, namespaceLabels: namespaceLabelsFor, deployer: deployerFor } = await openStores(config, bus, logger);
    // Only the lease holder creates and deletes the deployed Gateways' objects.
    const deployerLease = new LeaderLease(bus, { name: 'pilot-gateway-deployer', identity: replicaId, ttlMs: config.leaseTtlMs, logger: logger.child({ component: 'lease' }), registry });
    const deployer = deployerFor?.({
      isLeader: () => deployerLease.isLeader,
      onInfraChange: () => void gatewayStatus.resync(),
      gatewayUid: async (namespace, name) => (await store.get({ kind: 'KubernetesGateway', namespace, name }))?.metadata.uid,
    });
    const gatewayStatus = new GatewayStatusWriter({
      store,
      logger: logger.child({ component: 'gateway-api' }),
      ...(deployer && { gatewayInfra: (namespace: string, name: string) => deployer.infra(namespace, name) }),
    });
    // The canary controller reads what this watch keeps, not the store, on every tick.
    const canaryReads = new WatchedObjects(store, canaryReadKinds);
    const discovery = new Discovery({
      onGatewayApi: (snapshot) => {
        void deployer?.sync(snapshot.gatewayApi.deployments);
        void gatewayStatus.sync(snapshot);
      },
      gatewayApiSelector: parseLabels(config.gatewayApiSelector),
      store: canaryReads.watching(watched),
      bus,
      logger,
      registry,
      trustDomain: config.trustDomain,
      debounce: { quietMs: config.pushDebounceMs, maxDelayMs: config.pushMaxDelayMs, leadingEndpoints: config.pushEndpointsLeadingEdge },
      extensionProviders: meshConfig.extensionProviders ?? [],
      jwks: { timeoutMs: config.jwksFetchTimeoutMs, maxBytes: config.jwksMaxBytes, refreshMs: config.jwksRefreshMs, retryMs: config.jwksRetryMs },
      limits: { maxStreams: config.xdsMaxStreams, maxConnectionAgeMs: config.xdsMaxConnectionAgeMs, maxConnectionAgeGraceMs: config.xdsMaxConnectionAgeGraceMs },
      warmingTimeoutMs: config.xdsWarmingTimeoutMs,
      controlPlaneId: replicaId,
    });
    // Credentials first: a gateway's first config then carries its certificate.
    const credentials = credentialsFor?.(discovery);
    await credentials?.start();
    const namespaceLabels = namespaceLabelsFor?.(discovery);
    await namespaceLabels?.start();
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
    // In pilot rather than a process of its own: pilot already owns the config store the weights
    // are written to and the admin API the operators use; the controller adds no port or identity.
    // Replicas share the store; only the holder of the lease reconciles Canaries.
    const lease = new LeaderLease(bus, { name: 'pilot-canary', identity: replicaId, ttlMs: config.leaseTtlMs, logger: logger.child({ component: 'lease' }), registry });
    const canaries = new CanaryController({
      store,
      bus,
      logger: logger.child({ component: 'canary' }),
      domainSuffix: config.domainSuffix,
      tickMs: config.canaryTickMs,
      isLeader: () => lease.isLeader,
      reads: canaryReads,
    });
    if (deployer) deployerLease.start();
    if (config.canaryController) {
      lease.start();
      canaries.start();
    }
    const routes = [
      configApi({ store, limits: { maxDocuments: config.maxConfigDocuments, maxKeys: config.maxConfigKeys } }),
      xdsApi(discovery.server),
      canaryApi({ store, controller: canaries }),
      ...(localCredentials ? [credentialsApi(localCredentials)] : []),
    ];
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
        await canaries.stop();
        await deployer?.stop();
        await deployerLease.stop();
        await credentials?.stop();
        await namespaceLabels?.stop();
        await lease.stop();
        await discovery.stop();
        await tls?.stop();
      },
    };
  },
});
