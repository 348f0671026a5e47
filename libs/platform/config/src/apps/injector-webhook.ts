import Type from 'typebox';
import { commonOptions, Host, Millis, PortOrZero } from '../common';
import { defineConfig, option } from '../spec';
import { aviaryVersion } from '../version';

const HostPort = Type.String({ pattern: '^[^\\s:/]+:[0-9]{1,5}$', description: 'a host:port address' });
/** A Kubernetes resource quantity (the sidecar.istio.io/proxyCPU annotations' syntax). */
const Quantity = Type.String({ pattern: '^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$', description: 'a Kubernetes quantity such as 100m or 128Mi' });

export const injectorConfig = defineConfig({
  app: 'injector-webhook',
  summary: 'Kubernetes admission webhooks: sidecar injection and mesh config validation',
  options: {
    ...commonOptions('injector-webhook', 15018),
    webhookHost: option(Host, '127.0.0.1', 'address the HTTPS webhook binds to'),
    webhookPort: option(PortOrZero, 9443, 'HTTPS admission webhook port'),
    webhookBodyLimit: option(Type.Integer({ minimum: 64 * 1024, maximum: 64 * 1024 * 1024 }), 6 * 1024 * 1024, 'largest AdmissionReview body in bytes (larger: HTTP 413)'),
    revision: option(Type.String({ pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' }), 'default', 'injector revision matched against istio.io/rev'),
    injectionTemplateFile: option(
      Type.String(),
      '',
      'sidecar template (YAML) read at start; empty: the chart file charts/aviary/charts/injector-webhook/files/injection-template.yaml found from the app (repo or dist layout)',
    ),
    proxyImage: option(Type.String({ minLength: 1, maxLength: 512 }), `docker.io/aviary/gateway:${aviaryVersion}`, 'image of the injected proxy (and of its init container)'),
    proxyImagePullPolicy: option(Type.Union([Type.Literal('IfNotPresent'), Type.Literal('Always'), Type.Literal('Never')]), 'IfNotPresent', 'imagePullPolicy of injected containers'),
    pilotAddress: option(HostPort, 'aviary-pilot.istio-system.svc:15012', 'pilot mTLS xDS address the injected proxies use'),
    citadelAddress: option(HostPort, 'aviary-citadel.istio-system.svc:15013', 'citadel CA address the injected proxies use'),
    proxyNatsUrl: option(Type.String({ pattern: '^(nats|tls|ws|wss)://[^\\s]+$' }), 'nats://aviary-nats.istio-system.svc:4222', 'NATS URL the injected proxies report telemetry to'),
    proxyXdsProtocol: option(
      Type.Union([Type.Literal('sotw'), Type.Literal('delta')]),
      'delta',
      "ADS flavour of injected proxies: delta (the default, as in Istio) or sotw (delta lets pilot keep the clusters a reconnecting proxy's routes still name: docs/progressive-delivery.md)",
    ),
    proxyNatsUser: option(Type.String({ maxLength: 256, pattern: '^[^\\s"]*$' }), '', 'NATS user the injected proxies connect as (the gateway bus role; empty: no authentication)'),
    proxyNatsPassword: option(Type.String({ maxLength: 1024, pattern: '^[^\\s"\\\\{}]*$' }), '', 'password of proxyNatsUser, written into each injected pod', { secret: true }),
    nativeSidecar: option(Type.Boolean(), false, 'inject the proxy as a native sidecar (init container with restartPolicy Always; Kubernetes 1.29+)'),
    holdApplicationUntilProxyStarts: option(Type.Boolean(), false, 'start the proxy first and hold app containers until it is ready'),
    // The injected proxy's resources; a pod's sidecar.istio.io/proxyCPU|proxyMemory|proxyCPULimit|proxyMemoryLimit annotations override them.
    proxyCpuRequest: option(Quantity, '100m', 'CPU request of injected proxies'),
    proxyMemoryRequest: option(Quantity, '128Mi', 'memory request of injected proxies'),
    proxyCpuLimit: option(Quantity, '2000m', 'CPU limit of injected proxies'),
    proxyMemoryLimit: option(Quantity, '1Gi', 'memory limit of injected proxies'),
    enableNamespacesByDefault: option(Type.Boolean(), false, 'inject pods in namespaces without istio-injection or istio.io/rev labels'),
    tlsCertFile: option(Type.String(), '', 'webhook serving certificate (PEM chain); with tlsKeyFile, replaces citadel signing; re-read when it changes'),
    tlsKeyFile: option(Type.String(), '', 'private key (PEM) of tlsCertFile'),
    tlsCaFile: option(Type.String(), '', 'CA (PEM) that signed tlsCertFile, written to the webhooks caBundle (empty: the last certificate of tlsCertFile)'),
    webhookConfigNames: option(
      Type.String({ pattern: '^([a-z0-9][-a-z0-9.]*(,[a-z0-9][-a-z0-9.]*)*)?$' }),
      '',
      'comma-separated Mutating/ValidatingWebhookConfiguration names whose caBundle the injector sets to its serving CA at start and on renewal (empty: none)',
    ),
    webhookCaResyncMs: option(Millis(1_000, 86_400_000), 60_000, 'how often the webhooks caBundle is checked and put back if something reset it'),
    kubeconfig: option(Type.String(), '', 'kubeconfig file for the caBundle patch (empty: $KUBECONFIG, ~/.kube/config, then in-cluster)'),
    tlsDnsNames: option(
      Type.String({ pattern: '^[A-Za-z0-9.*-]+(,[A-Za-z0-9.*-]+)*$' }),
      'aviary-injector-webhook.istio-system.svc,aviary-injector-webhook.istio-system.svc.cluster.local,localhost',
      'comma-separated DNS names of the serving certificate requested from citadel',
    ),
    tlsCertTtlSeconds: option(Type.Integer({ minimum: 300, maximum: 366 * 86400 }), 86_400, 'lifetime of the serving certificate requested from citadel'),
    tlsReloadIntervalMs: option(Millis(1_000, 3_600_000), 30_000, 'how often tlsCertFile/tlsKeyFile are checked for a new certificate'),
    caSignTimeoutMs: option(Millis(100, 60_000), 5_000, 'timeout of a signing request to citadel (aviary.ca.v1.sign)'),
  },
});
