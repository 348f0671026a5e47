import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { ExtensionProvider } from '@aviary/mesh-api';
import { buildSnapshot, parseNode, type JwksResolution, type MeshSnapshot, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';

/** Tests only: the security mesh of authz.yaml, its MeshConfig providers, and its proxies. */

export const extensionProviders: readonly ExtensionProvider[] = [
  {
    name: 'http-authz',
    envoyExtAuthzHttp: {
      service: 'foo/ext-authz.foo.svc.cluster.local',
      port: 8000,
      timeout: '2s',
      pathPrefix: '/check',
      includeRequestHeadersInCheck: ['x-ext-authz', 'x-user-*'],
      includeAdditionalHeadersInCheck: { 'x-ext-authz-source': 'aviary' },
      headersToUpstreamOnAllow: ['x-ext-authz-check-result'],
      headersToDownstreamOnDeny: ['x-ext-authz-check-result'],
      statusOnError: '503',
    },
  },
  { name: 'grpc-authz', envoyExtAuthzGrpc: { service: 'ext-authz.foo.svc.cluster.local', port: 9000, failOpen: false, includeRequestBodyInCheck: { maxRequestBytes: 4096, allowPartialMessage: true } } },
];

export const ISSUER_B_JWKS = '{"keys":[{"kty":"RSA","e":"AQAB","n":"vQAahz0EZJZF1GYe0FM2C2u8X-SBXKv4JMkN7xgs8x5yOrQcGEIEtyWWA6kY_tUJBuqc1TngwfKZL2x1vEebQJ4S9mddwSfZt9BJI22K3poih71wIqNC9lmsDW2TLOE3OUSeL9wLwoTk8Mtc4DsqpgiirLEzp7FvarQ5Ht_g0F6wGp7DjJSR1r6K6dZ4WdfgkCEG5FwgQSFLbjJlAOPwnfo6GeTSNmZnioML5elk2oP68NiSOpGISgenX7dn8o-37Yykp_b13pEcH4eK3R4L50Ff5BDh5sk5E0qjEBLyBp3Tzm9cami3UiBgb841J5rmIXIVyTEhpjuXWzu_eG-E6Q"}]}';

export const jwks: ReadonlyMap<string, JwksResolution> = new Map<string, JwksResolution>([
  ['https://issuer-b.example/jwks.json', { jwks: ISSUER_B_JWKS }],
  ['https://issuer-down.example/jwks.json', { error: 'GET https://issuer-down.example/jwks.json: timed out after 5000 ms' }],
]);

export function loadObjects(): ModelObject[] {
  const text = readFileSync(fileURLToPath(new URL('./authz.yaml', import.meta.url)), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as ModelObject);
}

export function authzMesh(objects: ModelObject[] = loadObjects()): MeshSnapshot {
  return buildSnapshot(objects, { trustDomain: 'cluster.local', extensionProviders }, jwks);
}

export const proxies: Readonly<Record<string, ProxyInfo>> = {
  'sidecar-httpbin': parseNode({ id: 'sidecar~10.1.0.1~httpbin-1.foo~foo.svc.cluster.local', metadata: { NAMESPACE: 'foo', LABELS: { app: 'httpbin' }, SERVICE_ACCOUNT: 'httpbin' } }),
  router: parseNode({ id: 'router~10.0.9.1~istio-ingressgateway-6f7c.istio-system~istio-system.svc.cluster.local', metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } } }),
};
