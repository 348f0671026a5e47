import { connect, createServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { RoutingTable } from '../domain';
import { Proxy } from './proxy';
import { hcm, httpChain, listener, route, routeConfig, staticCluster, toCluster, vhost } from '../testing/fixtures';

let backend: Http2Server;
let proxy: Proxy;
let port = 0;

beforeAll(async () => {
  // A gRPC-shaped h2c backend: echoes the body, answers grpc-status in trailers.
  backend = createServer();
  backend.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-path': String(headers[':path']) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
      stream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const bport = (backend.address() as AddressInfo).port;
  proxy = new Proxy({ node: { id: 'router~x~gw.ns~ns.svc.cluster.local', mode: 'router', workload: 'gw', namespace: 'ns' } });
  await proxy.apply(
    RoutingTable.fromResources({
      listeners: [listener('grpc', 0, [httpChain(hcm({ rds: 'rc' }))])],
      routes: [routeConfig('rc', [vhost('v', ['*'], [route({ prefix: '/', grpc: {} }, toCluster('grpc-backend', { timeout: { seconds: 0 } }))])])],
      clusters: [
        staticCluster('grpc-backend', [['127.0.0.1', bport]], {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': ExtensionTypeUrl.HttpProtocolOptions, explicit_http_config: { http2_protocol_options: {} } },
          },
        }),
      ],
    }),
  );
  port = proxy.ports().grpc!;
});

afterAll(async () => {
  await proxy.close(100);
  await new Promise((r) => backend.close(r));
});

describe('h2c and gRPC pass-through', () => {
  it('proxies h2c to an h2 upstream with trailers intact', async () => {
    const client = connect(`http://127.0.0.1:${port}`);
    try {
      const result = await new Promise<{ status: number; body: string; trailers: Record<string, unknown>; path: string }>((resolve, reject) => {
        const req = client.request({ ':method': 'POST', ':path': '/pkg.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' });
        let status = 0;
        let path = '';
        let body = '';
        req.on('response', (h) => {
          status = Number(h[':status']);
          path = String(h['x-path']);
        });
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('trailers', (t) => resolve({ status, body, trailers: t, path }));
        req.on('error', reject);
        req.end('hello-grpc');
      });
      expect(result).toMatchObject({ status: 200, body: 'hello-grpc', path: '/pkg.Echo/Say', trailers: { 'grpc-status': '0', 'grpc-message': 'ok' } });
    } finally {
      client.close();
    }
  });
});
