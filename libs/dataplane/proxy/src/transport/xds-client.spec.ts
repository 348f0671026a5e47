import { createServer, request, type Server } from 'node:http';
import { createServer as netServer, type AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNode, proxyKinds, type ProxyInfo } from '@aviary/mesh-model';
import { SnapshotCache } from '@aviary/testing';
import { Snapshot } from '@aviary/xds-cache';
import { XdsServer, type XdsStatusEvent } from '@aviary/xds-server';
import { TypeUrl } from '@aviary/xds-protos';
import { Proxy } from './proxy';
import { XdsClient, type XdsClientEvent, type XdsProtocol } from './xds-client';
import { edsCluster, hcm, httpChain, listener, loadAssignment, route, routeConfig, toCluster, vhost } from '../testing/fixtures';

const NODE_ID = 'router~127.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local';
const ECHO = 'outbound|80||echo.default.svc.cluster.local';
const EXTRA = 'outbound|80||extra.default.svc.cluster.local';

interface MeshOpts {
  readonly body?: string;
  readonly badRegex?: boolean;
  /** A second listener with its own route configuration and cluster. */
  readonly extra?: boolean;
}

function snapshot(ports: { backend: number; listener: number; extra: number }, opts: MeshOpts = {}): Snapshot {
  const match = opts.badRegex === true ? { safe_regex: { regex: '(unclosed' } } : { prefix: '/' };
  const extra = opts.extra === true;
  return Snapshot.build({
    [TypeUrl.Listener]: [
      listener('http.8080', ports.listener, [httpChain(hcm({ rds: 'http.8080' }))]),
      ...(extra ? [listener('http.8081', ports.extra, [httpChain(hcm({ rds: 'http.8081' }))])] : []),
    ],
    [TypeUrl.RouteConfiguration]: [
      routeConfig('http.8080', [vhost('all', ['*'], [route({ prefix: '/direct' }, { direct_response: { status: 200, body: { inline_string: opts.body ?? 'one' } } }), route(match, toCluster(ECHO))])]),
      ...(extra ? [routeConfig('http.8081', [vhost('all', ['*'], [route({ prefix: '/' }, toCluster(EXTRA))])])] : []),
    ],
    [TypeUrl.Cluster]: [edsCluster(ECHO), ...(extra ? [edsCluster(EXTRA)] : [])],
    [TypeUrl.ClusterLoadAssignment]: [
      loadAssignment(ECHO, [['127.0.0.1', ports.backend]]),
      ...(extra ? [loadAssignment(EXTRA, [['127.0.0.1', ports.backend]])] : []),
    ],
  });
}

async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A backend, a real XdsServer over a snapshot cache, and a proxy fed by an XdsClient. */
class Mesh {
  backend!: Server;
  ports = { backend: 0, listener: 0, extra: 0, xds: 0 };
  readonly cache = new SnapshotCache<ProxyInfo>({ groupOf: () => 'all' });
  server!: XdsServer<ProxyInfo>;
  private grpcServer: grpc.Server | undefined;
  proxy!: Proxy;
  client!: XdsClient;
  readonly serverEvents: XdsStatusEvent[] = [];
  readonly clientEvents: XdsClientEvent[] = [];

  constructor(
    private readonly protocol: XdsProtocol | undefined,
    /** Serve only StreamAggregatedResources, as a pilot without delta would. */
    private readonly sotwOnly = false,
  ) {}

  async start(): Promise<this> {
    this.backend = createServer((req, res) => {
      req.resume();
      res.end('from-backend');
    });
    await new Promise<void>((r) => this.backend.listen(0, '127.0.0.1', r));
    this.ports = { backend: (this.backend.address() as AddressInfo).port, listener: await freePort(), extra: await freePort(), xds: await freePort() };
    this.publish();
    await this.startServer();
    this.proxy = new Proxy({ node: { id: NODE_ID, mode: 'router', workload: 'gw', namespace: 'istio-system' } });
    this.client = new XdsClient({
      address: `127.0.0.1:${this.ports.xds}`,
      node: { id: NODE_ID, cluster: 'gw.istio-system', metadata: { NAMESPACE: 'istio-system', LABELS: { app: 'gw' }, SERVICE_ACCOUNT: 'gw' }, locality: { region: 'local' } },
      onTable: (t) => this.proxy.apply(t),
      onEvent: (e) => this.clientEvents.push(e),
      backoff: { initialMs: 50, maxMs: 200 },
      ...(this.protocol === undefined ? {} : { protocol: this.protocol }),
    });
    this.client.start();
    return this;
  }

  publish(opts: MeshOpts = {}): void {
    this.cache.setSnapshot('all', snapshot(this.ports, opts));
  }

  async startServer(): Promise<void> {
    this.server = new XdsServer({ source: this.cache, nodeParser: (node) => parseNode(node), kinds: proxyKinds, debounce: { quietMs: 0, maxDelayMs: 0 } });
    this.server.onStatus((e) => this.serverEvents.push(e));
    if (!this.sotwOnly) {
      await this.server.listen(`127.0.0.1:${this.ports.xds}`);
      return;
    }
    const grpcServer = new grpc.Server();
    const sotwOnly = {
      addService: (definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) =>
        grpcServer.addService({ StreamAggregatedResources: definition.StreamAggregatedResources! }, { StreamAggregatedResources: impl.StreamAggregatedResources! }),
    };
    this.server.register(sotwOnly as unknown as grpc.Server);
    await new Promise<number>((resolve, reject) => grpcServer.bindAsync(`127.0.0.1:${this.ports.xds}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    this.grpcServer = grpcServer;
  }

  async stopServer(): Promise<void> {
    await this.server.stop(50);
    this.grpcServer?.forceShutdown();
    this.grpcServer = undefined;
  }

  async serving(): Promise<void> {
    await waitFor('traffic', async () => this.proxy.ports()['http.8080'] !== undefined && (await get(this.ports.listener, '/x').catch(() => ({ status: 0 }))).status === 200);
  }

  async stop(): Promise<void> {
    await this.client.stop();
    await this.proxy.close(100);
    await this.stopServer();
    await new Promise((r) => this.backend.close(r));
  }
}

describe.each([
  { name: 'delta (the default)', protocol: undefined, wire: 'delta' as const },
  { name: 'state of the world', protocol: 'sotw' as const, wire: 'sotw' as const },
])('XdsClient against the ADS server: $name', ({ protocol, wire }) => {
  let mesh: Mesh;
  beforeAll(async () => {
    mesh = await new Mesh(protocol).start();
  });
  afterAll(async () => {
    await mesh.stop();
  });

  it('subscribes LDS/CDS, then RDS/EDS, ACKs and serves traffic', async () => {
    const { client, serverEvents } = mesh;
    await mesh.serving();
    expect((await get(mesh.ports.listener, '/x')).body).toBe('from-backend');
    expect(client.synced).toBe(true);
    const acked = new Set(serverEvents.filter((e) => e.event === 'ack').map((e) => e.typeUrl));
    expect(acked).toEqual(new Set([TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]));
    expect(new Set(serverEvents.map((e) => e.protocol))).toEqual(new Set([wire]));
    expect(mesh.clientEvents.find((e) => e.type === 'connected')).toEqual({ type: 'connected', protocol: wire });
    expect(mesh.clientEvents.some((e) => e.type === 'fallback')).toBe(false);
    expect(client.status()).toMatchObject({ protocol: wire, lds: { subscribed: ['*'], resources: 1 }, rds: { subscribed: ['http.8080'] }, eds: { subscribed: [ECHO] } });
  });

  it('adds, then removes, a listener with its route configuration and cluster; the removal leaves the routing table', async () => {
    const { client, proxy } = mesh;
    mesh.publish({ extra: true });
    await waitFor('the extra listener', async () => proxy.ports()['http.8081'] !== undefined && (await get(mesh.ports.extra, '/').catch(() => ({ status: 0 }))).status === 200);
    expect(client.status().rds!.subscribed).toEqual(['http.8080', 'http.8081']);
    expect(client.status().eds!.subscribed).toEqual([ECHO, EXTRA]);
    mesh.publish();
    await waitFor('the removal', () => !proxy.table.listeners.has('http.8081') && !proxy.table.clusters.has(EXTRA));
    expect(proxy.table.routeConfigs.has('http.8081')).toBe(false);
    expect(proxy.table.loadAssignments.has(EXTRA)).toBe(false);
    expect(proxy.ports()['http.8081']).toBeUndefined();
    expect(client.status()).toMatchObject({ lds: { resources: 1 }, cds: { resources: 1 }, rds: { subscribed: ['http.8080'], resources: 1 }, eds: { subscribed: [ECHO], resources: 1 } });
    // pilot sees the unsubscription (delta) or the shorter name list (SotW)
    await waitFor('pilot to see the narrower subscription', () => mesh.server.proxies()[0]!.types.find((t) => t.typeUrl === TypeUrl.RouteConfiguration)!.subscribed.join() === 'http.8080');
    expect((await get(mesh.ports.listener, '/x')).body).toBe('from-backend');
  });

  it('NACKs a route configuration it cannot apply, with the field path, and keeps the last good config', async () => {
    const { client, serverEvents } = mesh;
    mesh.publish({ badRegex: true, body: 'two' });
    await waitFor('nack', () => serverEvents.some((e) => e.event === 'nack'));
    const nack = serverEvents.find((e) => e.event === 'nack')!;
    expect(nack.typeUrl).toBe(TypeUrl.RouteConfiguration);
    expect(nack.protocol).toBe(wire);
    expect(nack.error).toMatch(/RouteConfiguration\[http\.8080\]\.virtual_hosts\[0\]\.routes\[1\]\.match\.safe_regex\.regex: invalid regex/);
    expect((await get(mesh.ports.listener, '/direct')).body).toBe('one');
    expect(client.status().rds!.lastError).toBeDefined();
  });

  it('keeps serving while pilot is away and picks up new config after it returns', async () => {
    const { client, clientEvents } = mesh;
    await mesh.stopServer();
    await waitFor('disconnect', () => clientEvents.some((e) => e.type === 'disconnected'));
    for (let i = 0; i < 5; i++) expect((await get(mesh.ports.listener, '/x')).status).toBe(200);
    mesh.publish({ body: 'three' });
    await mesh.startServer();
    await waitFor('new config', async () => (await get(mesh.ports.listener, '/direct')).body === 'three');
    expect(client.status().rds!.lastError).toBeUndefined();
    expect(clientEvents.filter((e) => e.type === 'connected').map((e) => (e as { protocol: string }).protocol)).toEqual([wire, wire]);
  });
});

describe('XdsClient delta reconnect', () => {
  let mesh: Mesh;
  beforeAll(async () => {
    mesh = await new Mesh(undefined).start();
    await mesh.serving();
  });
  afterAll(async () => {
    await mesh.stop();
  });

  it('sends initial_resource_versions so that pilot resends only what changed while it was away', async () => {
    const { client, clientEvents } = mesh;
    const held = client.status();
    await mesh.stopServer();
    await waitFor('disconnect', () => clientEvents.some((e) => e.type === 'disconnected'));
    mesh.publish({ body: 'changed while away' }); // only the route configuration changes
    const since = clientEvents.length;
    await mesh.startServer();
    await waitFor('new config', async () => (await get(mesh.ports.listener, '/direct')).body === 'changed while away');
    const typesSeen = () => mesh.server.proxies()[0]?.types ?? [];
    await waitFor('pilot to have every subscription', () => typesSeen().length === 4 && typesSeen().every((t) => t.resources.length === 1));
    await waitFor('the ACKs of LDS and CDS', () => typesSeen().filter((t) => t.ackedVersion !== undefined).length >= 3);

    // Pilot sent this stream only the changed RouteConfiguration; it knows the rest from the versions the proxy reported.
    const dump = mesh.server.configDump(NODE_ID)!;
    expect(Object.fromEntries(dump.map((d) => [d.typeUrl, d.resources.map((r) => r.name ?? r.cluster_name)]))).toEqual({
      [TypeUrl.Cluster]: [],
      [TypeUrl.ClusterLoadAssignment]: [],
      [TypeUrl.Listener]: [],
      [TypeUrl.RouteConfiguration]: ['http.8080'],
    });
    const acks = clientEvents.slice(since).filter((e) => e.type === 'ack');
    expect(acks.map((e) => [e.kind, e.count, e.removed]).sort()).toEqual([['cds', 0, 0], ['lds', 0, 0], ['rds', 1, 0]]);
    expect(client.status()).toMatchObject({ protocol: 'delta', lds: { version: held.lds!.version }, cds: { version: held.cds!.version } });
    expect((await get(mesh.ports.listener, '/x')).body).toBe('from-backend');
  });
});

describe('XdsClient against a pilot without delta', () => {
  let mesh: Mesh;
  afterAll(async () => {
    await mesh.stop();
  });

  it('auto: falls back to state of the world on UNIMPLEMENTED and serves traffic', async () => {
    mesh = await new Mesh(undefined, true).start();
    await mesh.serving();
    const { clientEvents, serverEvents, client } = mesh;
    expect(clientEvents.filter((e) => e.type === 'fallback' || e.type === 'connected')).toMatchObject([
      { type: 'fallback', from: 'delta', to: 'sotw', reason: expect.stringMatching(/UNIMPLEMENTED/) as unknown },
      { type: 'connected', protocol: 'sotw' },
    ]);
    expect(clientEvents.some((e) => e.type === 'disconnected')).toBe(false);
    expect(new Set(serverEvents.map((e) => e.protocol))).toEqual(new Set(['sotw']));
    expect(client.status().protocol).toBe('sotw');
    mesh.publish({ body: 'over sotw' });
    await waitFor('new config', async () => (await get(mesh.ports.listener, '/direct')).body === 'over sotw');
  });

  it('delta: does not fall back, keeps retrying', async () => {
    const events: XdsClientEvent[] = [];
    const forced = new XdsClient({
      address: `127.0.0.1:${mesh.ports.xds}`,
      node: { id: 'router~127.0.0.2~gw-2.istio-system~istio-system.svc.cluster.local', cluster: 'gw.istio-system', metadata: {} },
      onTable: () => undefined,
      onEvent: (e) => events.push(e),
      backoff: { initialMs: 10, maxMs: 20 },
      protocol: 'delta',
    });
    forced.start();
    try {
      await waitFor('two failed attempts', () => events.filter((e) => e.type === 'disconnected').length >= 2);
      expect(events.some((e) => e.type === 'fallback' || e.type === 'connected')).toBe(false);
      expect((events[0] as { error: string }).error).toMatch(/UNIMPLEMENTED/);
      expect(forced.synced).toBe(false);
    } finally {
      await forced.stop();
    }
  });
});
