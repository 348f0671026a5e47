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
import { KvConfigStore } from '@aviary/config-store';
import type { StoredObject } from '@aviary/mesh-api';
import { Bus } from '@aviary/events';
import { NatsServer } from '@aviary/nats-runner';
import { testEnvoy, TestSdsServer } from '@aviary/testing';
import { TypeUrl } from '@aviary/xds-protos';
import { Discovery } from './discovery';

/**
 * Local mode with the real data plane: pilot's discovery (NATS KV store → model → translation →
 * ADS) in-process and three upstream Envoys, the sidecars of hello v1 and v2 and the ingress
 * gateway, started as the agent starts them in local mode (node metadata INTERCEPTION_MODE NONE,
 * INSTANCE_IPS, `sds-grpc` over a Unix socket) on one machine. Each must ACK everything; the
 * sidecars bind inbound listeners on their workload's own IP and outbound ones on their
 * Sidecar's egress bind, the gateway its Gateway port on 127.0.0.1; requests go app → outbound
 * (or gateway) → mTLS (ISTIO_MUTUAL, SPIFFE SAN) → inbound of v1 or v2 → app, HTTP/1.1 and
 * HTTP/2. Workload IPs are random 127/8 addresses and the ports free ones, so runs never
 * collide (no e2e lock needed).
 */

const envoy = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const rand = (n: number) => Math.floor(Math.random() * n);

/**
 * A free port on `host` below Linux's ephemeral range (32768+), so that no other test's
 * port-0 socket takes it between this check and Envoy binding it.
 */
async function freePort(host: string): Promise<number> {
  for (;;) {
    const port = 20_000 + rand(10_000);
    const s = createNetServer();
    const ok = await new Promise<boolean>((resolve) => s.once('error', () => resolve(false)).listen(port, host, () => resolve(true)));
    if (ok) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
}

/** Polls `probe` until it gives a value; `what` (a text, or one made when it times out) names it. */
async function waitFor<T>(what: string | (() => string), probe: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}${last ? `: ${String(last)}` : ''}`);
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

describe.each(['GRPC', 'DELTA_GRPC'] as const)('pilot → upstream Envoys in local mode (INTERCEPTION_MODE NONE), ADS api_type %s', (apiType) => {
  if (envoy.skip !== undefined) {
    it.skip(envoy.skip, () => undefined);
    return;
  }
  const envoyBin = envoy.path;
  const net = `127.${100 + rand(100)}.${1 + rand(250)}`;
  const ips = { v1: `${net}.${1 + rand(120)}`, v2: `${net}.${130 + rand(120)}` };
  let nats: NatsServer;
  let bus: Bus;
  let discovery: Discovery;
  let sds: TestSdsServer;
  const dir = mkdtempSync(join(tmpdir(), 'aviary-envoy-local-'));
  const xfcc = (h: Record<string, unknown>) => (h['x-forwarded-client-cert'] ? 'with' : 'without');
  // Each version's app on 127.0.0.1 (as in a pod), its sidecar's inbound on <ip> with the same port.
  const apps = {
    v1: createServer((req, res) => res.end(`v1, ${xfcc(req.headers)} XFCC`)),
    v2: createServer((req, res) => res.end(`v2, ${xfcc(req.headers)} XFCC`)),
  };
  const appPorts = { v1: 0, v2: 0 };
  let servicePort = 0;
  // An HTTP/2-only (h2c) app behind an HTTP2 port: the sidecar-to-sidecar hop must be h2 (ALPN h2).
  const h2app = createH2cServer((req, res) => res.end(`h2 app, ${xfcc(req.headers)} XFCC`));
  let h2AppPort = 0;
  let h2ServicePort = 0;
  let gatewayPort = 0;
  type Name = 'v1' | 'v2' | 'gateway';
  const envoys: Record<Name, { proc: ChildProcess; adminPort: number; log: () => string }> = {} as never;
  const nodes = (name: Name) =>
    name === 'gateway'
      ? { id: 'router~127.0.0.1~ingressgateway.istio-system~istio-system.svc.cluster.local', cluster: 'istio-ingressgateway.istio-system', metadata: { NAMESPACE: 'istio-system', SERVICE_ACCOUNT: 'istio-ingressgateway-service-account', LABELS: { istio: 'ingressgateway' }, INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.1' } }
      : { id: `sidecar~${ips[name]}~hello-${name}.demo~demo.svc.cluster.local`, cluster: 'hello.demo', metadata: { NAMESPACE: 'demo', SERVICE_ACCOUNT: 'hello', LABELS: { app: 'hello', version: name }, INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: ips[name], WORKLOAD_NAME: `hello-${name}` } };

  async function startEnvoy(version: Name, xdsPort: number): Promise<void> {
    const http2 = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } };
    const cluster = (name: string, address: unknown) => ({ name, type: 'STATIC', connect_timeout: '1s', typed_extension_protocol_options: http2, load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] } });
    const bootstrap = {
      node: nodes(version),
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
    writeFileSync(join(dir, `${version}.json`), JSON.stringify(bootstrap));
    const args = ['-c', join(dir, `${version}.json`), '--use-dynamic-base-id', '--concurrency', '1', '--log-level', 'warning', '--admin-address-path', join(dir, `${version}.admin`)];
    const proc = spawn(envoyBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const admin = await waitFor(`the admin address of Envoy ${version}`, () => {
      if (proc.exitCode !== null) throw new Error(`envoy exited ${proc.exitCode}: ${log}`);
      const text = readFileSync(join(dir, `${version}.admin`), 'utf8').trim();
      return text === '' ? undefined : text;
    });
    envoys[version] = { proc, adminPort: Number(admin.split(':').pop()), log: () => log };
  }

  beforeAll(async () => {
    appPorts.v1 = await freePort(ips.v1);
    appPorts.v2 = await freePort(ips.v2);
    servicePort = await freePort(ips.v1);
    h2AppPort = await freePort(ips.v1);
    h2ServicePort = await freePort(ips.v1);
    gatewayPort = await freePort('127.0.0.1');
    await new Promise<void>((r) => apps.v1.listen(appPorts.v1, '127.0.0.1', r));
    await new Promise<void>((r) => apps.v2.listen(appPorts.v2, '127.0.0.1', r));
    await new Promise<void>((r) => h2app.listen(h2AppPort, '127.0.0.1', r));
    nats = await NatsServer.start();
    const logger = pino({ level: 'silent' });
    bus = await Bus.connect({ url: nats.url, source: 'test', logger, registry: new Registry() });
    const store = await KvConfigStore.open(bus, { bucket: `envoy_local_${apiType}` });
    const workload = (v: 'v1' | 'v2') => `
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: hello-${v}, namespace: demo }
spec: { address: ${ips[v]}, ports: { http: ${appPorts[v]} }, serviceAccount: hello, labels: { app: hello, version: ${v}, security.istio.io/tlsMode: istio } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: hello-${v}, namespace: demo }
spec:
  workloadSelector: { labels: { app: hello, version: ${v} } }
  egress: [{ hosts: ['./*'], bind: ${ips[v]} }]
`;
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
spec:
  host: hello.demo.svc.cluster.local
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: hello-gateway, namespace: demo }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: ${gatewayPort}, name: http, protocol: HTTP }, hosts: ['*'] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hello-edge, namespace: demo }
spec:
  hosts: ['*']
  gateways: [hello-gateway]
  http:
  - route:
    - { destination: { host: hello.demo.svc.cluster.local, subset: v1, port: { number: ${servicePort} } }, weight: 50 }
    - { destination: { host: hello.demo.svc.cluster.local, subset: v2, port: { number: ${servicePort} } }, weight: 50 }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: demo }
spec: { mtls: { mode: STRICT } }
${workload('v1')}${workload('v2')}`;
    for (const doc of parseAllDocuments(yaml)) await store.apply(doc.toJS() as StoredObject);
    discovery = new Discovery({ store, bus, logger, registry: new Registry(), trustDomain: 'cluster.local', debounce: { quietMs: 0, maxDelayMs: 0 } });
    await discovery.start();
    const xdsPort = await discovery.listen('127.0.0.1', 0);
    sds = await TestSdsServer.start('spiffe://cluster.local/ns/demo/sa/hello');
    await startEnvoy('v1', xdsPort);
    await startEnvoy('v2', xdsPort);
    await startEnvoy('gateway', xdsPort);
  });

  afterAll(async () => {
    for (const e of Object.values(envoys)) {
      e.proc.kill('SIGTERM');
      if (e.proc.exitCode === null) await new Promise((r) => e.proc.once('exit', r));
    }
    await discovery?.stop();
    await sds?.stop();
    await bus?.close();
    await nats?.stop();
    for (const server of [apps.v1, apps.v2, h2app]) await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('every Envoy ACKs every type pilot sent, with no NACK', async () => {
    for (const name of ['v1', 'v2', 'gateway'] as const) {
      const nacks = () => JSON.stringify(discovery.server.proxies().find((x) => x.proxy.id === nodes(name).id)?.types.flatMap((t) => t.lastNack?.error ?? []));
      const status = await waitFor(() => `ACKs of CDS, EDS, LDS and RDS from ${name} (NACKs: ${nacks()}; Envoy log: ${envoys[name].log()})`, () => {
        const p = discovery.server.proxies().find((x) => x.proxy.id === nodes(name).id);
        const acked = p?.types.filter((t) => t.sentVersion !== undefined && t.ackedVersion === t.sentVersion).map((t) => t.typeUrl);
        return acked && [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration].every((t) => acked.includes(t)) ? p! : undefined;
      });
      expect(status.protocol).toBe(apiType === 'GRPC' ? 'sotw' : 'delta');
      expect(status.types.filter((t) => t.lastNack !== undefined)).toEqual([]);
    }
  });

  it('binds inbound listeners on each workload IP and outbound ones on its egress bind, nothing on 15001/15006', async () => {
    for (const version of ['v1', 'v2'] as const) {
      const ip = ips[version];
      const listeners = await waitFor(`listeners of ${version} in the admin API`, async () => {
        const res = await get(`http://127.0.0.1:${envoys[version].adminPort}/listeners?format=json`);
        const body = JSON.parse(res.body) as { listener_statuses?: { name: string; local_address: { socket_address: { address: string; port_value: number } } }[] };
        const list = (body.listener_statuses ?? []).map((l) => `${l.name} ${l.local_address.socket_address.address}:${l.local_address.socket_address.port_value}`);
        return list.length >= 4 ? list.sort() : undefined;
      });
      const at = (port: number) => `${ip}_${port} ${ip}:${port}`;
      expect(listeners).toEqual([at(appPorts[version]), at(servicePort), at(h2AppPort), at(h2ServicePort)].sort());
    }
  });

  it('refuses plaintext on an inbound port (STRICT) and serves mTLS to a mesh client', async () => {
    await expect(get(`http://${ips.v2}:${appPorts.v2}/`)).rejects.toThrow();
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: ips.v2, port: appPorts.v2, path: '/', ca: sds.ca, cert: sds.cert, key: sds.key, servername: 'hello', checkServerIdentity: () => undefined }, (res) => {
        let b = '';
        res.setEncoding('utf8').on('data', (c: string) => (b += c)).on('end', () => resolve(b));
      });
      req.on('error', reject).end();
    });
    expect(body).toBe('v2, with XFCC');
  });

  it('carries app → outbound → ISTIO_MUTUAL (ALPN http/1.1, SPIFFE SAN) → the inbound of v1 and of v2 → app', async () => {
    const seen = new Set<string>();
    await waitFor('answers from both versions through the v1 sidecar', async () => {
      const r = await get(`http://${ips.v1}:${servicePort}/`, { host: 'hello.demo.svc.cluster.local' });
      if (r.status === 200) seen.add(r.body);
      return seen.size === 2 ? seen : undefined;
    });
    expect([...seen].sort()).toEqual(['v1, with XFCC', 'v2, with XFCC']);
  });

  it('serves the Gateway on 127.0.0.1 from the router Envoy and splits to v1 and v2 over mTLS', async () => {
    const res = await waitFor('the gateway listener', async () => {
      const r = await get(`http://127.0.0.1:${envoys.gateway.adminPort}/listeners?format=json`);
      const list = ((JSON.parse(r.body) as { listener_statuses?: { name: string }[] }).listener_statuses ?? []).map((l) => l.name);
      return list.length > 0 ? list : undefined;
    });
    expect(res).toEqual([`127.0.0.1_${gatewayPort}`]);
    const seen = new Set<string>();
    await waitFor('answers from both versions through the gateway', async () => {
      const r = await get(`http://127.0.0.1:${gatewayPort}/`);
      if (r.status === 200) seen.add(r.body);
      return seen.size === 2 ? seen : undefined;
    });
    expect([...seen].sort()).toEqual(['v1, with XFCC', 'v2, with XFCC']);
  });

  it("carries HTTP/2 end to end: the mTLS hop negotiates h2 and the peer's inbound speaks HTTP/2", async () => {
    const res = await waitFor('a request to the h2 service', async () => {
      const r = await get(`http://${ips.v1}:${h2ServicePort}/`, { host: 'hello-h2.demo.svc.cluster.local' });
      return r.status === 200 ? r : undefined;
    });
    expect(res.body).toBe('h2 app, with XFCC');
  });

  it('logs no warning (deprecated fields included) for the config pilot sent', () => {
    for (const e of Object.values(envoys)) expect(e.log().split('\n').filter((l) => /\]\[(warning|error|critical)\]/.test(l) || /deprecated/i.test(l))).toEqual([]);
  });
});
