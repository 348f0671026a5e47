import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ConfigOf } from '@aviary/config';
import type { injectorConfig } from '@aviary/config';
import { injectionValues, parseInjectionTemplate, type InjectionValues } from '@aviary/injection';
import type { Component, ComponentContext } from '@aviary/runtime';
import { CertificateSource, type ActiveCertificate } from '@aviary/serving-tls';
import { Injector } from './injector';
import { injectorMetrics } from './metrics';
import { registerPreviewRoute } from './preview';
import { resolveTemplateFile } from './template-file';
import { meshValidator, type MeshValidator } from './validator';
import { buildWebhookServer } from './webhook-server';

export type InjectorConfig = ConfigOf<typeof injectorConfig>;

/** The injector's settings for the template and policy, from its config. */
export function valuesFromConfig(config: InjectorConfig): InjectionValues {
  return injectionValues({
    revision: config.revision,
    defaultRevision: config.revision === 'default',
    proxyImage: config.proxyImage,
    imagePullPolicy: config.proxyImagePullPolicy,
    pilotAddress: config.pilotAddress,
    citadelAddress: config.citadelAddress,
    natsUrl: config.proxyNatsUrl,
    xdsProtocol: config.proxyXdsProtocol,
    natsUser: config.proxyNatsUser,
    natsPassword: config.proxyNatsPassword,
    trustDomain: config.trustDomain,
    nativeSidecar: config.nativeSidecar,
    holdApplicationUntilProxyStarts: config.holdApplicationUntilProxyStarts,
    enableNamespacesByDefault: config.enableNamespacesByDefault,
    proxyResources: {
      requests: { cpu: config.proxyCpuRequest, memory: config.proxyMemoryRequest },
      limits: { cpu: config.proxyCpuLimit, memory: config.proxyMemoryLimit },
    },
  });
}

/**
 * Wires the injector: the chart's template (a broken one fails the start), the serving
 * certificate, the HTTPS admission server and the preview route.
 */
export async function buildInjector(
  ctx: ComponentContext<InjectorConfig>,
  validator: MeshValidator = meshValidator,
  /** Called with the serving CA (PEM) at start and after every renewal, e.g. to patch webhook caBundles. */
  onServingCa?: (caPem: string) => Promise<void>,
): Promise<Component> {
  const { config, logger, registry, bus } = ctx;
  const templateFile = resolveTemplateFile(config.injectionTemplateFile);
  const values = valuesFromConfig(config);
  const template = parseInjectionTemplate(readFileSync(templateFile, 'utf8'), values);
  logger.info({ templateFile, revision: values.revision, nativeSidecar: values.nativeSidecar }, 'injection template loaded');

  const metrics = injectorMetrics(registry);
  const injector = new Injector(template, values, metrics, logger.child({ component: 'injector' }));
  let swap: (cert: ActiveCertificate) => void = () => undefined;
  const certificates = new CertificateSource(
    {
      certFile: config.tlsCertFile,
      keyFile: config.tlsKeyFile,
      dnsNames: config.tlsDnsNames.split(','),
      ttlSeconds: config.tlsCertTtlSeconds,
      reloadIntervalMs: config.tlsReloadIntervalMs,
      signTimeoutMs: config.caSignTimeoutMs,
      trustDomain: config.trustDomain,
      sign: (data, timeoutMs) => bus.request('aviary.ca.v1.sign', data, timeoutMs),
      logger: logger.child({ component: 'tls' }),
    },
    (cert) => swap(cert),
  );
  // Self-signed while citadel is away, so start() always yields one.
  const certificate = (await certificates.start()) ?? certificates.current;
  const server = buildWebhookServer({ injector, validator, metrics, logger, bodyLimit: config.webhookBodyLimit, certificate });
  const announceCa = async (cert: ActiveCertificate): Promise<void> => {
    if (onServingCa === undefined) return;
    try {
      await onServingCa(cert.caPem ?? (await servingCaFromFiles(config.tlsCaFile, cert.certPem)));
    } catch (err) {
      logger.error({ err }, 'could not publish the serving CA (webhook caBundle)');
    }
  };
  await announceCa(certificate);
  swap = (cert) => {
    server.setCertificate(cert);
    void announceCa(cert);
  };
  let listening = false;

  return {
    readiness: [{ name: 'webhook', ready: () => listening }],
    routes: (app) => registerPreviewRoute(app, injector),
    listen: async () => {
      const port = await server.listen(config.webhookHost, config.webhookPort);
      listening = true;
      return { webhook: `https://${config.webhookHost}:${port}`, certificate: certificates.current.origin };
    },
    stop: async () => {
      listening = false;
      certificates.stop();
      await server.close();
    },
  };
}

/** The CA of a certificate loaded from files: tlsCaFile, else the last certificate of the served chain. */
async function servingCaFromFiles(caFile: string, certPem: string): Promise<string> {
  if (caFile !== '') return readFile(caFile, 'utf8');
  const blocks = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.at(-1) ?? certPem;
}
