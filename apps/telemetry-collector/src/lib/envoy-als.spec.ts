import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { buildSnapshot, parseNode } from '@aviary/mesh-model';
import { translate } from '@aviary/xds-translate';
import { createTelemetryPublisher, startAccessLogServer, type AccessLogServer, type ProxyIdentity, type RecordBatcher, type TelemetryRecord } from '@aviary/access-log';
import { parseConfig, telemetryConfig } from '@aviary/config';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { createLogger } from '@aviary/observability';
import { runComponent, type RunningComponent } from '@aviary/runtime';
import { EnvoyProcess, hasEnvoy, helloMesh, HELLO_HOST, OpenSsl, ROUTER_LISTENER, routerBootstrap, sidecarInboundBootstrap, staticSecrets, type TranslateMesh } from '@aviary/testing';
import { buildCollector, type Collector } from './collector';

const translateMesh: TranslateMesh = (objects, node) => translate(parseNode(node), buildSnapshot(objects, { trustDomain: 'cluster.local' }));

/**
 * The whole telemetry path with real processes and no mocks: HTTP requests through two real
 * Envoys (an ingress gateway and a sidecar's inbound side, configured by pilot's translation,
 * talking ISTIO_MUTUAL with openssl-issued SPIFFE certificates in place of SDS)
 * → Envoy's gRPC access log → the agents' ALS servers → the agents' batching publishers → a real
 * nats-server (JetStream) → the telemetry-collector → Istio's metrics, with both reporters.
 * Every port is ephemeral.
 */

const logger = createLogger('test', 'silent');
const envoyPath = process.env['AVIARY_ENVOY_PATH'];
const WORKLOAD_IP = '127.0.0.58';
const REQUESTS = 20;

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Agent {
  readonly bus: Bus;
  readonly als: AccessLogServer;
  readonly publisher: RecordBatcher<TelemetryRecord>;
}

async function startAgent(natsUrl: string, dir: string, proxyId: string, identity: ProxyIdentity): Promise<Agent> {
  const bus = await Bus.connect({ url: natsUrl, source: 'gateway', logger, registry: new Registry() });
  const publisher = createTelemetryPublisher({ publish: (records) => bus.publishDurable('aviary.telemetry.v1.requests', { proxyId, records }), maxRecords: 5, flushMs: 100 });
  const als = await startAccessLogServer({ socketPath: join(dir, `${identity.workload}.sock`), identity, onRecords: (rs) => rs.forEach((r) => publisher.add(r)) });
  return { bus, als, publisher };
}

describe.skipIf(!hasEnvoy(envoyPath))('Envoy access logs reach the collector through NATS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aviary-als-collector-'));
  let nats: NatsServer;
  let backend: Server;
  let gateway: Agent;
  let sidecarAgent: Agent;
  let router: EnvoyProcess;
  let sidecar: EnvoyProcess;
  let running: RunningComponent;
  let collector: Collector;
  const ssl = new OpenSsl();
  const GATEWAY_ID = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
  const HELLO_ID = 'spiffe://cluster.local/ns/demo/sa/hello';

  beforeAll(async () => {
    nats = await NatsServer.start();
    const parsed = parseConfig(telemetryConfig, [], { AVIARY_NATS_URL: nats.url, AVIARY_ADMIN_PORT: '0', AVIARY_LOG_LEVEL: 'silent' });
    if (parsed.kind !== 'config') throw new Error('help');
    running = await runComponent({ spec: telemetryConfig, config: parsed.config, description: 'test', build: async (ctx) => (collector = await buildCollector(ctx, { otlpEndpoint: '' })) });

    backend = createServer((req, res) => req.resume().on('end', () => res.end('hello from v1')));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const port = (backend.address() as AddressInfo).port;
    const mesh = helloMesh(translateMesh, WORKLOAD_IP, port, { mtls: true });
    const trustedCa = ssl.ca();
    const gwCert = ssl.spiffeCert('gateway', GATEWAY_ID);
    const helloCert = ssl.spiffeCert('hello', HELLO_ID);
    gateway = await startAgent(nats.url, dir, 'router~127.0.0.1~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local', {
      namespace: 'istio-system',
      workload: 'istio-ingressgateway',
      labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
      principal: GATEWAY_ID,
    });
    sidecarAgent = await startAgent(nats.url, dir, `sidecar~${WORKLOAD_IP}~hello-v1-1.demo~demo.svc.cluster.local`, {
      namespace: 'demo',
      workload: 'hello-v1',
      labels: { app: 'hello', version: 'v1' },
      principal: HELLO_ID,
    });
    const sidecarBoot = sidecarInboundBootstrap(mesh.sidecar, sidecarAgent.als.socketPath, WORKLOAD_IP, port, { mtls: true });
    sidecar = await EnvoyProcess.start(staticSecrets(sidecarBoot, { certChain: helloCert.cert, privateKey: helloCert.key, trustedCa }), { envoyPath });
    const routerBoot = staticSecrets(routerBootstrap(mesh.router, gateway.als.socketPath), { certChain: gwCert.cert, privateKey: gwCert.key, trustedCa });
    router = await EnvoyProcess.start(routerBoot, { envoyPath, env: { ISTIO_META_WORKLOAD_NAME: 'istio-ingressgateway' } });
  });

  afterAll(async () => {
    await router?.stop();
    await sidecar?.stop();
    for (const a of [gateway, sidecarAgent]) {
      await a?.als.stop();
      await a?.publisher.flush();
      await a?.bus.close();
    }
    await running?.shutdown('test done');
    await nats?.stop();
    await new Promise((r) => backend?.close(r));
    ssl.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('istio_requests_total counts every request once per reporter, with source and destination labels', async () => {
    const port = await router.listenerPort(ROUTER_LISTENER);
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/hello/${i}`, { headers: { traceparent: `00-${'c'.repeat(30)}${String(i).padStart(2, '0')}-00f067aa0ba902b7-01` } });
      expect(res.status).toBe(200);
      await res.text();
    }
    await until(() => collector.ingestor.count >= 2 * REQUESTS, `${2 * REQUESTS} records in the collector`);
    expect(collector.ingestor.count).toBe(2 * REQUESTS);

    const text = (await running.admin.inject({ method: 'GET', url: '/stats/prometheus' })).body;
    const requests = text.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    const source = requests.find((l) => l.includes('reporter="source"'));
    const destination = requests.find((l) => l.includes('reporter="destination"'));
    expect(source).toBeDefined();
    expect(destination).toBeDefined();
    for (const [label, value] of Object.entries({
      source_workload: 'istio-ingressgateway',
      source_workload_namespace: 'istio-system',
      source_principal: GATEWAY_ID,
      destination_principal: HELLO_ID,
      destination_workload: 'hello-v1',
      destination_workload_namespace: 'demo',
      destination_service: HELLO_HOST,
      destination_version: 'v1',
      response_code: '200',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    })) {
      expect(source, label).toContain(`${label}="${value}"`);
    }
    expect(source).toMatch(new RegExp(`\\} ${REQUESTS}$`));
    for (const [label, value] of Object.entries({
      source_workload: 'istio-ingressgateway',
      source_workload_namespace: 'istio-system',
      source_principal: GATEWAY_ID,
      destination_principal: HELLO_ID,
      destination_workload: 'hello-v1',
      destination_workload_namespace: 'demo',
      destination_service: HELLO_HOST,
      destination_app: 'hello',
      response_code: '200',
      connection_security_policy: 'mutual_tls',
    })) {
      expect(destination, label).toContain(`${label}="${value}"`);
    }
    expect(destination).toMatch(new RegExp(`\\} ${REQUESTS}$`));
    expect(text).toMatch(/istio_request_duration_milliseconds_count\{reporter="source"[^}]*\} 20$/m);
  });
});
