import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEnvoy, gatewayConfig, parseConfig } from '@aviary/config';
import { Bus, Subjects } from '@aviary/events';
import { Issuer } from '@aviary/pki';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { runComponent, type RunningComponent } from '@aviary/runtime';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { parseNode, proxyKinds, type ProxyInfo } from '@aviary/mesh-model';
import { SnapshotCache } from '@aviary/testing';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { XdsServer } from '@aviary/xds-server';
import { httpAccessLog } from '@aviary/xds-translate';
import { buildGateway, type GatewayConfig } from './gateway';

const CLUSTER = 'outbound|80||echo.default.svc.cluster.local';

function snapshot(listenerPort: number, port: number): Snapshot {
  return Snapshot.build({
    [TypeUrl.Listener]: [
      {
        name: '127.0.0.1_8080',
        address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } },
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': ExtensionTypeUrl.HttpConnectionManager,
                  stat_prefix: 'outbound_0.0.0.0_8080',
                  access_log: [httpAccessLog({ reporter: 'source' })],
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
let appProbePort = 0;
let bus: Bus;
const dataDir = mkdtempSync(join(tmpdir(), 'aviary-gateway-'));

beforeAll(async () => {
  nats = await NatsServer.start();
  backend = createServer((req, res) => {
    req.resume();
    // The NATS outage test marks its requests by status.
    if (req.url?.startsWith('/outage') === true) res.statusCode = 202;
    res.end('echo');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const cache = new SnapshotCache<ProxyInfo>({ groupOf: () => 'all' });
  [httpPort, statsPort, appProbePort] = [await freePort(), await freePort(), await freePort()];
  cache.setSnapshot('all', snapshot(httpPort, (backend.address() as AddressInfo).port));
  xds = new XdsServer({ source: cache, nodeParser: (node) => parseNode(node), kinds: proxyKinds, debounce: { quietMs: 0, maxDelayMs: 0 } });
  const xdsPort = await freePort();
  await xds.listen(`127.0.0.1:${xdsPort}`);
  const parsed = parseConfig(gatewayConfig, [], {
    AVIARY_NATS_URL: nats.url,
    AVIARY_ADMIN_PORT: '0',
    AVIARY_STATUS_PORT: '0',
    AVIARY_DATA_DIR: dataDir,
    AVIARY_STATS_PORT: String(statsPort),
    AVIARY_PILOT_ADDRESS: `127.0.0.1:${xdsPort}`,
    AVIARY_LOG_LEVEL: 'silent',
    AVIARY_TELEMETRY_FLUSH_MS: '50',
    AVIARY_NAME: 'ingress-1',
    AVIARY_NAMESPACE: 'istio-system',
    AVIARY_LABELS: 'app=ingress,version=v1',
    // The injector's app probe rewrite: the agent runs the original probe against the app.
    AVIARY_APP_PROBE_PORT: String(appProbePort),
    ISTIO_KUBE_APP_PROBERS: JSON.stringify({ '/app-health/echo/readyz': { httpGet: { path: '/healthz', port: (backend.address() as AddressInfo).port } } }),
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
  rmSync(dataDir, { recursive: true, force: true });
});

async function waitFor(what: string, predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!(await predicate().catch(() => false))) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.runIf(findEnvoy(process.env['AVIARY_ENVOY_PATH']) !== undefined)('gateway app (the agent around Envoy)', () => {
  it('starts Envoy with config from pilot, serves traffic, reports ready, passes Envoy\'s admin through and serves Prometheus stats', async () => {
    await waitFor('traffic', async () => (await fetch(`http://127.0.0.1:${httpPort}/hello`)).status === 200, 20_000);
    expect(await (await fetch(`http://127.0.0.1:${httpPort}/hello`)).text()).toBe('echo');
    await waitFor('ready', async () => (await fetch(`${gateway.adminUrl}/ready`)).status === 200);
    expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(200);
    const listeners = (await (await fetch(`${gateway.adminUrl}/listeners?format=json`)).json()) as { listener_statuses: { name: string }[] };
    expect(listeners.listener_statuses.map((l) => l.name)).toContain('127.0.0.1_8080');
    const dump = (await (await fetch(`${gateway.adminUrl}/config_dump?resource=dynamic_active_clusters`)).json()) as { configs: { cluster: { name: string } }[] };
    expect(dump.configs.map((c) => c.cluster.name)).toEqual([CLUSTER]);
    const clusters = (await (await fetch(`${gateway.adminUrl}/clusters?format=json`)).json()) as { cluster_statuses: { name: string; host_statuses?: unknown[] }[] };
    expect(clusters.cluster_statuses.find((c) => c.name === CLUSTER)?.host_statuses).toHaveLength(1);
    const agent = (await (await fetch(`${gateway.adminUrl}/agent`)).json()) as { envoy: { state: string }; configReceived: boolean; pilotConnected: boolean };
    expect(agent).toMatchObject({ envoy: { state: 'LIVE' }, configReceived: true });
    await waitFor('the pilot connection', async () => ((await (await fetch(`${gateway.adminUrl}/agent`)).json()) as { pilotConnected: boolean }).pilotConnected);
    const prom = await (await fetch(`http://127.0.0.1:${statsPort}/stats/prometheus`)).text();
    expect(prom).toContain(`envoy_cluster_upstream_rq{response_code="200",cluster_name="${CLUSTER}"} `);

    // The app probe server answers the rewritten probe from the app itself.
    expect((await fetch(`http://127.0.0.1:${appProbePort}/app-health/echo/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${appProbePort}/app-health/other/readyz`)).status).toBe(404);

    // Envoy's access log reaches the agent over ALS and leaves as request records on NATS.
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
    expect(records[0]).toMatchObject({ reporter: 'source', sourceWorkload: 'ingress', sourceNamespace: 'istio-system', destinationService: 'echo.default.svc.cluster.local', responseCode: 200 });

    // The trust bundle from citadel (aviary.ca.v1.bundle) becomes the ROOTCA secret the agent serves Envoy.
    const root = Issuer.createRoot({ trustDomain: 'cluster.local' });
    bus.publish(Subjects.caBundle, { version: 7, roots: [root.rootPem] });
    await waitFor('ROOTCA in Envoy', async () => ((await (await fetch(`${gateway.adminUrl}/agent`)).json()) as { secrets: string[] }).secrets.includes('ROOTCA'));
  });

  it('stays ready and serves while NATS is down, holds the telemetry and sends it when NATS returns', async () => {
    const metric = async (name: string): Promise<number> => {
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(await (await fetch(`${gateway.adminUrl}/metrics`)).text());
      return m === null ? NaN : Number(m[1]);
    };
    const dropped = async (): Promise<number> => {
      const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
      const lines = [...text.matchAll(/^aviary_agent_telemetry_records_dropped_total\{[^}]*reason="[a-z_]+"[^}]*\} (\d+)$/gm)];
      expect(lines).toHaveLength(3);
      return lines.reduce((n, m) => n + Number(m[1]), 0);
    };
    const droppedBefore = await dropped();
    // Only this test's requests are answered 202.
    const path = '/outage';
    await nats.kill();
    try {
      await waitFor('the agent to see NATS go', async () => ((await (await fetch(`${gateway.adminUrl}/readyz`)).json()) as { checks: { nats: boolean } }).checks.nats === false);
      const readyz = await fetch(`${gateway.adminUrl}/readyz`);
      expect(readyz.status).toBe(200);
      expect(await readyz.json()).toEqual({ status: 'ready', checks: { nats: false, envoy: true } });
      for (let i = 0; i < 20; i++) expect((await fetch(`http://127.0.0.1:${httpPort}${path}`)).status).toBe(202);
      // The records are held (the publish fails or waits for its ack while NATS is away).
      await waitFor('20 records held', async () => (await metric('aviary_agent_telemetry_records_buffered')) >= 20);
      expect((await fetch(`${gateway.adminUrl}/readyz`)).status).toBe(200);
    } finally {
      await nats.restart();
    }
    const seen: number[] = [];
    await waitFor('the agent to reconnect', async () => ((await (await fetch(`${gateway.adminUrl}/readyz`)).json()) as { checks: { nats: boolean } }).checks.nats, 20_000);
    const consumer = await bus.consumeDurable(Subjects.telemetryRequests, 'gateway-spec-outage', (e) => {
      for (const r of e.data.records as Array<{ responseCode: number }>) seen.push(r.responseCode);
    });
    try {
      await waitFor('the held records on NATS', async () => seen.filter((c) => c === 202).length >= 20, 30_000);
    } finally {
      await consumer.stop();
    }
    // Sent once each (a retried batch keeps its JetStream msgID), none dropped.
    expect(seen.filter((c) => c === 202)).toHaveLength(20);
    expect(await metric('aviary_agent_telemetry_records_buffered')).toBe(0);
    expect(await dropped()).toBe(droppedBefore);
  });
});
