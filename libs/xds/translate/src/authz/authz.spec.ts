import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TypeUrl, canonicalResource, decodeResource, encodeResource } from '@aviary/xds-protos';
import { translate, type Msg, type XdsResources } from '../index';
import { FAIL_CLOSED_JWKS } from './jwt';
import { SnapshotBuilder } from '@aviary/mesh-model';
import { authzMesh, ISSUER_B_JWKS, loadObjects, proxies } from './__fixtures__/fixture';

const goldenDir = fileURLToPath(new URL('../__golden__/', import.meta.url));
const mesh = authzMesh();

function run(name: keyof typeof proxies): XdsResources {
  const r = translate(proxies[name]!, mesh);
  const urls = { listeners: TypeUrl.Listener, routes: TypeUrl.RouteConfiguration, clusters: TypeUrl.Cluster, endpoints: TypeUrl.ClusterLoadAssignment } as const;
  for (const [key, url] of Object.entries(urls)) {
    for (const { resource } of r[key as keyof typeof urls]) expect(decodeResource(url, encodeResource(url, canonicalResource(url, resource)))).toEqual(resource);
  }
  return r;
}

const sidecar = run('sidecar-httpbin');
const router = run('router');

function chain(r: XdsResources, name: string): Msg {
  const l = r.listeners.find((x) => x.name === 'virtualInbound')!.resource;
  return (l.filter_chains as Msg[]).find((c) => c.name === name)!;
}
/** The HCM's HTTP filters after the access-log telemetry filter (./accesslog), which always leads. */
const httpFilters = (c: Msg) => ((((c.filters as Msg[])[0]!.typed_config as Msg).http_filters as Msg[]) ?? []).filter((f) => f.name !== 'envoy.filters.http.header_to_metadata');
const routerFilters = () => {
  const l = router.listeners.find((x) => x.name === '0.0.0.0_8080')!.resource;
  return httpFilters((l.filter_chains as Msg[])[0]!);
};
const config = (f: Msg) => f.typed_config as Msg;

describe('security translation golden files (UPDATE_GOLDEN=1 rewrites them)', () => {
  for (const [name, r] of [['sidecar-httpbin', sidecar], ['router', router]] as const) {
    it(`authz.${name}`, () => {
      const text = `${JSON.stringify(r, null, 2)}\n`;
      const file = `${goldenDir}authz.${name}.json`;
      if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
      expect(text).toBe(readFileSync(file, 'utf8'));
    });
  }
});

describe('RequestAuthentication → jwt_authn', () => {
  const filters = httpFilters(chain(sidecar, 'inbound_8000_mtls'));
  const jwt = config(filters[0]!);
  it('comes first, then AUDIT, CUSTOM (shadow RBAC + ext_authz), DENY, ALLOW, router', () => {
    expect(filters.map((f) => f.name)).toEqual([
      'envoy.filters.http.jwt_authn',
      'envoy.filters.http.rbac.AUDIT',
      'envoy.filters.http.rbac',
      'envoy.filters.http.ext_authz',
      'envoy.filters.http.rbac.DENY',
      'envoy.filters.http.rbac',
      'envoy.filters.http.router',
    ]);
  });
  it('one provider per rule, sorted by issuer, with every location and output option', () => {
    const providers = jwt.providers as Record<string, Msg>;
    expect(Object.values(providers).map((p) => p.issuer)).toEqual(['issuer-a', 'issuer-b', 'issuer-down']);
    expect(providers['origins-0']).toMatchObject({
      audiences: ['httpbin'],
      from_headers: [{ name: 'x-jwt-assertion', value_prefix: 'Bearer ' }],
      claim_to_headers: [{ header_name: 'x-jwt-group', claim_name: 'group' }],
      payload_in_metadata: 'payload',
    });
    expect(providers['origins-1']).toMatchObject({
      local_jwks: { inline_string: ISSUER_B_JWKS },
      from_params: ['access_token'],
      from_cookies: ['session'],
      forward_payload_header: 'x-jwt-payload',
      forward: true,
    });
  });
  it('a JWKS pilot could not fetch fails closed for that issuer', () => {
    expect((jwt.providers as Record<string, Msg>)['origins-2']!.local_jwks).toEqual({ inline_string: FAIL_CLOSED_JWKS });
    expect(sidecar.problems.some((p) => p.includes('issuer-down') && p.includes('timed out'))).toBe(true);
  });
  it('a missing token passes, an invalid one does not (each provider OR allow_missing; outer OR for shared locations)', () => {
    const requires = ((jwt.rules as Msg[])[0]!.requires as Msg).requires_any as Msg;
    const reqs = requires.requirements as Msg[];
    expect(reqs.slice(0, 3)).toEqual([{ provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { provider_name: 'origins-2' }]);
    expect(((reqs[3]!.requires_all as Msg).requirements as Msg[])[0]).toEqual({ requires_any: { requirements: [{ provider_name: 'origins-0' }, { allow_missing: {} }] } });
  });
  it('a targetRef Gateway RequestAuthentication applies to that router only', () => {
    expect(config(routerFilters()[0]!).providers).toEqual({ 'origins-0': expect.objectContaining({ issuer: 'issuer-a' }) });
  });
});

describe('AuthorizationPolicy', () => {
  const filters = httpFilters(chain(sidecar, 'inbound_8000_mtls'));
  const rules = (i: number) => config(filters[i]!).rules as Msg;
  it('requestPrincipals match iss and sub of the verified payload', () => {
    const principal = ((rules(5).policies as Record<string, Msg>)['ns[foo]-policy[require-jwt]-rule[0]']!.principals as Msg[])[0]!;
    const ids = (principal.and_ids as Msg).ids as Msg[];
    const claim = (k: string, m: Msg) => ({ sourced_metadata: { metadata_matcher: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: k }], value: { string_match: m } } } });
    expect(ids[0]).toEqual({
      or_ids: {
        ids: [
          { and_ids: { ids: [claim('iss', { exact: 'issuer-a' }), claim('sub', { safe_regex: { regex: '.+' } })] } },
          { and_ids: { ids: [claim('iss', { safe_regex: { regex: '.+' } }), claim('sub', { exact: 'alice' })] } },
        ],
      },
    });
    // nested claim [realm][role] as a NOT of string-or-list matches
    expect(JSON.stringify(ids)).toContain('{"key":"payload"},{"key":"realm"},{"key":"role"}');
    expect(JSON.stringify(ids)).toContain('{"key":"azp"}');
  });
  it('AUDIT is an RBAC filter with action LOG', () => {
    expect(rules(1).action).toBe('LOG');
  });
  it('CUSTOM marks matching requests with shadow rules; ext_authz runs only for them', () => {
    const shadow = config(filters[2]!);
    expect(shadow.shadow_rules_stat_prefix).toBe('istio_ext_authz_');
    expect(Object.keys((shadow.shadow_rules as Msg).policies as Msg)).toEqual(['istio-ext-authz-ns[foo]-policy[ext-authz]-rule[0]']);
    const ext = config(filters[3]!);
    expect(ext.filter_enabled_metadata).toEqual({
      filter: 'envoy.filters.http.rbac',
      path: [{ key: 'istio_ext_authz_shadow_effective_policy_id' }],
      value: { string_match: { prefix: 'istio-ext-authz-' } },
    });
    expect(ext.http_service).toMatchObject({ server_uri: { cluster: 'outbound|8000||ext-authz.foo.svc.cluster.local', timeout: { seconds: 2 } }, path_prefix: '/check' });
    expect(ext.status_on_error).toEqual({ code: 'ServiceUnavailable' });
    expect(sidecar.clusters.some((c) => c.name === 'outbound|8000||ext-authz.foo.svc.cluster.local')).toBe(true);
  });
  it('a gRPC provider on the router, with the provider cluster added to the router', () => {
    const ext = config(routerFilters().find((f) => f.name === 'envoy.filters.http.ext_authz')!);
    expect(ext.grpc_service).toMatchObject({ envoy_grpc: { cluster_name: 'outbound|9000||ext-authz.foo.svc.cluster.local' } });
    expect(router.clusters.some((c) => c.name === 'outbound|9000||ext-authz.foo.svc.cluster.local')).toBe(true);
  });
  it('router TLS passthrough chains get network RBAC too (an ALLOW of HTTP-only rules denies every connection)', () => {
    const l = router.listeners.find((x) => x.name === '0.0.0.0_8443')!.resource;
    const filters = ((l.filter_chains as Msg[])[0]!.filters as Msg[]).map((f) => ({ name: f.name, rules: config(f).rules as Msg | undefined }));
    expect(filters.map((f) => f.name)).toEqual(['envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.tcp_proxy']);
    expect(filters[1]!.rules).toEqual({ action: 'ALLOW' });
  });
  it('targetRefs apply only to what they name: the ServiceEntry `other` policy is not on httpbin', () => {
    expect(JSON.stringify(sidecar.listeners)).not.toContain('other-only');
  });

  describe('TCP port (network RBAC) with the fail-closed rule', () => {
    const tcp = (chain(sidecar, 'inbound_9000_mtls').filters as Msg[]).map((f) => ({ name: f.name, c: config(f) }));
    it('network RBAC DENY and ALLOW before tcp_proxy; no jwt_authn, no HTTP RBAC', () => {
      expect(tcp.map((f) => f.name)).toEqual([...Array<string>(4).fill('envoy.filters.network.rbac'), 'envoy.filters.network.tcp_proxy']);
      // AUDIT, CUSTOM (closed: DENY), DENY, ALLOW
      expect(tcp.map((f) => (f.c.rules as Msg | undefined)?.action)).toEqual(['LOG', 'DENY', 'DENY', 'ALLOW', undefined]);
    });
    const policies = (i: number) => (tcp[i]!.c.rules as Msg).policies as Record<string, Msg>;
    it('an ALLOW rule with an HTTP-only field is dropped; one without is kept', () => {
      expect(Object.keys(policies(3))).toEqual(['ns[foo]-policy[require-jwt]-rule[1]', 'ns[foo]-policy[require-jwt]-rule[3]']);
      expect(sidecar.problems).toContain('AuthorizationPolicy/foo/require-jwt rule 0: requestPrincipals needs HTTP; on TCP port 9000 the ALLOW rule matches nothing');
      expect(sidecar.problems).toContain('AuthorizationPolicy/foo/require-jwt rule 2: methods needs HTTP; on TCP port 9000 the ALLOW rule matches nothing');
    });
    it('trustDomains / notTrustDomains match the peer SPIFFE ID by trust domain (works on TCP: mTLS identity)', () => {
      const peer = (regex: string) => ({ authenticated: { principal_name: { safe_regex: { regex } } } });
      expect(policies(3)['ns[foo]-policy[require-jwt]-rule[3]']!.principals).toEqual([
        {
          and_ids: {
            ids: [
              { or_ids: { ids: [peer('spiffe://cluster\\.local/.*'), peer('spiffe://[^/]*\\.corp\\.example/.*')] } },
              { not_id: peer('spiffe://legacy\\.corp\\.example/.*') },
            ],
          },
        },
      ]);
    });
    it('a DENY rule loses its HTTP-only fields and denies more', () => {
      expect(policies(2)['ns[foo]-policy[deny-admin]-rule[0]']).toEqual({ permissions: [{ any: true }], principals: [{ any: true }] });
      expect(policies(2)['ns[foo]-policy[deny-admin]-rule[1]']).toEqual({
        permissions: [{ destination_port: 9000 }],
        principals: [{ direct_remote_ip: { address_prefix: '10.9.0.0', prefix_len: { value: 16 } } }],
      });
    });
    it('CUSTOM is HTTP-only: on TCP its rules deny (closed), HTTP-only fields left out', () => {
      expect(policies(1)).toEqual({ 'ns[foo]-policy[ext-authz]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] } });
      expect(sidecar.problems.some((p) => p.includes('CUSTOM (ext_authz) is enforced on HTTP only'))).toBe(true);
    });
  });
});

describe('JWKS fetched by pilot reach the translation through the model', () => {
  it('SnapshotBuilder.setJwks: first fail closed, then the fetched key set, as a config change', () => {
    const b = new SnapshotBuilder({ trustDomain: 'cluster.local' });
    const ra = { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'r', namespace: 'foo' }, spec: { jwtRules: [{ issuer: 'i', jwksUri: 'https://i.example/jwks', timeout: '2s' }] } };
    b.apply({ op: 'created', ref: { kind: ra.kind, namespace: 'foo', name: 'r' }, object: ra });
    const first = b.build().snapshot;
    expect(first.requestAuthentications.jwksUris()).toEqual(new Map([['https://i.example/jwks', 2_000]]));
    const p = proxies['sidecar-httpbin']!;
    const providerOf = (s: typeof first) => {
      const f = httpFilters(chain(translate(p, s), 'inbound_8000_mtls'))[0]!;
      return ((config(f).providers as Record<string, Msg>)['origins-0']!.local_jwks as Msg).inline_string;
    };
    // httpbin's workload needs its service for an inbound chain: add the fixture's registry.
    for (const o of loadObjects().filter((x) => x.kind === 'ServiceEntry' || x.kind === 'WorkloadEntry')) {
      b.apply({ op: 'created', ref: { kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name }, object: o });
    }
    const before = b.build().snapshot;
    expect(providerOf(before)).toBe(FAIL_CLOSED_JWKS);
    const fetched = '{"keys":[{"kty":"EC","kid":"k-fetched","crv":"P-256","x":"a","y":"b"}]}';
    expect(b.setJwks(new Map([['https://i.example/jwks', { jwks: fetched }]]))).toBe(true);
    expect(b.setJwks(new Map([['https://i.example/jwks', { jwks: fetched }]]))).toBe(false);
    const delta = b.build();
    expect(delta.configChanged).toBe(true);
    expect(providerOf(delta.snapshot)).toBe(fetched);
  });
});

describe('an attribute the translator does not know (validation refuses it) still fails closed', () => {
  const objects = [
    ...loadObjects().filter((o) => o.kind === 'ServiceEntry' || o.kind === 'WorkloadEntry'),
    { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a', namespace: 'foo' }, spec: { rules: [{ when: [{ key: 'experimental.envoy.filters.x[y]', values: ['z'] }] }] } },
    { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'd', namespace: 'foo' }, spec: { action: 'DENY', rules: [{ when: [{ key: 'experimental.envoy.filters.x[y]', values: ['z'] }] }] } },
  ];
  const r = translate(proxies['sidecar-httpbin']!, authzMesh(objects));
  const filters = httpFilters(chain(r, 'inbound_8000_mtls'));
  it('ALLOW: the rule is dropped (allows nothing); DENY: the condition is left out (denies everything)', () => {
    expect(config(filters.find((f) => f.name === 'envoy.filters.http.rbac')!).rules).toEqual({ action: 'ALLOW' });
    expect(config(filters.find((f) => f.name === 'envoy.filters.http.rbac.DENY')!).rules).toEqual({
      action: 'DENY',
      policies: { 'ns[foo]-policy[d]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] } },
    });
    expect(r.problems).toContain('AuthorizationPolicy/foo/a rule 0: experimental.envoy.filters.x[y] is not supported; on inbound port 8000 the ALLOW rule matches nothing');
  });
});
