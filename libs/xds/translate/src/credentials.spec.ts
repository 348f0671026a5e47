import { describe, expect, it } from 'vitest';
import { parseNode, SnapshotBuilder, type GatewayCredential, type ModelChangeEvent, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';
import { TypeUrl } from '@aviary/xds-api';
import { changeFor, translate } from './index';

let revision = 0;
const created = (o: ModelObject): ModelChangeEvent => ({ op: 'created', ref: { kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name }, revision: ++revision, object: o });
const gateway: ModelObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'Gateway',
  metadata: { name: 'hello', namespace: 'mesh' },
  spec: {
    selector: { istio: 'ingressgateway' },
    servers: [
      { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['hello.example.com'], tls: { mode: 'SIMPLE', credentialName: 'hello-cert' } },
      { port: { number: 8443, name: 'mtls', protocol: 'HTTPS' }, hosts: ['partner.example.com'], tls: { mode: 'MUTUAL', credentialName: 'partner-cert' } },
    ],
  },
};
const router = (namespace: string, authenticated: boolean): ProxyInfo => {
  const p = parseNode({ id: `router~10.0.0.9~ingress-1.${namespace}~${namespace}.svc.cluster.local`, metadata: { LABELS: { istio: 'ingressgateway' }, SERVICE_ACCOUNT: 'ingress' } });
  return authenticated ? { ...p, authenticated: true } : p;
};
const cred = (c: Omit<GatewayCredential, 'version'>, version = '1'): GatewayCredential => ({ ...c, version });
const secretsOf = (p: ProxyInfo, b: SnapshotBuilder) => translate(p, b.build().snapshot);

function builder(): SnapshotBuilder {
  const b = new SnapshotBuilder({ trustDomain: 'cluster.local' });
  b.applyAll([created(gateway)]);
  return b;
}

describe('credentialName: Secrets by SDS over ADS', () => {
  it("listeners name the credential with an ADS sds_config on Envoy's default initial_fetch_timeout (a missing Secret must not block the gateway's other servers)", () => {
    const out = secretsOf(router('istio-system', true), builder());
    const text = JSON.stringify(out.listeners);
    expect(text).toContain('"name":"kubernetes://hello-cert","sds_config":{"ads":{},"resource_api_version":"V3"}');
    expect(text).not.toMatch(/kubernetes:\/\/[^"]*","sds_config":\{"initial_fetch_timeout"/);
    expect(text).toContain('"name":"kubernetes://partner-cert-cacert"');
  });

  it("serves an authenticated router its own namespace's Secrets: certificate and key, and the CA for MUTUAL", () => {
    const b = builder();
    b.setCredentials(new Map([
      ['istio-system/hello-cert', cred({ certChain: 'CHAIN', privateKey: 'KEY' })],
      ['istio-system/partner-cert', cred({ certChain: 'PCHAIN', privateKey: 'PKEY', caCert: 'PCA' })],
    ]));
    const out = secretsOf(router('istio-system', true), b);
    expect(out.secrets.map((s) => s.resource)).toEqual([
      { name: 'kubernetes://hello-cert', tls_certificate: { certificate_chain: { inline_string: 'CHAIN' }, private_key: { inline_string: 'KEY' } } },
      { name: 'kubernetes://partner-cert', tls_certificate: { certificate_chain: { inline_string: 'PCHAIN' }, private_key: { inline_string: 'PKEY' } } },
      { name: 'kubernetes://partner-cert-cacert', validation_context: { trusted_ca: { inline_string: 'PCA' } } },
    ]);
    expect(out.problems.filter((p) => p.startsWith('credential'))).toEqual([]);
  });

  it('takes the CA from Secret <name>-cacert when <name> has no ca.crt', () => {
    const b = builder();
    b.setCredentials(new Map([
      ['istio-system/partner-cert', cred({ certChain: 'PCHAIN', privateKey: 'PKEY' })],
      ['istio-system/partner-cert-cacert', cred({ caCert: 'SEPARATE-CA' })],
    ]));
    expect(secretsOf(router('istio-system', true), b).secrets.find((s) => s.name === 'kubernetes://partner-cert-cacert')?.resource).toEqual({ name: 'kubernetes://partner-cert-cacert', validation_context: { trusted_ca: { inline_string: 'SEPARATE-CA' } } });
  });

  it('never serves a Secret of another namespace, nor anything to an unauthenticated stream (plaintext port)', () => {
    const b = builder();
    b.setCredentials(new Map([['istio-system/hello-cert', cred({ certChain: 'CHAIN', privateKey: 'KEY' })]]));
    const elsewhere = secretsOf(router('other', true), b);
    expect(elsewhere.secrets).toEqual([]);
    expect(elsewhere.problems).toContain('credential kubernetes://hello-cert: no usable TLS Secret other/hello-cert; what uses it is not served one (without an earlier certificate, its TLS handshakes fail)');
    const plaintext = secretsOf(router('istio-system', false), b);
    expect(plaintext.secrets).toEqual([]);
    expect(plaintext.problems).toContain('credential kubernetes://hello-cert: served only over an authenticated (mTLS) xDS stream; what uses it is not served one (without an earlier certificate, its TLS handshakes fail)');
  });

  it('a credentials-only change pushes only Secrets, to every proxy but proxyless clients', () => {
    const b = builder();
    b.build();
    expect(b.setCredentials(new Map([['istio-system/hello-cert', cred({ certChain: 'A', privateKey: 'B' })]]))).toBe(true);
    const changes = changeFor(b.build());
    expect(changes).toHaveLength(1);
    expect(changes[0]!.types).toEqual([TypeUrl.Secret]);
    expect(changes[0]!.affects?.(router('istio-system', true))).toBe(true);
    expect(changes[0]!.affects?.(parseNode({ id: 'client-1', metadata: { GENERATOR: 'grpc' } }))).toBe(false);
    // The same versions again: nothing changed, no build needed.
    expect(b.setCredentials(new Map([['istio-system/hello-cert', cred({ certChain: 'A', privateKey: 'B' })]]))).toBe(false);
  });
});
