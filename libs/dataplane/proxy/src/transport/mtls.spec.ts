import { createServer as createHttp, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNet, connect as netConnect, type AddressInfo, type Server as NetServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { RoutingTable } from '../domain';
import { Proxy, type ProxyRequestRecord } from './proxy';
import type { WorkloadIdentity } from './tls-material';
import { downstreamMtls, hcm, httpChain, listener, rbacFilter, route, routeConfig, staticCluster, toCluster, upstreamMtls, vhost } from '../testing/fixtures';

const TD = 'cluster.local';
const WEB = `spiffe://${TD}/ns/frontend/sa/web`;
const BACKEND = `spiffe://${TD}/ns/default/sa/backend`;
const HOST = 'backend.default.svc.cluster.local';

function identity(ca: Issuer, spiffeId: string, version: number): WorkloadIdentity {
  const key = generatePrivateKey('ecdsa-p256');
  const issued = ca.signWorkload(createCsr(key), spiffeId, { ttlSeconds: 3600 });
  return { certChain: issued.chain.join(''), privateKey: privateKeyToPem(key), roots: ca.rootPem, version };
}

let app: Server;
let appPort = 0;
let tap: NetServer;
let tapPort = 0;
const wire: Buffer[] = [];
let server: Proxy;
let client: Proxy;
const serverRecords: ProxyRequestRecord[] = [];
const clientRecords: ProxyRequestRecord[] = [];
let appHeaders: IncomingMessage['headers'] = {};
let inboundPort = 0;
let outboundPort = 0;
let ca: Issuer;

function inboundTable(mode: 'STRICT' | 'PERMISSIVE', rules?: Record<string, unknown>): RoutingTable {
  const h = hcm({ rds: 'inbound|80||', filters: rules === undefined ? [] : [rbacFilter(rules)] });
  const chains = [httpChain(h, { filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamMtls() })];
  if (mode === 'PERMISSIVE') chains.push(httpChain(h, { filter_chain_match: { transport_protocol: 'raw_buffer' } }));
  return RoutingTable.fromResources({
    listeners: [{ ...listener('virtualInbound', 0, chains), traffic_direction: 'INBOUND' }],
    routes: [routeConfig('inbound|80||', [vhost('inbound', ['*'], [route({ prefix: '/' }, toCluster('inbound|80||'), { decorator: { operation: `${HOST}:80/*` } })])])],
    clusters: [staticCluster('inbound|80||', [['127.0.0.1', appPort]])],
  });
}

function outboundTable(endpointPort: number, sans = [BACKEND]): RoutingTable {
  const cluster = `outbound|80||${HOST}`;
  return RoutingTable.fromResources({
    listeners: [{ ...listener('virtualOutbound', 0, [httpChain(hcm({ rds: '80' }))]), traffic_direction: 'OUTBOUND' }],
    routes: [routeConfig('80', [vhost(HOST, [HOST, 'backend'], [route({ prefix: '/' }, toCluster(cluster))])])],
    clusters: [staticCluster(cluster, [['127.0.0.1', endpointPort]], { transport_socket: upstreamMtls(sans) })],
  });
}

function call(port: number, path = '/', host = HOST): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host } }, (res: IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  ca = Issuer.createRoot({ trustDomain: TD });
  app = createHttp((req, res) => {
    appHeaders = req.headers;
    req.resume();
    res.end('secret-payload-from-app');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as AddressInfo).port;

  server = new Proxy({ node: { id: 'sidecar~127.0.0.1~backend-1.default~default.svc.cluster.local', mode: 'sidecar', workload: 'backend', namespace: 'default', principal: BACKEND }, onRecord: (r) => serverRecords.push(r) });
  server.setIdentity(identity(ca, BACKEND, 1));
  await server.apply(inboundTable('STRICT'));
  inboundPort = server.ports().virtualInbound!;

  // A tap between the sidecars records the bytes on the wire.
  tap = createNet((down) => {
    const up = netConnect(inboundPort, '127.0.0.1');
    down.on('data', (c: Buffer) => wire.push(Buffer.from(c)));
    up.on('data', (c: Buffer) => wire.push(Buffer.from(c)));
    down.pipe(up).pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
  await new Promise<void>((r) => tap.listen(0, '127.0.0.1', r));
  tapPort = (tap.address() as AddressInfo).port;

  client = new Proxy({ node: { id: 'sidecar~127.0.0.1~web-1.frontend~frontend.svc.cluster.local', mode: 'sidecar', workload: 'web', namespace: 'frontend', principal: WEB }, onRecord: (r) => clientRecords.push(r) });
  client.setIdentity(identity(ca, WEB, 1));
  await client.apply(outboundTable(tapPort));
  outboundPort = client.ports().virtualOutbound!;
});

afterAll(async () => {
  await client.close(100);
  await server.close(100);
  await new Promise((r) => tap.close(r));
  await new Promise((r) => app.close(r));
});

describe('mTLS between two sidecars', () => {
  it('carries the request over TLS and authenticates the client SPIFFE id', async () => {
    wire.length = 0;
    const r = await call(outboundPort);
    expect(r).toEqual({ status: 200, body: 'secret-payload-from-app' });
    const bytes = Buffer.concat(wire);
    expect(bytes[0]).toBe(0x16); // a TLS handshake record
    expect(bytes.includes(Buffer.from('secret-payload-from-app'))).toBe(false);
    expect(bytes.includes(Buffer.from('GET /'))).toBe(false);
    expect(serverRecords.at(-1)).toMatchObject({ reporter: 'destination', sourcePrincipal: WEB, sourceNamespace: 'frontend', connectionSecurityPolicy: 'mutual_tls', responseCode: 200 });
  });

  it('labels both sides of an mTLS hop: source workload and destination service inbound, destination principal and mutual_tls outbound', async () => {
    const r = await call(outboundPort, '/labels');
    expect(r.status).toBe(200);
    // The peer-workload header is metadata between proxies: the app never sees it.
    expect(appHeaders['x-aviary-peer-workload']).toBeUndefined();
    expect(serverRecords.at(-1)).toMatchObject({ reporter: 'destination', sourceWorkload: 'web', sourceNamespace: 'frontend', sourcePrincipal: WEB, destinationService: HOST, destinationPrincipal: BACKEND, connectionSecurityPolicy: 'mutual_tls' });
    expect(clientRecords.at(-1)).toMatchObject({ reporter: 'source', sourceWorkload: 'web', destinationService: HOST, destinationPrincipal: BACKEND, connectionSecurityPolicy: 'mutual_tls', responseCode: 200 });
  });

  it('does not take a peer-workload header from a plaintext caller', async () => {
    await server.apply(inboundTable('PERMISSIVE'));
    try {
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: inboundPort, path: '/', agent: false, headers: { host: HOST, 'x-aviary-peer-workload': 'forged' } }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.on('error', reject);
        req.end();
      });
      expect(serverRecords.at(-1)).toMatchObject({ sourceWorkload: '', connectionSecurityPolicy: 'none' });
      expect(appHeaders['x-aviary-peer-workload']).toBeUndefined();
    } finally {
      await server.apply(inboundTable('STRICT'));
    }
  });

  it('refuses plaintext under STRICT', async () => {
    await expect(call(inboundPort)).rejects.toThrow();
  });

  it('refuses a client certificate from another CA', async () => {
    const other = Issuer.createRoot({ trustDomain: TD });
    const id = identity(other, WEB, 9);
    const outcome = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: inboundPort, ca: ca.rootPem, cert: id.certChain, key: id.privateKey, checkServerIdentity: () => undefined }, () => {
        s.write(`GET / HTTP/1.1\r\nhost: x\r\n\r\n`);
      });
      let data = '';
      s.on('data', (c: Buffer) => (data += c.toString()));
      s.on('close', () => resolve(data.startsWith('HTTP/1.1 200') ? 'served' : 'refused'));
      s.on('error', () => resolve('refused'));
    });
    expect(outcome).toBe('refused');
  });

  it('serves a client that sends no SNI, with the default chain', async () => {
    const id = identity(ca, WEB, 7);
    const outcome = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: inboundPort, ca: ca.rootPem, cert: id.certChain, key: id.privateKey, checkServerIdentity: () => undefined }, () => {
        s.write(`GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
      });
      let data = '';
      s.on('data', (c: Buffer) => (data += c.toString()));
      s.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
      s.on('error', (e) => resolve(e.message));
    });
    expect(outcome).toBe('HTTP/1.1 200 OK');
  });

  it('checks the server SPIFFE id against the cluster SAN matcher', async () => {
    const wrong = new Proxy({ node: { id: 'x', mode: 'sidecar', workload: 'web', namespace: 'frontend' } });
    wrong.setIdentity(identity(ca, WEB, 1));
    await wrong.apply(outboundTable(inboundPort, [`spiffe://${TD}/ns/default/sa/someone-else`]));
    try {
      expect((await call(wrong.ports().virtualOutbound!)).status).toBe(503);
    } finally {
      await wrong.close(100);
    }
  });

  it('applies AuthorizationPolicy as RBAC on the peer principal', async () => {
    await server.apply(inboundTable('STRICT', { action: 'ALLOW', policies: { ns: { permissions: [{ any: true }], principals: [{ authenticated: { principal_name: { safe_regex: { regex: `spiffe://cluster\\.local/ns/frontend/.*` } } } }] } } }));
    expect((await call(outboundPort)).status).toBe(200);
    await server.apply(inboundTable('STRICT', { action: 'DENY', policies: { ns: { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ authenticated: { principal_name: { exact: WEB } } }] } } }));
    expect((await call(outboundPort, '/admin')).status).toBe(403);
    expect((await call(outboundPort, '/ok')).status).toBe(200);
  });

  it('accepts both under PERMISSIVE and keeps working across a certificate rotation', async () => {
    await server.apply(inboundTable('PERMISSIVE'));
    expect((await call(inboundPort)).status).toBe(200);
    expect(serverRecords.at(-1)!.connectionSecurityPolicy).toBe('none');
    expect((await call(outboundPort)).status).toBe(200);
    expect(serverRecords.at(-1)!.connectionSecurityPolicy).toBe('mutual_tls');
    server.setIdentity(identity(ca, BACKEND, 2));
    client.setIdentity(identity(ca, WEB, 2));
    for (let i = 0; i < 5; i++) expect((await call(outboundPort)).status).toBe(200);
    await server.apply(inboundTable('STRICT'));
  });
});
