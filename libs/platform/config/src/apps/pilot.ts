import Type from 'typebox';
import { commonOptions, Host, Millis, PortOrZero } from '../common';
import { defineConfig, option } from '../spec';

export const pilotConfig = defineConfig({
  app: 'pilot',
  summary: 'mesh config and discovery; serves xDS (Envoy v3 ADS) to proxies',
  options: {
    ...commonOptions('pilot', 15014),
    xdsPlaintext: option(Type.Boolean(), true, 'serve unauthenticated plaintext xDS on xdsHost:xdsPort (loopback development only; off in the chart)'),
    xdsHost: option(Host, '127.0.0.1', 'address the plaintext xDS gRPC server binds to (must be a loopback address)'),
    xdsPort: option(PortOrZero, 15010, 'xDS gRPC port (plaintext, loopback/dev only)'),
    xdsTls: option(
      Type.Boolean(),
      false,
      'serve xDS over mutual TLS on xdsTlsHost:xdsTlsPort: serving certificate from citadel, client certificates chained to the mesh trust bundle whose SPIFFE ID matches the node (on in the chart and the local launcher)',
    ),
    xdsTlsHost: option(Host, '127.0.0.1', 'address the mTLS xDS gRPC server binds to'),
    xdsTlsPort: option(PortOrZero, 15012, 'xDS gRPC port over mutual TLS'),
    xdsTlsDnsNames: option(
      Type.String({ pattern: '^[A-Za-z0-9.:-]+(,[A-Za-z0-9.:-]+)*$' }),
      'aviary-pilot.istio-system.svc,aviary-pilot.istio-system.svc.cluster.local,localhost,127.0.0.1',
      'comma-separated DNS names (IP literals become IP SANs) of the xDS serving certificate; proxies verify one of them',
    ),
    xdsTlsCertTtlSeconds: option(Type.Integer({ minimum: 300, maximum: 366 * 86400 }), 86_400, 'lifetime of the xDS serving certificate requested from citadel (renewed at 2/3)'),
    caSignTimeoutMs: option(Millis(100, 60_000), 5_000, 'timeout of a signing request to citadel (aviary.ca.v1.sign)'),
    xdsMaxStreams: option(Type.Integer({ minimum: 0, maximum: 1_000_000 }), 0, 'most ADS streams this replica serves; one more is refused with UNAVAILABLE and the proxy retries (on another replica behind a Service or with several pilotAddress entries); 0: no limit'),
    xdsMaxConnectionAgeMs: option(
      Type.Integer({ minimum: 0, maximum: 7 * 86_400_000 }),
      1_800_000,
      'a proxy connection older than this (±10% jitter) is sent GOAWAY and its ADS stream re-opened on a new connection, which may land on another replica: spreads proxies over replicas that were added or came back (at most 7 d; 0: never)',
    ),
    xdsMaxConnectionAgeGraceMs: option(Millis(1_000, 600_000), 10_000, 'how long a connection that was sent GOAWAY for its age may keep its streams before it is closed'),
    xdsWarmingTimeoutMs: option(
      Millis(100, 60_000),
      5_000,
      'longest a listener/route push waits for the clusters it names that are new to the proxy to warm there (CDS and EDS ACKed), and a removed cluster stays for routes that still name it (make-before-break); then the push goes anyway, counted in aviary_xds_warming_holds_total{outcome="timeout"}',
    ),
    pushDebounceMs: option(Millis(0, 10_000), 100, 'quiet period before a config change is pushed'),
    pushMaxDelayMs: option(Millis(0, 60_000), 1_000, 'longest a change waits for the debounce'),
    pushEndpointsLeadingEdge: option(
      Type.Boolean(),
      true,
      'push an endpoint-only change that follows pushDebounceMs without changes at once (leading edge), instead of after the quiet period; further changes within pushDebounceMs are still debounced (quiet period, pushMaxDelayMs), so a burst is coalesced. false: every change waits for the quiet period, like istiod (PILOT_DEBOUNCE_AFTER)',
    ),
    maxConfigDocuments: option(Type.Integer({ minimum: 1, maximum: 10_000 }), 500, 'most documents in one config POST'),
    maxConfigKeys: option(Type.Integer({ minimum: 100, maximum: 1_000_000 }), 20_000, 'most mapping keys (all levels, all documents) in one config POST'),
    configSource: option(Type.Union([Type.Literal('nats'), Type.Literal('kubernetes')]), 'nats', 'where mesh config and the registry come from: NATS KV (local mode) or the Kubernetes API (CRDs, Services, EndpointSlices)'),
    kubeconfig: option(Type.String(), '', 'kubeconfig file for configSource kubernetes (empty: $KUBECONFIG, ~/.kube/config, then in-cluster)'),
    credentialSecrets: option(
      Type.Boolean(),
      true,
      'with configSource kubernetes: read TLS Secrets (tls.crt/tls.key/ca.crt, or cert/key/cacert) of every namespace for Gateway and DestinationRule credentialName, kept in memory only and served by SDS over ADS to authenticated proxies of the Secret\'s namespace (needs get/list/watch on secrets)',
    ),
    kubernetesResyncMs: option(
      Millis(0, 86_400_000),
      0,
      'periodic full relist of every watched Kubernetes kind (0: off, as client-go and istiod: a watch resumes from its last resourceVersion and relists only on 410 Gone or an error; a relist of 100,000 WorkloadEntries is 64 MB of JSON for the API server to send and pilot to parse)',
    ),
    meshConfigFile: option(Type.String(), '', 'MeshConfig file (YAML/JSON; its extensionProviders feed AuthorizationPolicy CUSTOM); validated at boot, unknown fields refused; empty: none'),
    jwksFetchTimeoutMs: option(Millis(100, 60_000), 5_000, 'timeout of one RequestAuthentication jwksUri fetch when the rule sets none'),
    jwksMaxBytes: option(Type.Integer({ minimum: 1_024, maximum: 16_777_216 }), 524_288, 'largest JWKS document pilot accepts'),
    jwksRefreshMs: option(Millis(1_000, 86_400_000), 1_200_000, 'how often fetched JWKS are fetched again'),
    jwksRetryMs: option(Millis(100, 3_600_000), 30_000, 'how soon a failed JWKS fetch is retried (tokens of that issuer are refused meanwhile)'),
    canaryController: option(Type.Boolean(), true, 'run the canary controller: Canary resources drive their VirtualService route weights from telemetry summaries'),
    canaryTickMs: option(Millis(100, 60_000), 1_000, 'how often the canary controller reconciles every Canary (analyses run once per analysis interval)'),
    gatewayApiSelector: option(
      Type.String({ maxLength: 4096, pattern: '^([A-Za-z0-9./_-]+=[A-Za-z0-9._-]*(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*)*)?$' }),
      '',
      'labels (k=v,k=v) of the router proxies that serve every Gateway API Gateway of Aviary\'s classes (the local launcher sets istio=ingressgateway, its ingress); empty: each Gateway is served by the proxies labelled gateway.networking.k8s.io/gateway-name=<its name>',
    ),
    gatewayDeploymentTemplateFile: option(
      Type.String({ maxLength: 4096 }),
      '',
      'with configSource kubernetes: automated deployment of Gateway API Gateways (as istiod): for each Gateway of Aviary\'s classes the leader creates a ServiceAccount, a Deployment of this pod template (YAML: metadata.labels/annotations and a spec whose first container is the router) and a Service of the listener ports, owned by the Gateway, and writes status.addresses; the chart renders the template; empty: off (Gateways are served by the proxies labelled gateway.networking.k8s.io/gateway-name)',
    ),
    gatewayNatsPassword: option(Type.String({ maxLength: 1024 }), '', 'NATS password of the gateway role written into automatically deployed Gateway pods (as the injector does for sidecars); empty: none', { secret: true }),
    replicaId: option(Type.String({ maxLength: 253, pattern: '^[A-Za-z0-9._-]*$' }), '', 'this replica\'s name in leader leases, logs and xDS control_plane.identifier (empty: <hostname>-<pid>; the chart sets the pod name)'),
    leaseTtlMs: option(Millis(3_000, 300_000), 15_000, 'leader lease TTL (NATS KV): with several replicas only the lease holder runs the canary controller; a dead holder is replaced within about this long'),
    domainSuffix: option(Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$' }), 'cluster.local', 'DNS suffix of Kubernetes Service hosts (<svc>.<ns>.svc.<suffix>)'),
  },
});
