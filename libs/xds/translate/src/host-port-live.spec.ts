import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { initXdsRoot } from '@aviary/xds-protos';
import { testEnvoy } from '@aviary/testing';
import type { Msg } from './envoy';
import { translate } from './translate';
import { freePort, startEnvoy, staticBootstrap, type RunningEnvoy } from './authz/__fixtures__/envoy-harness';

/**
 * Through a REAL Envoy: a gateway matches virtual hosts on the Host header without its port
 * (`very.specific.com:1234` is `very.specific.com`, `foo.wildcard.io:8080` meets
 * `*.wildcard.io`) and forwards the header unchanged, as the Gateway API conformance test
 * HTTPRouteHostnameIntersection asks. Everything binds loopback on ephemeral ports.
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto'] });
const envoy0 = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const NODE = 'router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local';

function obj(kind: string, namespace: string, name: string, spec: unknown): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('gateway virtual hosts match the Host header without its port, through a real Envoy', () => {
  if (envoy0.skip !== undefined) {
    it.skip(envoy0.skip, () => undefined);
    return;
  }
  let backend: Server | undefined;
  let envoy: RunningEnvoy | undefined;
  let gatewayPort = 0;

  beforeAll(async () => {
    backend = createServer((req, res) => res.end(`host=${req.headers.host}`));
    await new Promise<void>((resolve) => backend!.listen(0, '127.0.0.1', () => resolve()));
    const backendPort = (backend.address() as { port: number }).port;
    gatewayPort = await freePort();
    const objects = [
      obj('Gateway', 'istio-system', 'gw', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: gatewayPort, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] }),
      obj('ServiceEntry', 'istio-system', 'echo', {
        hosts: ['echo.internal.test'],
        location: 'MESH_EXTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: backendPort }],
        endpoints: [{ address: '127.0.0.1' }],
      }),
      obj('VirtualService', 'istio-system', 'echo', { hosts: ['very.specific.com', '*.wildcard.io'], gateways: ['gw'], http: [{ route: [{ destination: { host: 'echo.internal.test', port: { number: 80 } } }] }] }),
    ];
    const router = translate(parseNode({ id: NODE, metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } } }), buildSnapshot(objects, { trustDomain: 'cluster.local' }));
    const gw = router.listeners.find((l) => l.name === `0.0.0.0_${gatewayPort}`)!.resource;
    const listener: Msg = { ...gw, address: { socket_address: { address: '127.0.0.1', port_value: gatewayPort } } };
    envoy = await startEnvoy(envoy0.path!, staticBootstrap(NODE, router, [listener]), [gatewayPort]);
  });

  afterAll(async () => {
    await envoy?.stop();
    await new Promise((r) => (backend ? backend.close(() => r(undefined)) : r(undefined)));
  });

  it('an exact host, with and without a port, reaches the backend with the Host unchanged', async () => {
    expect(await get(gatewayPort, 'very.specific.com'), envoy?.output()).toEqual({ status: 200, body: 'host=very.specific.com' });
    expect(await get(gatewayPort, 'very.specific.com:1234')).toEqual({ status: 200, body: 'host=very.specific.com:1234' });
  });

  it('a wildcard host matches with a port too', async () => {
    expect(await get(gatewayPort, 'foo.wildcard.io:8080')).toEqual({ status: 200, body: 'host=foo.wildcard.io:8080' });
  });

  it('a host that matches no virtual host is still refused, port or not', async () => {
    expect((await get(gatewayPort, 'non.matching.com:1234')).status).toBe(404);
    expect((await get(gatewayPort, 'wildcard.io:1234')).status).toBe(404);
  });
});
