import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { initXdsRoot } from '@aviary/xds-protos';
import { testEnvoy } from '@aviary/testing';
import type { Msg } from './envoy';
import { translate } from './translate';
import { freePort, startEnvoy, staticBootstrap, type RunningEnvoy } from './authz/__fixtures__/envoy-harness';

/**
 * Through a REAL Envoy: a ServiceEntry with `resolution: DNS` whose endpoint is a hostname
 * (`localhost`, resolved by Envoy from /etc/hosts) becomes a STRICT_DNS cluster that reaches a
 * local HTTP backend, and a VirtualService `corsPolicy` answers CORS preflights at the gateway.
 * Everything binds loopback on ephemeral ports.
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto'] });
const envoy0 = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const NODE = 'router~127.0.0.1~gw.istio-system~istio-system.svc.cluster.local';

function obj(kind: string, namespace: string, name: string, spec: unknown): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}

describe('DNS resolution and CORS through a real Envoy', () => {
  if (envoy0.skip !== undefined) {
    it.skip(envoy0.skip, () => undefined);
    return;
  }
  let backend: Server | undefined;
  let envoy: RunningEnvoy | undefined;
  let gatewayPort = 0;

  beforeAll(async () => {
    backend = createServer((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(`backend saw ${req.method} ${req.url} host=${req.headers.host}`);
    });
    await new Promise<void>((resolve) => backend!.listen(0, '127.0.0.1', () => resolve()));
    const backendPort = (backend.address() as { port: number }).port;
    gatewayPort = await freePort();
    const objects = [
      obj('Gateway', 'istio-system', 'gw', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: gatewayPort, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] }),
      obj('ServiceEntry', 'istio-system', 'weather', {
        hosts: ['weather.external.test'],
        location: 'MESH_EXTERNAL',
        resolution: 'DNS',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP', targetPort: backendPort }],
        endpoints: [{ address: 'localhost' }],
      }),
      obj('VirtualService', 'istio-system', 'weather', {
        hosts: ['*'],
        gateways: ['gw'],
        http: [
          {
            route: [{ destination: { host: 'weather.external.test', port: { number: 80 } } }],
            corsPolicy: { allowOrigins: [{ exact: 'https://app.example' }], allowMethods: ['GET', 'PUT'], allowHeaders: ['x-token'], maxAge: '10m', unmatchedPreflights: 'IGNORE' },
          },
        ],
      }),
    ];
    const router = translate(parseNode({ id: NODE, metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } } }), buildSnapshot(objects, { trustDomain: 'cluster.local' }));
    const cluster = router.clusters.find((c) => c.name === 'outbound|80||weather.external.test')!.resource;
    expect(cluster.type).toBe('STRICT_DNS');
    const gw = router.listeners.find((l) => l.name === `0.0.0.0_${gatewayPort}`)!.resource;
    const listener: Msg = { ...gw, address: { socket_address: { address: '127.0.0.1', port_value: gatewayPort } } };
    envoy = await startEnvoy(envoy0.path!, staticBootstrap(NODE, router, [listener]), [gatewayPort]);
  });

  afterAll(async () => {
    await envoy?.stop();
    await new Promise((r) => (backend ? backend.close(() => r(undefined)) : r(undefined)));
  });

  it('a hostname endpoint is resolved by Envoy and reached', async () => {
    const res = await fetch(`http://127.0.0.1:${gatewayPort}/forecast`);
    expect(res.status, envoy?.output()).toBe(200);
    expect(await res.text()).toMatch(/^backend saw GET \/forecast/);
  });

  it('a preflight from an allowed origin is answered by Envoy with the policy', async () => {
    const res = await fetch(`http://127.0.0.1:${gatewayPort}/forecast`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'PUT' },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET,PUT');
    expect(res.headers.get('access-control-allow-headers')).toBe('x-token');
    expect(res.headers.get('access-control-max-age')).toBe('600');
  });

  it('a simple request from another origin gets no CORS headers', async () => {
    const res = await fetch(`http://127.0.0.1:${gatewayPort}/forecast`, { headers: { origin: 'https://evil.example' } });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
