import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { createServer as createH2cServer } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { parseAllDocuments } from 'yaml';
import { KvConfigStore, type StoredObject } from '@aviary/config-store';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { testEnvoy, TestSdsServer } from '@aviary/testing';
import { TypeUrl } from '@aviary/xds-protos';
import { Discovery } from './discovery';

/**
 * Local mode with the real data plane: pilot's discovery (NATS KV store → model → translation →
 * ADS) in-process, one upstream Envoy started as the agent starts it in local mode (node
 * metadata INTERCEPTION_MODE NONE, INSTANCE_IPS, `sds-grpc` over a Unix socket). Envoy must ACK
 * everything, bind the inbound listener on the workload's own IP and the outbound one on the
 * Sidecar's egress bind, and carry a request app → outbound → mTLS (ISTIO_MUTUAL, SPIFFE SAN)
 * → its own inbound → app. The workload IP is a random 127/8 address and the ports are free
 * ones, so runs never collide (no e2e lock needed).
 */

const envoy = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const rand = (n: number) => Math.floor(Math.random() * n);

async function freePort(host: string): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, host, resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).end();
  });
}

describe.each(['GRPC', 'DELTA_GRPC'] as const)('pilot → upstream Envoy in local mode (INTERCEPTION_MODE NONE), ADS api_type %s', (apiType) => {
  if (envoy.skip !== undefined) {
    it.skip(envoy.skip, () => undefined);
    return;
  }
  const ip = `127.${100 + rand(100)}.${1 + rand(250)}.${1 + rand(250)}`;
  let nats: NatsServer;
  let bus: Bus;
  let discovery: Discovery;
  let sds: TestSdsServer;
  let proc: ChildProcess | undefined;
  let log = '';
  let adminPort = 0;
  const dir = mkdtempSync(join(tmpdir(), 'aviary-envoy-local-'));
  const app = createServer((req, res) => res.end(`hello from the app, ${req.headers['x-forwarded-client-cert'] ? 'with' : 'without'} XFCC`));
  let appPort = 0;
  let servicePort = 0;
  // An HTTP/2-only (h2c) app behind an HTTP2 port: the sidecar-to-sidecar hop must be h2 (ALPN h2).
  const h2app = createH2cServer((req, res) => res.end(`h2 app, ${req.headers['x-forwarded-client-cert'] ? 'with' : 'without'} XFCC`));
  let h2AppPort = 0;
  let h2ServicePort = 0;

  beforeAll(async () => {
    appPort = await freePort(ip); // the app on 127.0.0.1, the sidecar's inbound on <ip>, same port
    servicePort = await freePort(ip);
    h2AppPort = await freePort(ip);
    h2ServicePort = await freePort(ip);
    await new Promise<void>((r) => app.listen(appPort, '127.0.0.1', r));
    await new Promise<void>((r) => h2app.listen(h2AppPort, '127.0.0.1', r));
    nats = await NatsServer.start();
    const logger = pino({ level: 'silent' });
    bus = await Bus.connect({ url: nats.url, source: 'test', logger, registry: new Registry() });
    const store = await KvConfigStore.open(bus, { bucket: `envoy_local_${apiType}` });
    const yaml = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello, namespace: demo }
spec:
  hosts: [hello.demo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${servicePort}, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: hello-v1, namespace: demo }
spec: { address: ${ip}, ports: { http: ${appPort} }, serviceAccount: hello, labels: { app: hello, security.istio.io/tlsMode: istio } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello-h2, namespace: demo }
spec:
  hosts: [hello-h2.demo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${h2ServicePort}, name: http2, protocol: HTTP2, targetPort: ${h2AppPort} }]
  workloadSelector: { labels: { app: hello } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: hello, namespace: demo }
spec: { host: hello.demo.svc.cluster.local, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: hello, namespace: demo }
spec:
  workloadSelector: { labels: { app: hello } }
  egress: [{ hosts: ['./*'], bind: ${ip} }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: demo }
spec: { mtls: { mode: STRICT } }
`;
    for (const doc of parseAllDocuments(yaml)) await store.apply(doc.toJS() as StoredObject);
    discovery = new Discovery({ store, bus, logger, registry: new Registry(), trustDomain: 'cluster.local', debounce: { quietMs: 0, maxDelayMs: 0 } });
    await discovery.start();
    const xdsPort = await discovery.listen('127.0.0.1', 0);
    sds = await TestSdsServer.start('spiffe://cluster.local/ns/demo/sa/hello');

    const http2 = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } };
    const cluster = (name: string, address: unknown) => ({ name, type: 'STATIC', connect_timeout: '1s', typed_extension_protocol_options: http2, load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] } });
    const bootstrap = {
      node: {
        id: `sidecar~${ip}~hello-v1.demo~demo.svc.cluster.local`,
        cluster: 'hello.demo',
        metadata: { NAMESPACE: 'demo', SERVICE_ACCOUNT: 'hello', LABELS: { app: 'hello' }, INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: ip, WORKLOAD_NAME: 'hello-v1' },
      },
      admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
      // As Istio's bootstrap: without a connection limit Envoy warns at start.
      overload_manager: {
        resource_monitors: [
          {
            name: 'envoy.resource_monitors.global_downstream_max_connections',
            typed_config: { '@type': 'type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig', max_active_downstream_connections: 2147483647 },
          },
        ],
      },
      dynamic_resources: {
        ads_config: { api_type: apiType, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'xds-grpc' } }] },
        lds_config: { ads: {}, resource_api_version: 'V3' },
        cds_config: { ads: {}, resource_api_version: 'V3' },
      },
      static_resources: {
        clusters: [
          cluster('xds-grpc', { socket_address: { address: '127.0.0.1', port_value: xdsPort } }),
          cluster('sds-grpc', { pipe: { path: sds.socket } }),
          cluster('aviary-als', { pipe: { path: join(dir, 'als.sock') } }),
        ],
      },
    };
    writeFileSync(join(dir, 'bootstrap.json'), JSON.stringify(bootstrap));
    const args = ['-c', join(dir, 'bootstrap.json'), '--use-dynamic-base-id', '--concurrency', '1', '--log-level', 'warning', '--admin-address-path', join(dir, 'admin')];
    proc = spawn(envoy.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const admin = await waitFor('the Envoy admin address', () => {
      if (proc?.exitCode !== null) throw new Error(`envoy exited ${proc?.exitCode}: ${log}`);
      const text = readFileSync(join(dir, 'admin'), 'utf8').trim();
      return text === '' ? undefined : text;
    });
    adminPort = Number(admin.split(':').pop());
  });

  afterAll(async () => {
    proc?.kill('SIGTERM');
    if (proc && proc.exitCode === null) await new Promise((r) => proc!.once('exit', r));
    await discovery?.stop();
    await sds?.stop();
    await bus?.close();
    await nats?.stop();
    await new Promise((r) => app.close(r));
    await new Promise((r) => h2app.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('ACKs every type pilot sent, with no NACK', async () => {
    const status = await waitFor('ACKs of CDS, EDS, LDS and RDS', () => {
      const p = discovery.server.proxies().find((x) => x.proxy.id.startsWith(`sidecar~${ip}~`));
      const acked = p?.types.filter((t) => t.sentVersion !== undefined && t.ackedVersion === t.sentVersion).map((t) => t.typeUrl);
      return acked && [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration].every((t) => acked.includes(t)) ? p! : undefined;
    });
    expect(status.protocol).toBe(apiType === 'GRPC' ? 'sotw' : 'delta');
    expect(status.types.filter((t) => t.lastNack !== undefined)).toEqual([]);
  });

  it('binds the inbound listener on the workload IP and the outbound one on the egress bind, nothing on 15001/15006', async () => {
    const listeners = await waitFor('listeners in the admin API', async () => {
      const res = await get(`http://127.0.0.1:${adminPort}/listeners?format=json`);
      const body = JSON.parse(res.body) as { listener_statuses?: { name: string; local_address: { socket_address: { address: string; port_value: number } } }[] };
      const list = (body.listener_statuses ?? []).map((l) => `${l.name} ${l.local_address.socket_address.address}:${l.local_address.socket_address.port_value}`);
      return list.length >= 2 ? list.sort() : undefined;
    });
    expect(listeners).toEqual(
      [`${ip}_${appPort} ${ip}:${appPort}`, `${ip}_${servicePort} ${ip}:${servicePort}`, `${ip}_${h2AppPort} ${ip}:${h2AppPort}`, `${ip}_${h2ServicePort} ${ip}:${h2ServicePort}`].sort(),
    );
  });

  it('refuses plaintext on the inbound port (STRICT) and serves mTLS to a mesh client', async () => {
    await expect(get(`http://${ip}:${appPort}/`)).rejects.toThrow();
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: ip, port: appPort, path: '/', ca: sds.ca, cert: sds.cert, key: sds.key, servername: 'hello', checkServerIdentity: () => undefined }, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (c: string) => (b += c)).on('end', () => resolve(b));
      });
      req.on('error', reject).end();
    });
    expect(body).toBe('hello from the app, with XFCC');
  });

  it('carries app → outbound listener → ISTIO_MUTUAL (ALPN http/1.1, SPIFFE SAN) → inbound → app', async () => {
    const res = await waitFor('a request through the sidecar', async () => {
      const r = await get(`http://${ip}:${servicePort}/`, { host: 'hello.demo.svc.cluster.local' });
      return r.status === 200 ? r : undefined;
    });
    expect(res.body).toBe('hello from the app, with XFCC');
  });

  it("carries HTTP/2 end to end: the mTLS hop negotiates h2 and the peer's inbound speaks HTTP/2", async () => {
    const res = await waitFor('a request to the h2 service', async () => {
      const r = await get(`http://${ip}:${h2ServicePort}/`, { host: 'hello-h2.demo.svc.cluster.local' });
      return r.status === 200 ? r : undefined;
    });
    expect(res.body).toBe('h2 app, with XFCC');
  });

  it('logs no warning (deprecated fields included) for the config pilot sent', () => {
    expect(log.split('\n').filter((l) => /\]\[(warning|error|critical)\]/.test(l) || /deprecated/i.test(l))).toEqual([]);
  });
});
