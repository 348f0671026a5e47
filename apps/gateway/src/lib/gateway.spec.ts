import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayConfig, parseConfig } from '@aviary/config';
import { Bus, Subjects } from '@aviary/events';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { runComponent, type RunningComponent } from '@aviary/runtime';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { parseNode, proxyKinds, type ProxyInfo } from '@aviary/mesh-model';
import { SnapshotCache } from '@aviary/testing';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { XdsServer } from '@aviary/xds-server';
import { buildGateway, type GatewayConfig } from './gateway';

const CLUSTER = 'outbound|80||echo.default.svc.cluster.local';

function snapshot(port: number): Snapshot {
  return Snapshot.build({
    [TypeUrl.Listener]: [
      {
        name: '0.0.0.0_8080',
        address: { socket_address: { address: '0.0.0.0', port_value: 8080 } },
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': ExtensionTypeUrl.HttpConnectionManager,
                  stat_prefix: 'outbound_0.0.0.0_8080',
                  rds: { route_config_name: 'http.8080', config_source: { ads: {} } },
                  http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ExtensionTypeUrl.Router } }],
                },
              },
            ],
          },
        ],
      },
    ],
    [TypeUrl.RouteConfiguration]: [{ name: 'http.8080', virtual_hosts: [{ name: 'echo', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: CLUSTER } }] }] }],
    [TypeUrl.Cluster]: [{ name: CLUSTER, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, service_name: CLUSTER } }],
    [TypeUrl.ClusterLoadAssignment]: [
      { cluster_name: CLUSTER, endpoints: [{ locality: { region: 'local' }, load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }] },
    ],
  });
}

let nats: NatsServer;
let backend: Server;
let xds: XdsServer<ProxyInfo>;
let gateway: RunningComponent;
let httpPort = 0;
let statsPort = 0;
let bus: Bus;

beforeAll(async () => {
  nats = await NatsServer.start();
  backend = createServer((req, res) => {
    req.resume();
    res.end('echo');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const cache = new SnapshotCache<ProxyInfo>({ groupOf: () => 'all' });
  cache.setSnapshot('all', snapshot((backend.address() as AddressInfo).port));
  xds = new XdsServer({ source: cache, nodeParser: (node) => parseNode(node), kinds: proxyKinds, debounce: { quietMs: 0, maxDelayMs: 0 } });
  const xdsPort = await freePort();
  await xds.listen(`127.0.0.1:${xdsPort}`);
  [httpPort, statsPort] = [await freePort(), await freePort()];
  const parsed = parseConfig(gatewayConfig, [], {
    AVIARY_NATS_URL: nats.url,
    AVIARY_ADMIN_PORT: '0',
    AVIARY_HTTP_PORT: String(httpPort),
    AVIARY_STATS_PORT: String(statsPort),
    AVIARY_PILOT_ADDRESS: `127.0.0.1:${xdsPort}`,
    AVIARY_LOG_LEVEL: 'silent',
    AVIARY_TELEMETRY_FLUSH_MS: '50',
    AVIARY_NAME: 'ingress-1',
    AVIARY_NAMESPACE: 'istio-system',
    AVIARY_LABELS: 'app=ingress,version=v1',
  });
  if (parsed.kind !== 'config') throw new Error('help');
  const config = parsed.config as GatewayConfig;
  gateway = await runComponent({ spec: gatewayConfig, config, description: 'test', build: buildGateway });
  bus = await Bus.connect({ url: nats.url, source: 'test', logger: pino({ level: 'silent' }), registry: new Registry() });
});

afterAll(async () => {
  await gateway?.shutdown('test');
  await bus?.close();
  await xds?.stop(50);
  await new Promise((r) => backend?.close(r));
  await nats?.stop();
});

async function waitFor(what: string, predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await predicate().catch(() => false))) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('gateway app', () => {
  it('gets its config from pilot, serves traffic, reports ready, publishes telemetry and stats', async () => {
    await waitFor('traffic', async () => (await fetch(`http://127.0.0.1:${httpPort}/hello`)).status === 200);
    expect(await (await fetch(`http://127.0.0.1:${httpPort}/hello`)).text()).toBe('echo');
    const ready = await fetch(`${gateway.adminUrl}/ready`);
    expect(ready.status).toBe(200);
    const dump = (await (await fetch(`${gateway.adminUrl}/config_dump`)).json()) as { listeners: { name: string; bound: number }[]; xds: Record<string, { version: string }> };
    expect(dump.listeners[0]).toMatchObject({ name: '0.0.0.0_8080', bound: httpPort });
    expect(dump.xds.lds!.version).not.toBe('');
    const clusters = (await (await fetch(`${gateway.adminUrl}/clusters`)).json()) as Record<string, { endpoints: { ejected: boolean }[] }>;
    expect(clusters[CLUSTER]!.endpoints).toHaveLength(1);

    const records: Record<string, unknown>[] = [];
    let proxyId = '';
    const consumer = await bus.consumeDurable(Subjects.telemetryRequests, 'gateway-spec', (e) => {
      proxyId = e.data.proxyId;
      records.push(...(e.data.records as Record<string, unknown>[]));
    });
    try {
      await waitFor('telemetry', async () => records.length >= 2);
    } finally {
      await consumer.stop();
    }
    expect(proxyId).toBe('router~127.0.0.1~ingress-1.istio-system~istio-system.svc.cluster.local');
    expect(records[0]).toMatchObject({ reporter: 'source', sourceWorkload: 'ingress', sourceNamespace: 'istio-system', destinationService: 'echo.default.svc.cluster.local', destinationNamespace: 'default', responseCode: 200, protocol: 'http' });
    const prom = await (await fetch(`http://127.0.0.1:${statsPort}/stats/prometheus`)).text();
    expect(prom).toContain(`envoy_cluster_upstream_rq_total{envoy_cluster_name="${CLUSTER}",envoy_response_code_class="2xx"}`);
  });
});
