import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { initXdsRoot } from '@aviary/xds-protos';
import { testEnvoy } from '@aviary/testing';
import type { Msg } from './envoy';
import { translate } from './translate';
import { freePort, startEnvoy, staticBootstrap, type RunningEnvoy } from './authz/__fixtures__/envoy-harness';

/**
 * VirtualService `tcp` and `tls` routes through a REAL Envoy, as pilot configures it, with weights
 * measured over many connections: a Gateway server with protocol TCP (weighted tcp route), a TLS
 * server the router terminates (tcp route to one subset), a PASSTHROUGH server (weighted tls
 * route by SNI), and a sidecar's outbound listener for a TCP service port (weighted tcp route).
 * Backends are TCP (and TLS) servers that answer each connection with their version and then
 * echo; everything binds loopback on ephemeral ports.
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto'] });
const envoy0 = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const ROUTER = 'router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local';
const SIDECAR = 'sidecar~127.0.0.21~client.shop~shop.svc.cluster.local';
const DB = 'db.shop.svc.cluster.local';
const SECURE = 'secure.shop.svc.cluster.local';
/** Connections per measured split. */
const N = 200;

function obj(kind: string, namespace: string, name: string, spec: unknown): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}

/** Opens a connection, reads the backend's version line, checks one echo and closes. */
async function version(open: () => Socket): Promise<string> {
  const sock = open();
  return new Promise((resolve, reject) => {
    let data = '';
    sock.setTimeout(5_000, () => sock.destroy(new Error('timeout')));
    sock.once('error', reject);
    sock.on('data', (d: Buffer) => {
      data += d.toString();
      const lines = data.split('\n');
      if (lines.length === 2 && lines[0] !== '') sock.write('ping\n');
      if (lines.length >= 3) {
        sock.end();
        if (lines[1] !== 'ping') reject(new Error(`no echo: ${JSON.stringify(data)}`));
        else resolve(lines[0]!);
      }
    });
  });
}

async function split(open: () => Socket, n = N): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const v = await version(open);
    counts[v] = (counts[v] ?? 0) + 1;
  }
  return counts;
}

describe('tcp and tls routes through a real Envoy', () => {
  if (envoy0.skip !== undefined) {
    it.skip(envoy0.skip, () => undefined);
    return;
  }
  const servers: Server[] = [];
  const envoys: RunningEnvoy[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'aviary-tcp-live-'));
  let tcpPort = 0;
  let tlsPort = 0;
  let passthroughPort = 0;
  let dbPort = 0;
  let cert = '';

  const serve = async (server: Server): Promise<number> => {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return (server.address() as { port: number }).port;
  };
  const handler = (v: string) => (sock: Socket) => {
    sock.on('error', () => undefined);
    sock.write(`${v}\n`);
    sock.pipe(sock);
  };

  beforeAll(async () => {
    const key = join(dir, 'key.pem');
    const crt = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=db.example.com', '-addext', 'subjectAltName=DNS:db.example.com,DNS:tls.example.com'], { stdio: 'ignore' });
    cert = readFileSync(crt, 'utf8');
    const tlsOpts = { key: readFileSync(key), cert };
    const ports = {
      a: await serve(createServer(handler('a'))),
      b: await serve(createServer(handler('b'))),
      sa: await serve(createTlsServer(tlsOpts, handler('secure-a'))),
      sb: await serve(createTlsServer(tlsOpts, handler('secure-b'))),
    };
    [tcpPort, tlsPort, passthroughPort, dbPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const subsets = [{ name: 'a', labels: { version: 'a' } }, { name: 'b', labels: { version: 'b' } }];
    const objects = [
      obj('Gateway', 'istio-system', 'gw', {
        selector: { istio: 'ingressgateway' },
        servers: [
          { port: { number: tcpPort, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
          { port: { number: tlsPort, name: 'tls-terminated', protocol: 'TLS' }, hosts: ['db.example.com'], tls: { mode: 'SIMPLE', serverCertificate: crt, privateKey: key } },
          { port: { number: passthroughPort, name: 'tls-passthrough', protocol: 'TLS' }, hosts: ['tls.example.com'], tls: { mode: 'PASSTHROUGH' } },
        ],
      }),
      obj('ServiceEntry', 'shop', 'db', {
        hosts: [DB],
        resolution: 'STATIC',
        ports: [{ number: dbPort, name: 'tcp', protocol: 'TCP' }],
        endpoints: [
          { address: '127.0.0.1', ports: { tcp: ports.a }, labels: { version: 'a' } },
          { address: '127.0.0.1', ports: { tcp: ports.b }, labels: { version: 'b' } },
        ],
      }),
      obj('ServiceEntry', 'shop', 'secure', {
        hosts: [SECURE],
        resolution: 'STATIC',
        ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
        endpoints: [
          { address: '127.0.0.1', ports: { tls: ports.sa }, labels: { version: 'a' } },
          { address: '127.0.0.1', ports: { tls: ports.sb }, labels: { version: 'b' } },
        ],
      }),
      // Plaintext (or the app's own TLS) to the backends: the harness has no SDS for auto mTLS.
      obj('DestinationRule', 'shop', 'db', { host: DB, trafficPolicy: { tls: { mode: 'DISABLE' } }, subsets }),
      obj('DestinationRule', 'shop', 'secure', { host: SECURE, trafficPolicy: { tls: { mode: 'DISABLE' } }, subsets }),
      obj('VirtualService', 'istio-system', 'edge', {
        hosts: ['*'],
        gateways: ['gw'],
        tcp: [
          { match: [{ port: tcpPort }], route: [{ destination: { host: DB, subset: 'a' }, weight: 50 }, { destination: { host: DB, subset: 'b' }, weight: 50 }] },
          { match: [{ port: tlsPort }], route: [{ destination: { host: DB, subset: 'b' } }] },
        ],
      }),
      obj('VirtualService', 'istio-system', 'secure', {
        hosts: ['tls.example.com'],
        gateways: ['gw'],
        tls: [{ match: [{ sniHosts: ['tls.example.com'] }], route: [{ destination: { host: SECURE, subset: 'a' }, weight: 30 }, { destination: { host: SECURE, subset: 'b' }, weight: 70 }] }],
      }),
      obj('VirtualService', 'shop', 'db', {
        hosts: [DB],
        tcp: [{ match: [{ port: dbPort }], route: [{ destination: { host: DB, subset: 'a' }, weight: 80 }, { destination: { host: DB, subset: 'b' }, weight: 20 }] }],
      }),
    ];
    const snapshot = buildSnapshot(objects, { trustDomain: 'cluster.local' });
    const router = translate(parseNode({ id: ROUTER, metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } } }), snapshot);
    const gwListeners = [tcpPort, tlsPort, passthroughPort].map((p) => {
      const l = router.listeners.find((x) => x.name === `0.0.0.0_${p}`);
      expect(l, `${p}: ${router.listeners.map((x) => x.name).join(', ')} ${router.problems.join('; ')}`).toBeDefined();
      return { ...l!.resource, address: { socket_address: { address: '127.0.0.1', port_value: p } } } as Msg;
    });
    const sidecar = translate(parseNode({ id: SIDECAR, metadata: { NAMESPACE: 'shop', LABELS: { app: 'client' }, INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.21' } }), snapshot);
    const outbound = sidecar.listeners.find((l) => l.name === `127.0.0.1_${dbPort}`);
    expect(outbound, sidecar.listeners.map((l) => l.name).join(', ')).toBeDefined();
    envoys.push(await startEnvoy(envoy0.path!, staticBootstrap(ROUTER, router, gwListeners), [tcpPort, tlsPort, passthroughPort]));
    envoys.push(await startEnvoy(envoy0.path!, staticBootstrap(SIDECAR, sidecar, [outbound!.resource]), [dbPort]));
  });

  afterAll(async () => {
    for (const e of envoys) await e.stop();
    for (const s of servers) await new Promise((r) => s.close(() => r(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Within 4 standard deviations of the binomial expectation: at N=200, ±28 connections for 50/50,
   * ±26 for 30/70, ±23 for 80/20 (a split off by 20 points, 40 connections, fails).
   */
  const near = (count: number, weight: number, n = N) => Math.abs(count - (n * weight) / 100) <= 4 * Math.sqrt((n * weight * (100 - weight)) / 10_000);

  it('a Gateway TCP server splits connections 50/50 by the weighted tcp route', async () => {
    const counts = await split(() => connect({ host: '127.0.0.1', port: tcpPort }));
    console.log(`[tcp-live] gateway TCP 50/50 over ${N} connections: ${JSON.stringify(counts)}`);
    expect((counts['a'] ?? 0) + (counts['b'] ?? 0)).toBe(N);
    expect(near(counts['a'] ?? 0, 50)).toBe(true);
  });

  it('a TLS server the router terminates proxies the plaintext by its tcp route', async () => {
    const counts = await split(() => tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'db.example.com', ca: cert }), 20);
    expect(counts).toEqual({ b: 20 });
  });

  it('a PASSTHROUGH server splits TLS connections 30/70 by the weighted tls route, by SNI', async () => {
    const counts = await split(() => tlsConnect({ host: '127.0.0.1', port: passthroughPort, servername: 'tls.example.com', ca: cert }));
    console.log(`[tcp-live] gateway TLS passthrough 30/70 over ${N} connections: ${JSON.stringify(counts)}`);
    expect((counts['secure-a'] ?? 0) + (counts['secure-b'] ?? 0)).toBe(N);
    expect(near(counts['secure-a'] ?? 0, 30)).toBe(true);
  });

  it('a sidecar TCP service port splits connections 80/20 by the weighted tcp route', async () => {
    const counts = await split(() => connect({ host: '127.0.0.1', port: dbPort }));
    console.log(`[tcp-live] sidecar TCP 80/20 over ${N} connections: ${JSON.stringify(counts)}`);
    expect((counts['a'] ?? 0) + (counts['b'] ?? 0)).toBe(N);
    expect(near(counts['a'] ?? 0, 80)).toBe(true);
  });
});
