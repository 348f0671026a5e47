import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@aviary/nats-runner';
import { parseNode, proxyKinds, type ProxyInfo } from '@aviary/mesh-model';
import { SnapshotCache } from '@aviary/testing';
import { Snapshot } from '@aviary/xds-cache';
import { TypeUrl } from '@aviary/xds-protos';
import { XdsServer } from '@aviary/xds-server';
import { EnvoyAgent } from './agent';
import { SDS_CLUSTER, type XdsProtocol } from './bootstrap';
import { findEnvoy } from '@aviary/config';
import { agentNode } from './node';
import { TestCitadel } from './testing.test-helper';

const ENVOY = findEnvoy(process.env['AVIARY_ENVOY_PATH']) ?? '';
const T = 'type.googleapis.com/';
const SPIFFE = 'spiffe://cluster.local/ns/demo/sa/hello';

/** A TLS listener whose certificate comes from the agent's SDS (`default`), routing to `backendPort`. */
function snapshot(listenerPort: number, backendPort: number, sdsApi: 'GRPC' | 'DELTA_GRPC'): Snapshot {
  const sds = (name: string) => ({ name, sds_config: { api_config_source: { api_type: sdsApi, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }] }, resource_api_version: 'V3', initial_fetch_timeout: { seconds: 0 } } });
  return Snapshot.build({
    [TypeUrl.Listener]: [
      {
        name: 'tls',
        address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } },
        filter_chains: [
          {
            transport_socket: {
              name: 'envoy.transport_sockets.tls',
              typed_config: {
                '@type': `${T}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
                common_tls_context: { tls_certificate_sds_secret_configs: [sds('default')], validation_context_sds_secret_config: sds('ROOTCA'), alpn_protocols: ['http/1.1'] },
              },
            },
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
                  stat_prefix: 'tls',
                  route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] }] },
                  http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': `${T}envoy.extensions.filters.http.router.v3.Router` } }],
                },
              },
            ],
          },
        ],
      },
    ],
    [TypeUrl.Cluster]: [{ name: 'backend', type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: { cluster_name: 'backend', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } } }] }] } }],
  });
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function get(port: number, agent: HttpsAgent): Promise<{ status: number; serial: string; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', agent, rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      res.resume();
      const socket = res.socket as TLSSocket;
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial: socket.getPeerCertificate().serialNumber, socket }));
    });
    req.on('error', reject);
    req.end();
  });
}

let citadel: TestCitadel;
let backend: Server;
let xds: XdsServer<ProxyInfo>;
let xdsPort = 0;
let backendPort = 0;
const cache = new SnapshotCache<ProxyInfo>({ groupOf: (p) => p.id });

beforeAll(async () => {
  citadel = await TestCitadel.start();
  backend = createServer((req, res) => {
    req.resume();
    res.end('backend');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as AddressInfo).port;
  xds = new XdsServer({ source: cache, nodeParser: (node) => parseNode(node), kinds: proxyKinds, debounce: { quietMs: 0, maxDelayMs: 0 } });
  xdsPort = await xds.listen('127.0.0.1:0');
});

afterAll(async () => {
  await xds?.stop(50);
  await new Promise((r) => backend?.close(r));
  citadel?.stop();
});

describe.runIf(ENVOY !== '')('EnvoyAgent with a real Envoy, pilot\'s ADS server and citadel\'s CA', () => {
  for (const protocol of ['sotw', 'delta'] as const satisfies readonly XdsProtocol[]) {
    it(`${protocol}: ready once Envoy has config and secrets; renews the certificate without dropping connections; restarts a crashed Envoy; drains on stop`, async () => {
      const workDir = mkdtempSync(join(tmpdir(), 'aviary-agent-'));
      const node = agentNode({ mode: 'sidecar', platform: 'local', name: `hello-${protocol}`, namespace: 'demo', serviceAccount: 'hello', labels: 'app=hello', podIp: '127.0.0.1', trustDomain: 'cluster.local' });
      const listenerPort = await freePort();
      cache.setSnapshot(node.id, snapshot(listenerPort, backendPort, protocol === 'delta' ? 'DELTA_GRPC' : 'GRPC'));
      const lines: Record<string, unknown>[] = [];
      const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
      const registry = new Registry();
      const token = citadel.token();
      const agent = new EnvoyAgent({
        workDir,
        envoyBinary: ENVOY,
        bootstrap: { node, pilot: { host: '127.0.0.1', port: xdsPort }, xdsProtocol: protocol },
        envoyAdminPort: 0,
        concurrency: 1,
        envoyLogLevel: 'info',
        drainMs: 300,
        logger,
        registry,
        identity: { address: citadel.address, token: () => token, spiffeId: SPIFFE, ttlSeconds: 4 },
        restartBackoff: { initialMs: 100, maxMs: 1_000, stableMs: 60_000 },
        readinessPollMs: 100,
      });
      const https = new HttpsAgent({ keepAlive: true, maxSockets: 1 });
      try {
        await agent.start();
        expect(JSON.parse(readFileSync(agent.paths.bootstrap, 'utf8')).node.id).toBe(node.id);
        await until('ready', () => agent.ready());
        expect([...agent.status().secrets].sort()).toEqual(['ROOTCA', 'default']);

        const first = await get(listenerPort, https);
        expect(first.status).toBe(200);
        expect(first.socket.getPeerCertificate().subjectaltname).toBe(`URI:${SPIFFE}`);
        expect(first.serial).toBe(agent.identity!.certificate!.serial.toUpperCase());

        // Renewal at half of 4 s: Envoy gets the new certificate over SDS; the open connection stays.
        const serial0 = agent.identity!.certificate!.serial;
        await until('a renewal', () => agent.identity!.certificate!.serial !== serial0, 10_000);
        await until('Envoy to serve the new certificate', async () => (await agent.admin.get('/certs')).body.includes(agent.identity!.certificate!.serial.toLowerCase()));
        const again = await get(listenerPort, https);
        expect(again.status).toBe(200);
        expect(again.socket).toBe(first.socket);
        const fresh = await get(listenerPort, new HttpsAgent({ keepAlive: false }));
        expect(fresh.serial).not.toBe(first.serial);

        // Root rotation: the trust bundle from citadel becomes ROOTCA.
        const bundle = await citadel.ca.rotate();
        agent.setTrustBundle(bundle.roots);
        expect(bundle.roots.length).toBeGreaterThanOrEqual(2);
        await until('ROOTCA with every root of the bundle', async () => {
          const certs = JSON.parse((await agent.admin.get('/certs')).body) as { certificates: { ca_cert: unknown[] }[] };
          return certs.certificates.some((c) => c.ca_cert.length === bundle.roots.length);
        });

        // Envoy crashes: the agent starts a new one, which gets config and secrets and is ready again.
        const pid = agent.status().envoy.pid!;
        process.kill(pid, 'SIGKILL');
        await until('the restart', () => agent.status().envoy.restarts === 1 && agent.status().envoy.pid !== pid);
        await until('ready after the restart', () => agent.ready());
        expect((await get(listenerPort, new HttpsAgent({ keepAlive: false }))).status).toBe(200);
        expect(lines.some((l) => l['msg'] === 'Envoy exited unexpectedly; restarting' && l['signal'] === 'SIGKILL')).toBe(true);
        // Envoy's own lines are in the agent's log, at their level, with the Envoy logger name.
        expect(lines.some((l) => l['component'] === 'envoy' && typeof l['envoy'] === 'string' && l['level'] === 30)).toBe(true);
      } finally {
        https.destroy();
        const pid = agent.status().envoy.pid;
        await agent.stop();
        expect(agent.ready()).toBe(false);
        if (pid !== undefined) expect(() => process.kill(pid, 0)).toThrow();
        rmSync(workDir, { recursive: true, force: true });
      }
    });
  }
});
