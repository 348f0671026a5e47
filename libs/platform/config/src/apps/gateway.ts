import Type from 'typebox';
import { commonOptions, Host, Millis, PortOrZero } from '../common';
import { defineConfig, option } from '../spec';

const Name = Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' });

export const gatewayConfig = defineConfig({
  app: 'gateway',
  summary: 'the mesh proxy: ingress gateway (--mode router) or sidecar (--mode sidecar)',
  options: {
    ...commonOptions('gateway', 15000),
    mode: option(Type.Union([Type.Literal('router'), Type.Literal('sidecar')]), 'router', 'proxy mode'),
    listenHost: option(Host, '127.0.0.1', 'address the traffic listeners bind to (replaces the address pilot sends)'),
    httpPort: option(PortOrZero, 8080, 'ingress HTTP port (router mode): pilot listeners on 8080 or 80 bind here'),
    httpsPort: option(PortOrZero, 8443, 'ingress HTTPS port (router mode): pilot listeners on 8443 or 443 bind here'),
    inboundPort: option(PortOrZero, 15006, 'sidecar inbound capture port: the virtualInbound listener binds here'),
    outboundPort: option(PortOrZero, 15001, 'sidecar outbound port: the virtualOutbound listener binds here; local apps call it directly'),
    statsPort: option(PortOrZero, 15090, 'Prometheus stats port (/stats/prometheus)'),
    pilotAddress: option(Type.String({ minLength: 1 }), '127.0.0.1:15010', 'pilot xDS address host:port'),
    xdsProtocol: option(Type.Union([Type.Literal('auto'), Type.Literal('delta'), Type.Literal('sotw')]), 'auto', 'ADS flavour: auto tries delta (DeltaAggregatedResources) and falls back to state of the world when pilot does not offer it'),
    citadelAddress: option(Type.String({ minLength: 1 }), '127.0.0.1:8060', 'citadel CA address host:port'),
    name: option(Name, 'gateway', 'this proxy\'s workload instance name (pod name); part of the xDS node id'),
    namespace: option(Name, 'default', 'namespace of the workload this proxy serves'),
    serviceAccount: option(Name, 'default', 'service account of the workload (its SPIFFE id is spiffe://<trust domain>/ns/<namespace>/sa/<service account>)'),
    labels: option(Type.String({ maxLength: 4096, pattern: '^([A-Za-z0-9./_-]+=[A-Za-z0-9._-]*(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*)*)?$' }), '', 'workload labels as k=v,k=v (app and version feed telemetry)'),
    podIp: option(Host, '127.0.0.1', 'the workload IP, part of the xDS node id'),
    joinToken: option(Type.String({ maxLength: 8192 }), '', 'bearer token for citadel CreateCertificate (local mode join token); empty: no workload certificate, no mTLS', { secret: true }),
    certTtlSeconds: option(Type.Integer({ minimum: 10, maximum: 31_536_000 }), 86_400, 'requested workload certificate lifetime; renewed at half of it (citadel clamps it to its maximum)'),
    telemetryBatchSize: option(Type.Integer({ minimum: 1, maximum: 10_000 }), 500, 'request records per aviary.telemetry.v1.requests batch'),
    telemetryFlushMs: option(Millis(50, 60_000), 1_000, 'longest wait before a partial telemetry batch is published'),
    accessLog: option(Type.Boolean(), true, 'write one JSON access log line per request'),
    drainMs: option(Millis(0, 600_000), 5_000, 'how long /drain and shutdown let open connections finish'),
  },
});
