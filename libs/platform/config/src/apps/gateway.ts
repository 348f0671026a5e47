import Type from 'typebox';
import { commonOptions, Millis, PortOrZero } from '../common';
import { defineConfig, option } from '../spec';

const Name = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' });
const Ip = Type.String({ minLength: 1, maxLength: 45, pattern: '^[0-9A-Fa-f.:]+$', description: 'an IP address' });

export const gatewayConfig = defineConfig({
  app: 'gateway',
  summary: 'the mesh agent around Envoy: ingress gateway (--mode router) or sidecar (--mode sidecar)',
  options: {
    ...commonOptions('gateway', 15000),
    mode: option(Type.Union([Type.Literal('router'), Type.Literal('sidecar')]), 'router', 'proxy mode (the first field of the xDS node id)'),
    platform: option(Type.Union([Type.Literal('local'), Type.Literal('kubernetes')]), 'local', 'local: no iptables, node metadata INTERCEPTION_MODE NONE (pilot binds listeners to the pod IP), stats/readiness listeners on 127.0.0.1; kubernetes: INTERCEPTION_MODE REDIRECT, listeners on 0.0.0.0'),
    statsPort: option(PortOrZero, 15090, 'Envoy listener serving Prometheus stats on /stats/prometheus (0: none)'),
    statusPort: option(PortOrZero, 15021, 'Envoy listener answering /healthz/ready from the agent\'s /readyz, as Istio\'s 15021 (0: none; needs a fixed admin port)'),
    pilotAddress: option(Type.String({ minLength: 1 }), '127.0.0.1:15010', 'pilot xDS address host:port (Envoy\'s xds-grpc cluster); comma-separated for several pilot replicas without a Service in front (local mode): the proxy uses one and moves to another when it goes away or is full'),
    xdsTls: option(
      Type.Union([Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')]),
      'auto',
      'reach pilot over mutual TLS (client certificate: the workload certificate; pilot verified by pilotSubjectAltName); auto: on in Kubernetes and whenever pilotAddress is pilot\'s mTLS port 15012',
    ),
    pilotSubjectAltName: option(Type.String({ maxLength: 253, pattern: '^[A-Za-z0-9.:-]*$' }), '', 'the DNS name (or IP) pilot\'s xDS certificate must carry with xdsTls (empty: the host of pilotAddress)'),
    xdsProtocol: option(Type.Union([Type.Literal('sotw'), Type.Literal('delta')]), 'delta', 'Envoy\'s ADS flavour: delta (DeltaAggregatedResources, the default, as in Istio) or sotw (StreamAggregatedResources)'),
    citadelAddress: option(Type.String({ minLength: 1 }), '127.0.0.1:8060', 'citadel CA address host:port, or several comma-separated (citadel replicas without a Service in front: after a failed request the next goes to the next address)'),
    citadelTls: option(
      Type.Union([Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')]),
      'auto',
      'reach citadel over TLS, verifying its certificate against caRootPath; auto: on in Kubernetes and whenever citadelAddress is citadel\'s TLS port 15013',
    ),
    caRootPath: option(Type.String({ maxLength: 4096 }), '', 'PEM file of the mesh roots citadel\'s TLS certificate is verified with (in Kubernetes the istio-ca-root-cert ConfigMap, /var/run/secrets/istio/root-cert.pem), read at each request; required with citadelTls'),
    citadelSubjectAltName: option(Type.String({ maxLength: 253, pattern: '^[A-Za-z0-9.:-]*$' }), '', 'the DNS name (or IP) citadel\'s TLS certificate must carry (empty: the host of citadelAddress)'),
    name: option(Name, 'gateway', 'this proxy\'s workload instance name (pod name); part of the xDS node id'),
    namespace: option(Name, 'default', 'namespace of the workload this proxy serves'),
    serviceAccount: option(Name, 'default', 'service account of the workload (its SPIFFE id is spiffe://<trust domain>/ns/<namespace>/sa/<service account>)'),
    labels: option(Type.String({ maxLength: 4096, pattern: '^([A-Za-z0-9./_-]+=[A-Za-z0-9._-]*(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*)*)?$' }), '', 'workload labels as k=v,k=v (app and version feed telemetry)'),
    labelsPath: option(Type.String({ maxLength: 4096 }), '', 'workload labels file in the downward API format (key="value" per line; Istio\'s /etc/istio/pod/labels), read at start; its labels win over AVIARY_LABELS; empty: none'),
    podIp: option(Ip, '127.0.0.1', 'the workload IP: part of the xDS node id and INSTANCE_IPS (local mode: where pilot binds the sidecar\'s inbound listeners)'),
    joinToken: option(Type.String({ maxLength: 8192 }), '', 'bearer token for citadel CreateCertificate (local mode join token); empty: see --token-path', { secret: true }),
    tokenPath: option(Type.String({ maxLength: 4096 }), '', 'file holding the bearer token for citadel (a projected service-account token in Kubernetes), read at each request; empty with no join token: no workload certificate, no mTLS'),
    certTtlSeconds: option(Type.Integer({ minimum: 10, maximum: 31_536_000 }), 86_400, 'requested workload certificate lifetime; renewed at half of it (citadel clamps it to its maximum)'),
    envoyPath: option(Type.String({ maxLength: 4096 }), '', 'the Envoy binary (empty: ~/.cache/aviary-envoy/1.40.0/bin/envoy, installed by npm run setup)'),
    envoyAdminPort: option(PortOrZero, 0, 'Envoy\'s admin port on 127.0.0.1 (0: a free port picked at start; the agent admin passes config_dump, clusters, stats and certs through)'),
    envoyConcurrency: option(Type.Integer({ minimum: 1, maximum: 64 }), 2, 'Envoy worker threads (--concurrency)'),
    envoyLogLevel: option(Type.Union([Type.Literal('trace'), Type.Literal('debug'), Type.Literal('info'), Type.Literal('warning'), Type.Literal('error'), Type.Literal('critical'), Type.Literal('off')]), 'warning', 'Envoy\'s own log level; its lines go to the agent\'s log'),
    telemetryBatchSize: option(Type.Integer({ minimum: 1, maximum: 10_000 }), 500, 'request records per aviary.telemetry.v1.requests batch'),
    telemetryFlushMs: option(Millis(50, 60_000), 1_000, 'longest wait before a partial telemetry batch is published'),
    telemetryMaxBuffered: option(Type.Integer({ minimum: 1, maximum: 1_000_000 }), 10_000, 'request records held while NATS is away or slow (at least telemetryBatchSize); sent when it returns, and beyond this bound dropped and counted in aviary_agent_telemetry_records_dropped_total{reason="buffer_full"}'),
    accessLog: option(Type.Boolean(), true, 'write one JSON access log line per request'),
    appProbePort: option(PortOrZero, 0, 'port (on the pod address) of the app probe server: the injector rewrites app probes to /app-health/<container>/<livez|readyz|startupz> here and the agent runs the original probe (0: off; Istio\'s 15020)'),
    appProbers: option(Type.String({ maxLength: 65_536 }), '', 'the rewritten app probes as JSON, {"/app-health/<container>/<kind>": {"httpGet"|"tcpSocket": ..., "timeoutSeconds"}} (set by the injector)', { env: 'ISTIO_KUBE_APP_PROBERS' }),
    drainMs: option(Millis(0, 600_000), 5_000, 'on shutdown (and POST /drain), how long Envoy drains open connections before it quits'),
  },
});
