import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr, generatePrivateKey, Issuer, privateKeyToPem } from '@aviary/pki';
import { RoutingTable } from '../domain';
import { Proxy } from './proxy';
import { hcm, listener, route, routeConfig, staticCluster, toCluster, types, vhost } from '../testing/fixtures';

const ca = Issuer.createRoot({ trustDomain: 'cluster.local' });
function secret(name: string, host: string): Record<string, unknown> {
  const key = generatePrivateKey('ecdsa-p256');
  const issued = ca.signServing(createCsr(key), [host], 3600);
  return { name, tls_certificate: { certificate_chain: { inline_string: issued.chain.slice(0, -1).join('\n') }, private_key: { inline_string: privateKeyToPem(key) } } };
}

function sdsTls(secretName: string): Record<string, unknown> {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': types.downstreamTls, common_tls_context: { tls_certificate_sds_secret_configs: [{ name: secretName, sds_config: { ads: {} } }], alpn_protocols: ['h2', 'http/1.1'] } } };
}

let backend: Server;
let proxy: Proxy;
let port = 0;

beforeAll(async () => {
  backend = createServer((req, res) => res.end(`host=${req.headers.host}`));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const h = hcm({ rds: 'https.443' });
  const chain = (names: string[], secretName: string) => ({ filter_chain_match: { server_names: names }, filters: [{ name: 'hcm', typed_config: h }], transport_socket: sdsTls(secretName) });
  proxy = new Proxy({ node: { id: 'router~x~gw.ns~ns.svc.cluster.local', mode: 'router', workload: 'gw', namespace: 'ns' } });
  await proxy.apply(
    RoutingTable.fromResources({
      listeners: [listener('https', 0, [chain(['a.example.com'], 'kubernetes://cert-a'), chain(['*.b.example.com'], 'kubernetes://cert-b')])],
      routes: [routeConfig('https.443', [vhost('all', ['*'], [route({ prefix: '/' }, toCluster('be'))])])],
      clusters: [staticCluster('be', [['127.0.0.1', (backend.address() as AddressInfo).port]])],
      secrets: [secret('kubernetes://cert-a', 'a.example.com'), secret('kubernetes://cert-b', 'x.b.example.com')],
    }),
  );
  port = proxy.ports().https!;
});

afterAll(async () => {
  await proxy.close(100);
  await new Promise((r) => backend.close(r));
});

function handshake(servername: string): Promise<{ san: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca: ca.rootPem, ALPNProtocols: ['http/1.1'] }, () => {
      const san = new X509Certificate(s.getPeerCertificate().raw).subjectAltName ?? '';
      s.write(`GET / HTTP/1.1\r\nhost: ${servername}\r\nconnection: close\r\n\r\n`);
      let data = '';
      s.on('data', (c: Buffer) => (data += c.toString()));
      s.on('end', () => resolve({ san, body: data.slice(data.indexOf('\r\n\r\n') + 4) }));
    });
    s.on('error', reject);
  });
}

describe('router TLS with per-SNI certificates from SDS', () => {
  it('serves each server name with its own certificate, verified against the CA', async () => {
    expect(await handshake('a.example.com')).toEqual({ san: 'DNS:a.example.com', body: 'host=a.example.com' });
    expect((await handshake('x.b.example.com')).san).toBe('DNS:x.b.example.com');
  });

  it('refuses a server name no chain claims', async () => {
    await expect(handshake('c.example.com')).rejects.toThrow();
  });
});
