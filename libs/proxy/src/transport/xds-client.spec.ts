import { createServer, request, type Server } from 'node:http';
import { createServer as netServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Snapshot, SnapshotCache } from '@aviary/xds-cache';
import { XdsServer, type XdsStatusEvent } from '@aviary/xds-server';
import { TypeUrl } from '@aviary/xds-protos';
import { Proxy } from './proxy';
import { XdsClient, type XdsClientEvent } from './xds-client';
import { edsCluster, hcm, httpChain, listener, loadAssignment, route, routeConfig, toCluster, vhost } from '../testing/fixtures';

const NODE_ID = 'router~127.0.0.1~gw-1.istio-system~istio-system.svc.cluster.local';

function snapshot(backendPort: number, listenerPort: number, opts: { body?: string; badRegex?: boolean } = {}): Snapshot {
  const match = opts.badRegex === true ? { safe_regex: { regex: '(unclosed' } } : { prefix: '/' };
  return Snapshot.build({
    [TypeUrl.Listener]: [listener('http.8080', listenerPort, [httpChain(hcm({ rds: 'http.8080' }))])],
    [TypeUrl.RouteConfiguration]: [
      routeConfig('http.8080', [
        vhost('all', ['*'], [route({ prefix: '/direct' }, { direct_response: { status: 200, body: { inline_string: opts.body ?? 'one' } } }), route(match, toCluster('outbound|80||echo.default.svc.cluster.local'))]),
      ]),
    ],
    [TypeUrl.Cluster]: [edsCluster('outbound|80||echo.default.svc.cluster.local')],
    [TypeUrl.ClusterLoadAssignment]: [loadAssignment('outbound|80||echo.default.svc.cluster.local', [['127.0.0.1', backendPort]])],
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

let backend: Server;
let backendPort = 0;
let xdsPort = 0;
let listenerPort = 0;
let cache: SnapshotCache;
let server: XdsServer;
let proxy: Proxy;
let client: XdsClient;
const serverEvents: XdsStatusEvent[] = [];
const clientEvents: XdsClientEvent[] = [];

async function startServer(): Promise<void> {
  server = new XdsServer({ source: cache, debounce: { quietMs: 0, maxDelayMs: 0 } });
  server.onStatus((e) => serverEvents.push(e));
  await server.listen(`127.0.0.1:${xdsPort}`);
}

beforeAll(async () => {
  backend = createServer((req, res) => {
    req.resume();
    res.end('from-backend');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as AddressInfo).port;
  xdsPort = await freePort();
  listenerPort = await freePort();
  cache = new SnapshotCache({ groupOf: () => 'all' });
  cache.setSnapshot('all', snapshot(backendPort, listenerPort));
  await startServer();
  proxy = new Proxy({ node: { id: NODE_ID, mode: 'router', workload: 'gw', namespace: 'istio-system' } });
  client = new XdsClient({
    address: `127.0.0.1:${xdsPort}`,
    node: { id: NODE_ID, cluster: 'gw.istio-system', metadata: { NAMESPACE: 'istio-system', LABELS: { app: 'gw' }, SERVICE_ACCOUNT: 'gw' }, locality: { region: 'local' } },
    onTable: (t) => proxy.apply(t),
    onEvent: (e) => clientEvents.push(e),
    backoff: { initialMs: 50, maxMs: 200 },
  });
  client.start();
});

afterAll(async () => {
  await client.stop();
  await proxy.close(100);
  await server.stop(100);
  await new Promise((r) => backend.close(r));
});

describe('XdsClient against the ADS server', () => {
  it('subscribes LDS/CDS, then RDS/EDS, ACKs and serves traffic', async () => {
    await waitFor('traffic', async () => proxy.ports()['http.8080'] !== undefined && (await get(listenerPort, '/x').catch(() => ({ status: 0 }))).status === 200);
    expect((await get(listenerPort, '/x')).body).toBe('from-backend');
    expect(client.synced).toBe(true);
    const acked = new Set(serverEvents.filter((e) => e.event === 'ack').map((e) => e.typeUrl));
    expect(acked).toEqual(new Set([TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]));
    expect(client.status().rds!.subscribed).toEqual(['http.8080']);
    expect(client.status().eds!.subscribed).toEqual(['outbound|80||echo.default.svc.cluster.local']);
  });

  it('NACKs a route configuration it cannot apply, with the field path, and keeps the last good config', async () => {
    cache.setSnapshot('all', snapshot(backendPort, listenerPort, { badRegex: true, body: 'two' }));
    await waitFor('nack', () => serverEvents.some((e) => e.event === 'nack'));
    const nack = serverEvents.find((e) => e.event === 'nack')!;
    expect(nack.typeUrl).toBe(TypeUrl.RouteConfiguration);
    expect(nack.error).toMatch(/RouteConfiguration\[http\.8080\]\.virtual_hosts\[0\]\.routes\[1\]\.match\.safe_regex\.regex: invalid regex/);
    expect((await get(listenerPort, '/direct')).body).toBe('one');
    expect(client.status().rds!.lastError).toBeDefined();
  });

  it('keeps serving while pilot is away and picks up new config after it returns', async () => {
    await server.stop(50);
    await waitFor('disconnect', () => clientEvents.some((e) => e.type === 'disconnected'));
    for (let i = 0; i < 5; i++) expect((await get(listenerPort, '/x')).status).toBe(200);
    cache.setSnapshot('all', snapshot(backendPort, listenerPort, { body: 'three' }));
    await startServer();
    await waitFor('new config', async () => (await get(listenerPort, '/direct')).body === 'three');
    expect(client.status().rds!.lastError).toBeUndefined();
  });
});
