import { createServer, type Server } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { initXdsRoot } from '@aviary/xds-protos';
import { testEnvoy } from '@aviary/testing';
import type { Msg } from './envoy';
import { translate } from './translate';
import { freePort, startEnvoy, staticBootstrap, type RunningEnvoy } from './authz/__fixtures__/envoy-harness';

/**
 * WebSockets through a REAL Envoy, as pilot configures it: an HTTP/1.1 `Upgrade: websocket` through
 * the router (ingress gateway) and through a sidecar's outbound listener (INTERCEPTION_MODE NONE,
 * bound on loopback), and an RFC 8441 extended CONNECT over HTTP/2 through the router, which
 * Envoy turns into an HTTP/1.1 upgrade to the app. The app is a `ws` echo server; everything
 * binds loopback on ephemeral ports.
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto'] });
const envoy0 = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const ROUTER = 'router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local';
const SIDECAR = 'sidecar~127.0.0.21~client.shop~shop.svc.cluster.local';
const HOST = 'chat.shop.svc.cluster.local';

function obj(kind: string, namespace: string, name: string, spec: unknown): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}

/** Opens a WebSocket, sends each message and resolves with the echoes in order. */
async function echo(url: string, messages: readonly string[], host?: string): Promise<string[]> {
  const ws = new WebSocket(url, host === undefined ? {} : { headers: { host } });
  const got: string[] = [];
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('open', () => ws.send(messages[0]!));
    ws.on('message', (data) => {
      got.push(String(data));
      if (got.length < messages.length) ws.send(messages[got.length]!);
      else {
        ws.close();
        resolve(got);
      }
    });
  });
}

/** A client-to-server text frame (RFC 6455 5.2: masked; payload < 126 bytes). */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

describe('WebSockets through a real Envoy', () => {
  if (envoy0.skip !== undefined) {
    it.skip(envoy0.skip, () => undefined);
    return;
  }
  let app: Server | undefined;
  let wss: WebSocketServer | undefined;
  const envoys: RunningEnvoy[] = [];
  let gatewayPort = 0;
  let servicePort = 0;
  const upgrades: string[] = [];

  beforeAll(async () => {
    app = createServer((_req, res) => res.end('plain http'));
    wss = new WebSocketServer({ server: app });
    wss.on('connection', (socket, req) => {
      upgrades.push(`${req.headers.host} ${req.url}`);
      socket.on('message', (data) => socket.send(`echo: ${String(data)}`));
    });
    await new Promise<void>((resolve) => app!.listen(0, '127.0.0.1', () => resolve()));
    const appPort = (app.address() as { port: number }).port;
    gatewayPort = await freePort();
    servicePort = await freePort();
    const objects = [
      obj('Gateway', 'istio-system', 'gw', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: gatewayPort, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] }),
      obj('ServiceEntry', 'shop', 'chat', {
        hosts: [HOST],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: servicePort, name: 'http', protocol: 'HTTP', targetPort: appPort }],
        endpoints: [{ address: '127.0.0.1' }],
      }),
      // Plaintext to the app: the harness has no SDS to serve the workload certificate of auto mTLS.
      obj('DestinationRule', 'shop', 'chat', { host: HOST, trafficPolicy: { tls: { mode: 'DISABLE' } } }),
      obj('VirtualService', 'istio-system', 'chat', { hosts: ['*'], gateways: ['gw'], http: [{ route: [{ destination: { host: HOST, port: { number: servicePort } } }] }] }),
    ];
    const snapshot = buildSnapshot(objects, { trustDomain: 'cluster.local' });
    const router = translate(parseNode({ id: ROUTER, metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } } }), snapshot);
    const gw = router.listeners.find((l) => l.name === `0.0.0.0_${gatewayPort}`)!.resource;
    const sidecar = translate(parseNode({ id: SIDECAR, metadata: { NAMESPACE: 'shop', LABELS: { app: 'client' }, INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.21' } }), snapshot);
    const outbound = sidecar.listeners.find((l) => l.name === `127.0.0.1_${servicePort}`);
    expect(outbound, sidecar.listeners.map((l) => l.name).join(', ')).toBeDefined();
    envoys.push(await startEnvoy(envoy0.path!, staticBootstrap(ROUTER, router, [{ ...gw, address: { socket_address: { address: '127.0.0.1', port_value: gatewayPort } } } as Msg]), [gatewayPort]));
    envoys.push(await startEnvoy(envoy0.path!, staticBootstrap(SIDECAR, sidecar, [outbound!.resource]), [servicePort]));
  });

  afterAll(async () => {
    for (const e of envoys) await e.stop();
    wss?.close();
    await new Promise((r) => (app ? app.close(() => r(undefined)) : r(undefined)));
  });

  it('an HTTP/1.1 upgrade through the router echoes every message', async () => {
    const messages = Array.from({ length: 20 }, (_, i) => `gateway ${i}`);
    expect(await echo(`ws://127.0.0.1:${gatewayPort}/room/1`, messages)).toEqual(messages.map((m) => `echo: ${m}`));
    expect(upgrades).toContain(`127.0.0.1:${gatewayPort} /room/1`);
  });

  it('an HTTP/1.1 upgrade through a sidecar outbound listener echoes every message', async () => {
    const messages = Array.from({ length: 20 }, (_, i) => `sidecar ${i}`);
    const got = await echo(`ws://127.0.0.1:${servicePort}/room/2`, messages, HOST).catch((e: Error) => [e.message, envoys[1]!.output()]);
    expect(got).toEqual(messages.map((m) => `echo: ${m}`));
    expect(upgrades).toContain(`${HOST} /room/2`);
  });

  it('an HTTP/2 extended CONNECT (RFC 8441) through the router reaches the HTTP/1.1 app as an upgrade', async () => {
    const session = h2connect(`http://127.0.0.1:${gatewayPort}`);
    try {
      // The client may send :protocol only after the server's SETTINGS_ENABLE_CONNECT_PROTOCOL.
      await new Promise<void>((resolve, reject) => {
        session.once('error', reject);
        session.once('remoteSettings', (s) => (s.enableConnectProtocol ? resolve() : reject(new Error('Envoy did not enable extended CONNECT'))));
      });
      const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/room/h2', ':scheme': 'http', ':authority': `127.0.0.1:${gatewayPort}`, 'sec-websocket-version': '13',
        // RFC 8441 has no key; Envoy forwards the headers as they are and RFC 6455 servers (ws) require one.
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' });
      const status = await new Promise<number>((resolve, reject) => {
        stream.once('error', reject);
        stream.once('response', (h) => resolve(Number(h[':status'])));
      });
      expect(status, envoys[0]!.output()).toBe(200);
      const reply = new Promise<Buffer>((resolve) => stream.once('data', (d: Buffer) => resolve(d)));
      stream.write(maskedTextFrame('over h2'));
      const frame = await reply;
      // An unmasked server text frame: FIN+text, length, payload.
      expect(frame[0]).toBe(0x81);
      expect(frame.subarray(2, 2 + frame[1]!).toString()).toBe('echo: over h2');
      stream.close();
    } finally {
      session.close();
    }
    expect(upgrades).toContain(`127.0.0.1:${gatewayPort} /room/h2`);
  });
});
