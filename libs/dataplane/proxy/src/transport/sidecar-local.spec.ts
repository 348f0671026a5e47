import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { RoutingTable } from '../domain';
import { Proxy, type ProxyRequestRecord } from './proxy';
import type { WorkloadIdentity } from './tls-material';
import { downstreamMtls, edsCluster, hcm, httpChain, loadAssignment, route, routeConfig, staticCluster, toCluster, types, upstreamMtls, vhost } from '../testing/fixtures';

/**
 * Istio-shaped sidecar config as pilot sends it (virtualOutbound with use_original_dst and
 * per-port listeners that are not bound; virtualInbound matching the app's destination port),
 * run in local mode: no iptables, the app dials its sidecar's outbound port, the peer dials the
 * other sidecar's inbound port.
 */
const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
function id(spiffe: string): WorkloadIdentity {
  const key = generatePrivateKey('ecdsa-p256');
  return { certChain: ca.signWorkload(createCsr(key), spiffe, { ttlSeconds: 600 }).chain.slice(0, -1).join('\n'), privateKey: privateKeyToPem(key), roots: ca.rootPem, version: 1 };
}
const addr = (port: number) => ({ socket_address: { address: '0.0.0.0', port_value: port } });
const REVIEWS = 'outbound|9080||reviews.default.svc.cluster.local';

let app: Server;
let server: Proxy;
let client: Proxy;
const records: ProxyRequestRecord[] = [];

beforeAll(async () => {
  app = createServer((req, res) => res.end(`reviews saw ${req.headers.host}`));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appPort = (app.address() as AddressInfo).port;

  server = new Proxy({ node: { id: 's', mode: 'sidecar', workload: 'reviews-v1', namespace: 'default' }, portFor: (l) => (l.name === 'virtualInbound' ? 0 : undefined), onRecord: (r) => records.push(r) });
  server.setIdentity(id('spiffe://cluster.local/ns/default/sa/reviews'));
  const inboundHcm = hcm({ routeConfig: routeConfig(`inbound|${appPort}||`, [vhost('inbound', ['*'], [route({ prefix: '/' }, toCluster(`inbound|${appPort}||`))])]) });
  await server.apply(
    RoutingTable.fromResources({
      listeners: [
        {
          name: 'virtualInbound',
          address: addr(15006),
          traffic_direction: 'INBOUND',
          filter_chains: [
            httpChain(inboundHcm, { filter_chain_match: { destination_port: { value: appPort }, transport_protocol: 'tls' }, transport_socket: downstreamMtls() }),
            { filter_chain_match: { transport_protocol: 'tls' }, transport_socket: downstreamMtls(), filters: [{ name: 'tcp', typed_config: { '@type': types.tcpProxy, stat_prefix: 'pt', cluster: 'InboundPassthroughClusterIpv4' } }] },
          ],
        },
      ],
      clusters: [staticCluster(`inbound|${appPort}||`, [['127.0.0.1', appPort]]), { name: 'InboundPassthroughClusterIpv4', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' }],
    }),
  );
  const inboundPort = server.ports().virtualInbound!;

  client = new Proxy({ node: { id: 'c', mode: 'sidecar', workload: 'productpage-v1', namespace: 'default' }, portFor: (l) => (l.name === 'virtualOutbound' ? 0 : undefined) });
  client.setIdentity(id('spiffe://cluster.local/ns/default/sa/productpage'));
  await client.apply(
    RoutingTable.fromResources({
      listeners: [
        { name: 'virtualOutbound', address: addr(15001), use_original_dst: { value: true }, filter_chains: [{ filters: [{ name: 'tcp', typed_config: { '@type': types.tcpProxy, stat_prefix: 'pt', cluster: 'PassthroughCluster' } }] }] },
        { name: '0.0.0.0_9080', address: addr(9080), bind_to_port: { value: false }, traffic_direction: 'OUTBOUND', filter_chains: [httpChain(hcm({ rds: '9080' }))] },
      ],
      routes: [routeConfig('9080', [vhost('reviews.default.svc.cluster.local:9080', ['reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local:9080', 'reviews', 'reviews:9080'], [route({ prefix: '/' }, toCluster(REVIEWS))])])],
      clusters: [edsCluster(REVIEWS, { transport_socket: upstreamMtls(['spiffe://cluster.local/ns/default/sa/reviews'], 'outbound_.9080_._.reviews.default.svc.cluster.local') }), { name: 'PassthroughCluster', type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' }],
      endpoints: [loadAssignment(REVIEWS, [['127.0.0.1', inboundPort]])],
    }),
  );
});

afterAll(async () => {
  await client.close(100);
  await server.close(100);
  await new Promise((r) => app.close(r));
});

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/reviews/1', headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Istio-shaped sidecars in local mode', () => {
  it('routes by the authority port through the per-port outbound listener, over mTLS to the inbound chain of the app port', async () => {
    const r = await get(client.ports().virtualOutbound!, 'reviews:9080');
    expect(r).toEqual({ status: 200, body: 'reviews saw reviews:9080' });
    expect(records.at(-1)).toMatchObject({ reporter: 'destination', sourcePrincipal: 'spiffe://cluster.local/ns/default/sa/productpage', connectionSecurityPolicy: 'mutual_tls' });
  });

  it('answers 404 for a host no outbound route knows', async () => {
    expect((await get(client.ports().virtualOutbound!, 'unknown:9080')).status).toBe(404);
  });
});
