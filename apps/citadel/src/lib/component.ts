import type { KeyObject } from 'node:crypto';
import { CertificateAuthority, type BundleSink, type CaStateStore, type TokenValidator, type TrustBundle } from '@aviary/ca';
import type { citadelConfig, CommonConfig, ConfigOf } from '@aviary/config';
import { Subjects, type Stoppable } from '@aviary/events';
import { createCsr, generatePrivateKey, ipVersion, privateKeyToPem } from '@aviary/pki';
import type { Component, ComponentContext } from '@aviary/runtime';
import { NatsBundleSink } from './bundle-sink';
import { FileCaStateStore, loadCaCertsDir } from './file-store';
import { CaGrpcServer, TlsMaterial } from './grpc-server';
import { createCaMetrics } from './metrics';
import { citadelRoutes } from './routes';
import { CitadelService } from './service';

export type CitadelConfig = ConfigOf<typeof citadelConfig> & CommonConfig;

export interface Citadel extends Component {
  readonly service: CitadelService;
  /** Bound CA gRPC ports (after `listen`). */
  ports(): { grpc?: number; grpcTls?: number };
}

/** How often retired roots are pruned, the bundle republished if needed and the serving cert renewed. */
const MAINTENANCE_INTERVAL_MS = 30_000;

/**
 * How often the CA state is read back from its store: another citadel replica sharing it may
 * have rotated or pruned a root, and this one must sign with the same root and serve the same
 * bundle within this interval.
 */
const REFRESH_INTERVAL_MS = 10_000;

/** Adapters chosen by the entrypoint (Kubernetes mode); the defaults are local mode's. */
export interface CitadelAdapters {
  /** The token port: given the CA's join-token key, the validator to use (default: join tokens only). */
  readonly validator?: (joinTokenKey: KeyObject) => TokenValidator;
  /** Where the CA state lives (default: the data dir). */
  readonly stateStore?: CaStateStore;
  /** Also receives every trust bundle (e.g. the istio-ca-root-cert ConfigMaps); a failure is retried like NATS's. */
  readonly bundleSink?: BundleSink;
  readonly stop?: () => Promise<void>;
}

/** Wires citadel: CA state, bundle sink, gRPC servers, NATS responders and admin routes. */
export async function buildCitadel(ctx: ComponentContext<CitadelConfig>, adapters: CitadelAdapters = {}): Promise<Citadel> {
  const { config, logger, registry, bus } = ctx;
  const tls = new TlsMaterial();
  const nats = new NatsBundleSink(bus);
  let bundlePublished = false;
  const sink: BundleSink = {
    publish: async (bundle: TrustBundle) => {
      tls.setTrustedRoots(bundle.roots);
      await nats.publish(bundle);
      await adapters.bundleSink?.publish(bundle);
      bundlePublished = true;
      logger.info({ bundleVersion: bundle.version, roots: bundle.roots.length }, 'trust bundle published');
    },
  };
  const pluginCa = config.caCertsDir === '' ? undefined : await loadCaCertsDir(config.caCertsDir);
  const ca = await CertificateAuthority.open({
    trustDomain: config.trustDomain,
    store: adapters.stateStore ?? new FileCaStateStore(config.dataDir),
    sink,
    defaultTtlSeconds: config.certTtlSeconds,
    maxTtlSeconds: config.maxCertTtlSeconds,
    algorithm: config.keyAlgorithm,
    ...(pluginCa === undefined ? {} : { pluginCa }),
    ...(adapters.validator === undefined ? {} : { validator: adapters.validator }),
  });
  logger.info({ mode: pluginCa === undefined ? 'self-signed' : 'plug-in', rootNotAfter: ca.rootNotAfter().toISOString(), dataDir: config.dataDir }, 'CA loaded');
  const metrics = createCaMetrics(registry, () => ca.rootNotAfter());
  const service = new CitadelService(ca, bus, metrics, logger);
  tls.setTrustedRoots(ca.bundle().roots);

  const publishBundle = async (): Promise<void> => {
    try {
      await ca.publishBundle();
    } catch (err) {
      logger.warn({ err }, 'could not publish the trust bundle; will retry');
    }
  };
  await publishBundle();

  // Citadel's own serving certificate for the TLS port, signed by itself and renewed at half-life.
  const servingNames = servingDnsNames(config.caHost, config.caTlsDnsNames);
  const servingTtl = Math.min(config.maxCertTtlSeconds, 86_400);
  let servingRenewAt = 0;
  const renewServingCert = async (): Promise<void> => {
    const key = generatePrivateKey('ecdsa-p256');
    const issued = await service.signServing('internal', createCsr(key), servingNames, servingTtl);
    tls.setIdentity(issued.chain.slice(0, -1), privateKeyToPem(key));
    servingRenewAt = issued.notBefore.getTime() + (issued.notAfter.getTime() - issued.notBefore.getTime()) / 2;
  };
  await renewServingCert();

  const responders: Stoppable[] = [
    bus.reply(Subjects.caSign, async (event) => {
      const r = await service.signServing('nats', event.data.csr, event.data.dnsNames, event.data.ttlSeconds);
      return { ok: true as const, certChain: [...r.chain], serial: r.serialHex, notAfter: r.notAfter.toISOString() };
    }),
  ];

  const maintenance = setInterval(() => {
    void (async () => {
      await ca.prune().catch((err: unknown) => logger.warn({ err }, 'bundle prune failed'));
      if (!bundlePublished) await publishBundle();
      if (Date.now() >= servingRenewAt) await renewServingCert().catch((err: unknown) => logger.warn({ err }, 'serving certificate renewal failed'));
    })();
  }, MAINTENANCE_INTERVAL_MS);
  maintenance.unref();
  const refresh = setInterval(() => {
    void ca
      .refresh()
      .then(async (bundleChanged) => {
        if (!bundleChanged) return;
        logger.info({ bundleVersion: ca.bundle().version }, 'the CA state changed in its store (another replica); serving its bundle');
        await publishBundle();
      })
      .catch((err: unknown) => logger.warn({ err }, 'could not read the CA state back from its store'));
  }, REFRESH_INTERVAL_MS);
  refresh.unref();

  const grpc = new CaGrpcServer(service, tls, logger);
  let ports: { grpc?: number; grpcTls?: number } = {};
  return {
    service,
    ports: () => ports,
    readiness: [
      { name: 'ca-grpc', ready: () => ports.grpc !== undefined || ports.grpcTls !== undefined },
      { name: 'trust-bundle', ready: () => bundlePublished },
    ],
    routes: citadelRoutes(service),
    listen: async () => {
      const bound = await grpc.listen(config.caHost, config.caPort, config.caTlsPort);
      ports = { ...(bound.plain === undefined ? {} : { grpc: bound.plain }), ...(bound.tls === undefined ? {} : { grpcTls: bound.tls }) };
      return { caGrpc: `${config.caHost}:${bound.plain}`, caGrpcTls: `${config.caHost}:${bound.tls}`, rootNotAfter: ca.rootNotAfter().toISOString() };
    },
    stop: async () => {
      clearInterval(maintenance);
      clearInterval(refresh);
      for (const r of responders) await r.stop();
      await grpc.stop();
      await adapters.stop?.();
    },
  };
}

/** DNS names and IPs for citadel's own serving certificate: the fixed local names, caHost and `extra` (comma-separated). */
export function servingDnsNames(caHost: string, extra = ''): string[] {
  const names = new Set(['localhost', 'citadel', 'aviary-citadel', '127.0.0.1', '::1']);
  const add = (n: string): void => void names.add(ipVersion(n) === 0 ? n.toLowerCase() : n);
  if (caHost !== '0.0.0.0' && caHost !== '::') add(caHost);
  for (const n of extra.split(',')) if (n !== '') add(n);
  return [...names];
}
