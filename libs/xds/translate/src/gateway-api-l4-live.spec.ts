import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withStoredKind } from '@aviary/mesh-api';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { initXdsRoot } from '@aviary/xds-protos';
import { testEnvoy } from '@aviary/testing';
import type { Msg } from './envoy';
import { translate } from './translate';
import { freePort, startEnvoy, staticBootstrap, type RunningEnvoy } from './authz/__fixtures__/envoy-harness';

/**
 * TCPRoute and TLSRoute through a REAL Envoy, from Gateway API objects as a user writes them:
 * the model turns them into Istio Gateway servers and VirtualService tcp/tls routes, the router
 * translation into listeners, and Envoy routes real connections. A Gateway TCP listener with
 * Istio's tcp-echo TCPRoute (v1alpha2, two weighted backends, 80/20) splits connections; a TLS
 * passthrough listener routes by SNI to the TLSRoute of each hostname (one weighted 1:3) and
 * refuses a hostname no route names. Backends answer each connection with their name and echo.
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto'] });
const envoy0 = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const ROUTER = 'router~127.0.0.1~edge-5c8d.web~web.svc.cluster.local';
const N = 200;

async function version(open: () => Socket): Promise<string> {
  const sock = open();
  return new Promise((resolve, reject) => {
    let data = '';
    sock.setTimeout(5_000, () => sock.destroy(new Error('timeout')));
    sock.once('error', reject);
    sock.once('close', () => reject(new Error(`closed after ${JSON.stringify(data)}`)));
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

/** Within 4 standard deviations of the binomial expectation (at N=200: ±23 connections for 80/20, ±24 for 25/75). */
const near = (count: number, weight: number, n = N) => Math.abs(count - (n * weight) / 100) <= 4 * Math.sqrt((n * weight * (100 - weight)) / 10_000);

describe('TCPRoute and TLSRoute through a real Envoy', () => {
  if (envoy0.skip !== undefined) {
    it.skip(envoy0.skip, () => undefined);
    return;
  }
  const servers: Server[] = [];
  let envoy: RunningEnvoy | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'aviary-gwapi-l4-live-'));
  let tcpPort = 0;
  let tlsPort = 0;
  let cert = '';
  let statuses: ReturnType<typeof buildSnapshot>['gatewayApi']['statuses'] = [];

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
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '1', '-subj', '/CN=a.example.com', '-addext', 'subjectAltName=DNS:a.example.com,DNS:b.example.com,DNS:c.example.com'], { stdio: 'ignore' });
    cert = readFileSync(crt, 'utf8');
    const tlsOpts = { key: readFileSync(key), cert };
    const ports = {
      v1: await serve(createServer(handler('one'))),
      v2: await serve(createServer(handler('two'))),
      sa: await serve(createTlsServer(tlsOpts, handler('secure-a'))),
      sb: await serve(createTlsServer(tlsOpts, handler('secure-b'))),
    };
    [tcpPort, tlsPort] = [await freePort(), await freePort()];
    // Services as ServiceEntries with loopback endpoints; plaintext to them (the harness has no SDS for auto mTLS).
    const service = (name: string, port: number, protocol: string, target: number) => `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: web }
spec:
  hosts: [${name}.web.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: ${port}, name: p, protocol: ${protocol} }]
  endpoints: [{ address: 127.0.0.1, ports: { p: ${target} } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: web }
spec: { host: ${name}.web.svc.cluster.local, trafficPolicy: { tls: { mode: DISABLE } } }
`;
    const yaml = `${service('tcp-echo-v1', 9000, 'TCP', ports.v1)}${service('tcp-echo-v2', 9000, 'TCP', ports.v2)}${service('secure-a', 443, 'TLS', ports.sa)}${service('secure-b', 443, 'TLS', ports.sb)}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: edge, namespace: web }
spec:
  gatewayClassName: aviary
  listeners:
  - name: tcp
    protocol: TCP
    port: ${tcpPort}
    allowedRoutes: { kinds: [{ kind: TCPRoute }] }
  - name: tls
    protocol: TLS
    port: ${tlsPort}
    hostname: "*.example.com"
    tls: { mode: Passthrough }
---
# Istio's samples/tcp-echo/gateway-api/tcp-echo-20-v2.yaml (parentRef and listener renamed).
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: tcp-echo, namespace: web }
spec:
  parentRefs:
  - name: edge
    sectionName: tcp
  rules:
  - backendRefs:
    - name: tcp-echo-v1
      port: 9000
      weight: 80
    - name: tcp-echo-v2
      port: 9000
      weight: 20
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: { name: a, namespace: web }
spec:
  parentRefs: [{ name: edge, sectionName: tls }]
  hostnames: [a.example.com]
  rules: [{ backendRefs: [{ name: secure-a, port: 443 }] }]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: { name: b, namespace: web }
spec:
  parentRefs: [{ name: edge, port: ${tlsPort} }]
  hostnames: [b.example.com]
  rules: [{ backendRefs: [{ name: secure-a, port: 443, weight: 1 }, { name: secure-b, port: 443, weight: 3 }] }]
`;
    const { parseAllDocuments } = await import('yaml');
    const objects = parseAllDocuments(yaml).map((d) => withStoredKind(d.toJS() as ModelObject));
    const snapshot = buildSnapshot(objects, { trustDomain: 'cluster.local' });
    statuses = snapshot.gatewayApi.statuses;
    const router = translate(parseNode({ id: ROUTER, metadata: { NAMESPACE: 'web', LABELS: { 'gateway.networking.k8s.io/gateway-name': 'edge' } } }), snapshot);
    const listeners = [tcpPort, tlsPort].map((p) => {
      const l = router.listeners.find((x) => x.name === `0.0.0.0_${p}`);
      expect(l, `${p}: ${router.listeners.map((x) => x.name).join(', ')} ${router.problems.join('; ')}`).toBeDefined();
      return { ...l!.resource, address: { socket_address: { address: '127.0.0.1', port_value: p } } } as Msg;
    });
    envoy = await startEnvoy(envoy0.path!, staticBootstrap(ROUTER, router, listeners), [tcpPort, tlsPort]);
  });

  afterAll(async () => {
    await envoy?.stop();
    for (const s of servers) await new Promise((r) => s.close(() => r(undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  it('every route is Accepted with resolved references, and each listener counts its routes', () => {
    const conditions = (kind: string, name: string) =>
      ((statuses.find((s) => s.ref.kind === kind && s.ref.name === name)?.status['parents'] as { conditions: { type: string; status: string }[] }[])[0]!.conditions).map((c) => `${c.type}=${c.status}`);
    for (const [kind, name] of [['TCPRoute', 'tcp-echo'], ['TLSRoute', 'a'], ['TLSRoute', 'b']] as const) expect(conditions(kind, name)).toEqual(['Accepted=True', 'ResolvedRefs=True']);
    const gw = statuses.find((s) => s.ref.kind === 'KubernetesGateway')!.status['listeners'] as { name: string; attachedRoutes: number }[];
    expect(gw.map((l) => `${l.name}:${l.attachedRoutes}`)).toEqual(['tcp:1', 'tls:2']);
  });

  it("the TCP listener splits connections 80/20 by Istio's tcp-echo TCPRoute", async () => {
    const counts = await split(() => connect({ host: '127.0.0.1', port: tcpPort }));
    console.log(`[gateway-api-l4-live] TCPRoute 80/20 over ${N} connections: ${JSON.stringify(counts)}`);
    expect((counts['one'] ?? 0) + (counts['two'] ?? 0)).toBe(N);
    expect(near(counts['one'] ?? 0, 80)).toBe(true);
  });

  it('the TLS passthrough listener routes by SNI: a.example.com to its one backend, the TLS handshake made with the backend', async () => {
    const counts = await split(() => tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'a.example.com', ca: cert }), 20);
    expect(counts).toEqual({ 'secure-a': 20 });
  });

  it('b.example.com splits 1:3 by its TLSRoute weights', async () => {
    const counts = await split(() => tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'b.example.com', ca: cert }));
    console.log(`[gateway-api-l4-live] TLSRoute 1:3 over ${N} connections: ${JSON.stringify(counts)}`);
    expect((counts['secure-a'] ?? 0) + (counts['secure-b'] ?? 0)).toBe(N);
    expect(near(counts['secure-a'] ?? 0, 25)).toBe(true);
  });

  it('an SNI no TLSRoute names is refused', async () => {
    await expect(version(() => tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'c.example.com', ca: cert }))).rejects.toThrow();
  });
});
