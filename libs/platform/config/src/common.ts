import Type, { type Static } from 'typebox';
import { option } from './spec';

export const Port = Type.Integer({ minimum: 1, maximum: 65535 });
export const PortOrZero = Type.Integer({ minimum: 0, maximum: 65535, description: 'a port (0 picks a free one)' });
export const Host = Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:_\\[\\]-]+$', description: 'a host name or IP address' });
export const NatsUrl = Type.String({ pattern: '^(nats|tls|ws|wss)://[^\\s]+$', description: 'a NATS URL such as nats://127.0.0.1:4222 (comma-separated for a cluster)' });
export const TrustDomain = Type.String({ pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$', description: 'a lowercase DNS-style trust domain such as cluster.local' });
export const LogLevel = Type.Union([
  Type.Literal('trace'),
  Type.Literal('debug'),
  Type.Literal('info'),
  Type.Literal('warn'),
  Type.Literal('error'),
  Type.Literal('fatal'),
  Type.Literal('silent'),
]);
export const Millis = (min: number, max: number) => Type.Integer({ minimum: min, maximum: max });

/** Options every app has. `adminPort` is filled in per app with its default port. */
export function commonOptions(app: string, adminPort: number) {
  return {
    natsUrl: option(NatsUrl, 'nats://127.0.0.1:4222', 'NATS server URL(s)'),
    natsReplicas: option(Type.Integer({ minimum: 1, maximum: 5 }), 1, 'JetStream replicas of the streams and KV buckets this app creates: 1 on one nats-server, 3 on a 3-node NATS cluster (at most the cluster size)'),
    natsUser: option(Type.String({ maxLength: 256, pattern: '^[^\\s]*$' }), '', 'NATS user this app connects as (empty: no authentication); its permissions are set by the server (docs/security.md)'),
    natsPassword: option(Type.String({ maxLength: 1024 }), '', 'password of natsUser', { secret: true }),
    adminHost: option(Host, '127.0.0.1', 'address the admin REST API binds to'),
    adminPort: option(PortOrZero, adminPort, 'admin REST API port (/healthz, /readyz, /metrics, /docs)'),
    healthHost: option(Host, '0.0.0.0', 'address of the monitoring listener (healthPort)'),
    healthPort: option(Type.Integer({ minimum: 0, maximum: 65535 }), 0, 'monitoring listener port: GET /healthz, /readyz and /metrics only, for kubelet probes and Prometheus while the admin API binds loopback (0: off)'),
    adminToken: option(Type.String({ maxLength: 4096 }), '', 'bearer token required on admin writes (empty: writes are refused)', { secret: true }),
    adminBodyLimit: option(Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024 }), 1024 * 1024, 'largest admin request body in bytes'),
    dataDir: option(Type.String({ minLength: 1 }), `.aviary/data/${app}`, 'directory for state that must survive a restart'),
    logLevel: option(LogLevel, 'info', 'log level'),
    trustDomain: option(TrustDomain, 'cluster.local', 'SPIFFE trust domain of the mesh'),
    shutdownTimeoutMs: option(Millis(100, 120_000), 10_000, 'longest graceful shutdown before a forced exit'),
    otelExporterOtlpEndpoint: option(Type.String(), '', 'OTLP endpoint for traces (tracing is off when empty)', { env: 'OTEL_EXPORTER_OTLP_ENDPOINT' }),
  } as const;
}

type CommonOptions = ReturnType<typeof commonOptions>;

/** The config fields every app has. */
export type CommonConfig = { readonly [K in keyof CommonOptions]: Static<CommonOptions[K]['schema']> };
