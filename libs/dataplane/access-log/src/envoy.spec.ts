import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { EnvoyProcess, hasEnvoy, helloMesh, HELLO_HOST, inboundListener, OpenSsl, ROUTER_LISTENER, routerBootstrap, sidecarInboundBootstrap, staticSecrets, type TranslateMesh } from '@aviary/testing';
import { buildSnapshot, parseNode } from '@aviary/mesh-model';
import { translate } from '@aviary/xds-translate';
import { startAccessLogServer, type AccessLogServer } from './server';
import type { ProxyIdentity, TelemetryRecord } from './record';

const translateMesh: TranslateMesh = (objects, node) => translate(parseNode(node), buildSnapshot(objects, { trustDomain: 'cluster.local' }));

/**
 * Real processes: two upstream Envoys configured with pilot's own translation of a small mesh
 * (an ingress gateway and the inbound side of `hello-v1`'s sidecar), each logging over gRPC ALS
 * on a Unix socket to its own `startAccessLogServer`, in front of a Node HTTP backend. All ports
 * are ephemeral (the workload address is a loopback IP of its own, as in local mode).
 */

const WORKLOAD_IP = '127.0.0.57';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

const gatewayIdentity: ProxyIdentity = {
  namespace: 'istio-system',
  workload: 'istio-ingressgateway',
  labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' },
  principal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account',
};
const helloIdentity: ProxyIdentity = { namespace: 'demo', workload: 'hello-v1', labels: { app: 'hello', version: 'v1' }, principal: 'spiffe://cluster.local/ns/demo/sa/hello' };

async function until<T>(get: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const envoyPath = process.env['AVIARY_ENVOY_PATH'];

describe.skipIf(!hasEnvoy(envoyPath))('Envoy → gRPC ALS → request records (real Envoy 1.40)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aviary-als-'));
  let backend: Server;
  let echo: TcpServer;
  let port: number;
  let tcpPort: number;
  const fromGateway: TelemetryRecord[] = [];
  const fromSidecar: TelemetryRecord[] = [];
  let gatewayAls: AccessLogServer;
  let sidecarAls: AccessLogServer;
  let router: EnvoyProcess;
  let sidecar: EnvoyProcess;
  let routerPort: number;
  const registry = new Registry();
  const peerHeaders: (string | string[] | undefined)[] = [];
  const appTraceparents: string[] = [];

  beforeAll(async () => {
    backend = createServer((req, res) => {
      peerHeaders.push(req.headers['x-aviary-peer-workload']);
      appTraceparents.push(String(req.headers['traceparent'] ?? ''));
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = `hello from v1; got ${Buffer.concat(chunks).length} bytes`;
        res.writeHead(req.url === '/hello/fail' ? 503 : 200, { 'content-type': 'text/plain' }).end(body);
      });
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    port = (backend.address() as AddressInfo).port;
    echo = createTcpServer((sock) => sock.pipe(sock));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    tcpPort = (echo.address() as AddressInfo).port;
    const mesh = helloMesh(translateMesh, WORKLOAD_IP, port, { tcpPort });
    gatewayAls = await startAccessLogServer({ socketPath: join(dir, 'gateway-als.sock'), identity: gatewayIdentity, onRecords: (r) => fromGateway.push(...r), registry });
    sidecarAls = await startAccessLogServer({ socketPath: join(dir, 'sidecar-als.sock'), identity: helloIdentity, onRecords: (r) => fromSidecar.push(...r) });
    sidecar = await EnvoyProcess.start(sidecarInboundBootstrap(mesh.sidecar, sidecarAls.socketPath, WORKLOAD_IP, [port, tcpPort]), { envoyPath });
    router = await EnvoyProcess.start(routerBootstrap(mesh.router, gatewayAls.socketPath), { envoyPath, env: { ISTIO_META_WORKLOAD_NAME: 'istio-ingressgateway' } });
    routerPort = await router.listenerPort(ROUTER_LISTENER);
    expect(await sidecar.listenerPort(inboundListener(port))).toBe(port);
  });

  afterAll(async () => {
    await router?.stop();
    await sidecar?.stop();
    await gatewayAls?.stop();
    await sidecarAls?.stop();
    await new Promise((r) => backend?.close(r));
    await new Promise((r) => echo?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a TCP connection through the inbound tcp_proxy gives a tcp record with its bytes and lifetime', async () => {
    const before = fromSidecar.length;
    const sent = Buffer.alloc(1000, 7);
    const received = await new Promise<number>((resolve, reject) => {
      let n = 0;
      const sock = connect(tcpPort, WORKLOAD_IP, () => sock.write(sent));
      sock.on('data', (d: Buffer) => {
        n += d.length;
        if (n >= sent.length) sock.end();
      });
      sock.on('close', () => resolve(n));
      sock.on('error', reject);
    });
    expect(received).toBe(1000);
    const r = await until(() => fromSidecar.slice(before).find((x) => x.protocol === 'tcp'), 'the tcp record');
    expect(r).toMatchObject({
      reporter: 'destination',
      protocol: 'tcp',
      responseCode: 0,
      destinationService: HELLO_HOST,
      destinationWorkload: 'hello-v1',
      requestBytes: 1000,
      responseBytes: 1000,
      connectionSecurityPolicy: 'none',
    });
    expect(r.durationMs).toBeGreaterThan(0);
    expect(r.traceId).toBeUndefined();
  });

  it('one request through gateway and sidecar gives a source and a destination record, field by field', async () => {
    const body = 'x'.repeat(123);
    const res = await fetch(`http://127.0.0.1:${routerPort}/hello/world`, {
      method: 'POST',
      body,
      headers: { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` },
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toBe('hello from v1; got 123 bytes');

    const src = await until(() => fromGateway.find((r) => r.traceId === TRACE_ID), 'the gateway record');
    const dst = await until(() => fromSidecar.find((r) => r.traceId === TRACE_ID), 'the sidecar record');
    expect(src).toMatchObject({
      reporter: 'source',
      sourceWorkload: 'istio-ingressgateway',
      sourceNamespace: 'istio-system',
      sourcePrincipal: gatewayIdentity.principal,
      sourceApp: 'istio-ingressgateway',
      destinationWorkload: 'hello-v1',
      destinationNamespace: 'demo',
      destinationApp: 'hello',
      destinationVersion: 'v1',
      destinationService: HELLO_HOST,
      destinationPrincipal: '',
      connectionSecurityPolicy: 'none',
      protocol: 'http',
      responseCode: 200,
      responseFlags: '-',
      requestBytes: 123,
      responseBytes: Buffer.byteLength(text),
      parentSpanId: CLIENT_SPAN,
    });
    expect(dst).toMatchObject({
      reporter: 'destination',
      sourcePrincipal: '',
      sourceWorkload: '', // claimed over plaintext: not trusted
      destinationWorkload: 'hello-v1',
      destinationNamespace: 'demo',
      destinationApp: 'hello',
      destinationVersion: 'v1',
      destinationService: HELLO_HOST,
      connectionSecurityPolicy: 'none',
      protocol: 'http',
      responseCode: 200,
      responseFlags: '-',
      requestBytes: 123,
      responseBytes: Buffer.byteLength(text),
    });
    // The sidecar moved the gateway's workload header into metadata: the app never sees it.
    expect(peerHeaders.length).toBeGreaterThan(0);
    expect(peerHeaders.every((h) => h === undefined)).toBe(true);
    // Each hop is a span: client → gateway → sidecar → app, each the parent of the next.
    expect(src.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(src.spanId).not.toBe(CLIENT_SPAN);
    expect(dst.parentSpanId).toBe(src.spanId);
    expect(dst.spanId).not.toBe(src.spanId);
    expect(appTraceparents).toContain(`00-${TRACE_ID}-${dst.spanId}-01`);
    // Durations: the gateway's request contains the sidecar's.
    expect(src.durationMs).toBeGreaterThan(0);
    expect(dst.durationMs).toBeGreaterThan(0);
    expect(src.durationMs).toBeGreaterThanOrEqual(dst.durationMs);
    const started = Date.parse(src.startTime);
    expect(Math.abs(Date.now() - started)).toBeLessThan(60_000);
    expect(Date.parse(dst.startTime)).toBeGreaterThanOrEqual(started);
  });

  it('reports the upstream status and Envoy response flags (404 NR, 503 from the app)', async () => {
    const missing = await fetch(`http://127.0.0.1:${routerPort}/nowhere`, { headers: { traceparent: `00-${'a'.repeat(32)}-${CLIENT_SPAN}-01` } });
    expect(missing.status).toBe(404);
    const nr = await until(() => fromGateway.find((r) => r.traceId === 'a'.repeat(32)), 'the 404 record');
    expect(nr).toMatchObject({ reporter: 'source', responseCode: 404, responseFlags: 'NR', destinationService: '127.0.0.1', connectionSecurityPolicy: 'unknown', parentSpanId: CLIENT_SPAN });
    expect(nr.spanId).toMatch(/^[0-9a-f]{16}$/);

    const failing = await fetch(`http://127.0.0.1:${routerPort}/hello/fail`, { headers: { traceparent: `00-${'b'.repeat(32)}-${CLIENT_SPAN}-01` } });
    expect(failing.status).toBe(503);
    const src = await until(() => fromGateway.find((r) => r.traceId === 'b'.repeat(32)), 'the gateway 503 record');
    const dst = await until(() => fromSidecar.find((r) => r.traceId === 'b'.repeat(32)), 'the sidecar 503 record');
    // Istio's default retry policy retries a 503 on another host (twice); the last answer is passed on: URX (retry limit exceeded).
    expect(src).toMatchObject({ responseCode: 503, responseFlags: 'URX', destinationService: HELLO_HOST });
    expect(dst).toMatchObject({ responseCode: 503, reporter: 'destination' });
  });

  it('without traceparent, the gateway starts the trace: its span is the root, the sidecar its child', async () => {
    const before = fromGateway.length;
    expect((await fetch(`http://127.0.0.1:${routerPort}/hello/untraced`)).status).toBe(200);
    const src = await until(() => fromGateway.slice(before).find((r) => r.parentSpanId === undefined), 'the untraced gateway record');
    const dst = await until(() => fromSidecar.find((r) => r.traceId === src.traceId), 'the untraced sidecar record');
    expect(src.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(dst.parentSpanId).toBe(src.spanId);
  });

  it('counts entries by kind in the agent registry', async () => {
    const text = await registry.metrics();
    expect(text).toMatch(/aviary_agent_access_log_entries_total\{kind="http"\} [3-9]/);
    expect(text).toMatch(/aviary_agent_access_log_skipped_total\{reason="no_reporter"\} 0/);
    // Envoy's tracer exports its spans to the agent, which accepts and drops them.
    const exported = async (): Promise<boolean> => /aviary_agent_trace_exports_total [1-9]/.test(await registry.metrics());
    const deadline = Date.now() + 15_000;
    while (!(await exported()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await exported()).toBe(true);
    // No export failure or other complaint (the connection-limit warning is about this test's bootstrap, which has no overload manager).
    const complaints = router.log.split('\n').filter((l) => /\[(warning|error)\]/.test(l) && !l.includes('global_downstream_max_connections'));
    expect(complaints).toEqual([]);
  });
});

describe.skipIf(!hasEnvoy(envoyPath))('Envoy → ALS over mutual TLS (ISTIO_MUTUAL): identities from the certificates', () => {
  const workloadIp = '127.0.0.59';
  const dir = mkdtempSync(join(tmpdir(), 'aviary-als-mtls-'));
  const ssl = new OpenSsl();
  let backend: Server;
  const fromGateway: TelemetryRecord[] = [];
  const fromSidecar: TelemetryRecord[] = [];
  const servers: AccessLogServer[] = [];
  const envoys: EnvoyProcess[] = [];
  let routerPort: number;

  beforeAll(async () => {
    backend = createServer((req, res) => req.resume().on('end', () => res.end('hello over mTLS')));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const port = (backend.address() as AddressInfo).port;
    const trustedCa = ssl.ca();
    const gw = ssl.spiffeCert('gateway', gatewayIdentity.principal);
    const hello = ssl.spiffeCert('hello', helloIdentity.principal);
    const mesh = helloMesh(translateMesh, workloadIp, port, { mtls: true });
    const gatewayAls = await startAccessLogServer({ socketPath: join(dir, 'gateway.sock'), identity: gatewayIdentity, onRecords: (r) => fromGateway.push(...r) });
    const sidecarAls = await startAccessLogServer({ socketPath: join(dir, 'sidecar.sock'), identity: helloIdentity, onRecords: (r) => fromSidecar.push(...r) });
    servers.push(gatewayAls, sidecarAls);
    const sidecarBoot = staticSecrets(sidecarInboundBootstrap(mesh.sidecar, sidecarAls.socketPath, workloadIp, port, { mtls: true }), { certChain: hello.cert, privateKey: hello.key, trustedCa });
    envoys.push(await EnvoyProcess.start(sidecarBoot, { envoyPath }));
    const router = await EnvoyProcess.start(staticSecrets(routerBootstrap(mesh.router, gatewayAls.socketPath), { certChain: gw.cert, privateKey: gw.key, trustedCa }), {
      envoyPath,
      env: { ISTIO_META_WORKLOAD_NAME: 'istio-ingressgateway' },
    });
    envoys.push(router);
    routerPort = await router.listenerPort(ROUTER_LISTENER);
  });

  afterAll(async () => {
    for (const e of envoys) await e.stop();
    for (const s of servers) await s.stop();
    await new Promise((r) => backend?.close(r));
    ssl.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the gateway reports mutual_tls to hello; the sidecar reports the gateway from its certificate', async () => {
    const trace = 'd'.repeat(32);
    const res = await fetch(`http://127.0.0.1:${routerPort}/hello/secure`, { headers: { traceparent: `00-${trace}-${CLIENT_SPAN}-01` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello over mTLS');
    const src = await until(() => fromGateway.find((r) => r.traceId === trace), 'the gateway record');
    const dst = await until(() => fromSidecar.find((r) => r.traceId === trace), 'the sidecar record');
    expect(src).toMatchObject({
      reporter: 'source',
      sourcePrincipal: gatewayIdentity.principal,
      destinationPrincipal: helloIdentity.principal,
      destinationWorkload: 'hello-v1',
      destinationService: HELLO_HOST,
      connectionSecurityPolicy: 'mutual_tls',
      responseCode: 200,
    });
    expect(dst).toMatchObject({
      reporter: 'destination',
      sourceWorkload: 'istio-ingressgateway',
      sourcePrincipal: gatewayIdentity.principal,
      sourceNamespace: 'istio-system',
      destinationPrincipal: helloIdentity.principal,
      destinationWorkload: 'hello-v1',
      destinationService: HELLO_HOST,
      connectionSecurityPolicy: 'mutual_tls',
      responseCode: 200,
    });
  });
});
