import { describe, expect, it } from 'vitest';
import { buildSnapshot, isIpLiteral, parseLocality, portProtocol, type ModelObject } from './index';

function obj(kind: string, name: string, spec: unknown, namespace = 'default'): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}

const se = obj('ServiceEntry', 'reviews', {
  hosts: ['reviews.default.svc.cluster.local'],
  location: 'MESH_INTERNAL',
  resolution: 'STATIC',
  ports: [
    { number: 9080, name: 'http', protocol: 'HTTP' },
    { number: 9090, name: 'grpc-admin', targetPort: 19090 },
  ],
  workloadSelector: { labels: { app: 'reviews' } },
  endpoints: [{ address: '10.0.0.9', labels: { app: 'reviews', version: 'inline' } }],
});
const we = (name: string, spec: Record<string, unknown>, namespace = 'default') => obj('WorkloadEntry', name, spec, namespace);
const objects: ModelObject[] = [
  se,
  we('reviews-v1', { address: '10.0.0.1', ports: { http: 19081 }, labels: { app: 'reviews', version: 'v1', 'security.istio.io/tlsMode': 'istio' }, serviceAccount: 'reviews', locality: 'eu/eu-1a/rack1', weight: 3 }),
  we('reviews-v2', { address: 'fd00::2', labels: { app: 'reviews', version: 'v2' } }),
  we('reviews-dns', { address: 'reviews.example.com', labels: { app: 'reviews' } }),
  we('reviews-other-ns', { address: '10.9.9.9', labels: { app: 'reviews' } }, 'other'),
  we('ratings-v1', { address: '10.0.0.5', labels: { app: 'ratings' } }),
];

describe('buildSnapshot: services and endpoints', () => {
  const snap = buildSnapshot(objects, { trustDomain: 'example.org' });

  it('indexes services from ServiceEntry hosts with ports, namespace, resolution and location', () => {
    const s = snap.services.get('reviews.default.svc.cluster.local')!;
    expect(s).toMatchObject({ namespace: 'default', resolution: 'STATIC', location: 'MESH_INTERNAL', exportTo: ['*'], source: 'ServiceEntry/default/reviews' });
    expect(s.ports).toEqual([
      { number: 9080, name: 'http', protocol: 'HTTP' },
      { number: 9090, name: 'grpc-admin', protocol: 'GRPC', targetPort: 19090 },
    ]);
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('selects WorkloadEntries in the same namespace and resolves ports by name, then targetPort, then the port', () => {
    const http = snap.endpoints.forServicePort('reviews.default.svc.cluster.local', 9080);
    expect(http.map((e) => `${e.address}:${e.port}`)).toEqual(['10.0.0.1:19081', '10.0.0.9:9080', 'fd00::2:9080']);
    const admin = snap.endpoints.forServicePort('reviews.default.svc.cluster.local', 9090);
    expect(admin.map((e) => e.port)).toEqual([19090, 19090, 19090]);
  });

  it('carries labels, locality, weight, SPIFFE identity and tls mode', () => {
    const e = snap.endpoints.forServicePort('reviews.default.svc.cluster.local', 9080)[0]!;
    expect(e).toMatchObject({
      locality: { region: 'eu', zone: 'eu-1a', subzone: 'rack1' },
      weight: 3,
      serviceAccount: 'reviews',
      identity: 'spiffe://example.org/ns/default/sa/reviews',
      tlsMode: 'istio',
      source: 'WorkloadEntry/default/reviews-v1',
    });
    const v2 = snap.endpoints.forServicePort('reviews.default.svc.cluster.local', 9080)[2]!;
    expect(v2).toMatchObject({ weight: 1, tlsMode: 'disabled', locality: { region: '', zone: '', subzone: '' } });
    expect(v2.identity).toBeUndefined();
  });

  it('leaves out hostname addresses and records a problem', () => {
    expect(snap.problems).toEqual([
      expect.objectContaining({ code: 'ENDPOINT_ADDRESS_NOT_IP', resource: 'WorkloadEntry/default/reviews-dns' }),
    ]);
  });

  it('records duplicate hosts and malformed specs instead of throwing', () => {
    const s = buildSnapshot([se, obj('ServiceEntry', 'dup', { hosts: ['reviews.default.svc.cluster.local'] }), obj('ServiceEntry', 'bad', { hosts: 'x' }), obj('Unknown', 'x', {})], { trustDomain: 't' });
    expect(s.problems.map((p) => `${p.code} ${p.resource}`)).toEqual([
      'INVALID_SPEC ServiceEntry/default/bad',
      'DUPLICATE_SERVICE_HOST ServiceEntry/default/reviews',
      'UNSUPPORTED_KIND Unknown/default/x',
    ]);
    expect(s.services.get('reviews.default.svc.cluster.local')!.source).toBe('ServiceEntry/default/dup');
  });

  it('does not depend on input order', () => {
    const reversed = buildSnapshot([...objects].reverse(), { trustDomain: 'example.org' });
    expect(JSON.stringify(reversed.endpoints.forService('reviews.default.svc.cluster.local').get(9080))).toBe(
      JSON.stringify(snap.endpoints.forService('reviews.default.svc.cluster.local').get(9080)),
    );
    expect(reversed.problems).toEqual(snap.problems);
  });
});

describe('buildSnapshot: config indexes', () => {
  const config: ModelObject[] = [
    se,
    obj('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] }),
    obj('VirtualService', 'gw-routes', { hosts: ['bookinfo.example.com'], gateways: ['bookinfo-gateway', 'istio-system/shared', 'mesh'], http: [] }),
    obj('VirtualService', 'wild', { hosts: ['*.example.com'] }, 'other'),
    obj('DestinationRule', 'root', { host: 'reviews.default.svc.cluster.local' }, 'istio-system'),
    obj('DestinationRule', 'svc-ns', { host: 'reviews' }),
    obj('DestinationRule', 'client-ns', { host: '*.svc.cluster.local' }, 'client'),
    obj('DestinationRule', 'private', { host: 'reviews.default.svc.cluster.local', exportTo: ['.'] }, 'other'),
    obj('PeerAuthentication', 'mesh', { mtls: { mode: 'STRICT' } }, 'istio-system'),
    obj('PeerAuthentication', 'ns', { mtls: { mode: 'UNSET' } }, 'legacy'),
    obj('PeerAuthentication', 'wl', { selector: { matchLabels: { app: 'old' } }, mtls: { mode: 'DISABLE' }, portLevelMtls: { '8080': { mode: 'PERMISSIVE' } } }, 'legacy'),
    obj('PeerAuthentication', 'perm', { mtls: { mode: 'PERMISSIVE' } }, 'dev'),
    obj('AuthorizationPolicy', 'deny-all-ext', { action: 'DENY', rules: [{}] }, 'istio-system'),
    obj('AuthorizationPolicy', 'allow-reviews', { selector: { matchLabels: { app: 'reviews' } }, rules: [{}] }),
    obj('AuthorizationPolicy', 'audit', { action: 'AUDIT', rules: [{}] }),
    obj('Sidecar', 'default', { egress: [{ hosts: ['./*'] }] }),
    obj('Sidecar', 'ratings', { workloadSelector: { labels: { app: 'ratings' } }, egress: [{ hosts: ['*/*'] }] }),
    obj('Sidecar', 'root', { egress: [{ hosts: ['istio-system/*'] }] }, 'istio-system'),
    obj('Gateway', 'bookinfo-gateway', { selector: { istio: 'ingressgateway' }, servers: [] }),
    obj('Gateway', 'no-selector', { servers: [] }),
    obj('RateLimitPolicy', 'rl', { workloadSelector: { labels: { app: 'reviews' } }, targetRefs: [{ kind: 'Gateway', name: 'bookinfo-gateway' }], rules: [] }),
  ];
  const snap = buildSnapshot(config, { trustDomain: 'cluster.local' });

  it('VirtualServices by host (short names expanded) and by gateway (namespace defaulted)', () => {
    expect(snap.virtualServices.forHost('reviews.default.svc.cluster.local', 'default')?.entry.name).toBe('reviews');
    expect(snap.virtualServices.forHost('a.example.com', 'default')?.entry.name).toBe('wild');
    expect(snap.virtualServices.forHost('bookinfo.example.com', 'default')?.entry.name).toBe('gw-routes');
    expect(snap.virtualServices.forGateway('default/bookinfo-gateway').map((v) => v.entry.name)).toEqual(['gw-routes']);
    expect(snap.virtualServices.forGateway('istio-system/shared').map((v) => v.entry.name)).toEqual(['gw-routes']);
  });

  it('DestinationRule precedence: client namespace, then service namespace, then root; exportTo respected', () => {
    const host = 'reviews.default.svc.cluster.local';
    expect(snap.destinationRules.forHost(host, 'client', 'default')?.name).toBe('client-ns');
    expect(snap.destinationRules.forHost(host, 'default', 'default')?.name).toBe('svc-ns');
    expect(snap.destinationRules.forHost(host, 'other', 'default')?.name).toBe('private');
    expect(snap.destinationRules.forHost(host, 'elsewhere', 'nowhere')?.name).toBe('root');
  });

  it('PeerAuthentication: workload > namespace > mesh, UNSET inherits, port-level on selecting policies', () => {
    const pa = snap.peerAuthentications;
    expect(pa.modeFor('default', {})).toBe('STRICT');
    expect(pa.modeFor('dev', {})).toBe('PERMISSIVE');
    expect(pa.modeFor('legacy', {})).toBe('STRICT');
    expect(pa.modeFor('legacy', { app: 'old' })).toBe('DISABLE');
    expect(pa.modeFor('legacy', { app: 'old' }, 8080)).toBe('PERMISSIVE');
    expect(buildSnapshot([], { trustDomain: 't' }).peerAuthentications.modeFor('x', {})).toBe('PERMISSIVE');
    const custom = buildSnapshot([obj('PeerAuthentication', 'm', { mtls: { mode: 'STRICT' } }, 'mesh-root')], { trustDomain: 't', rootNamespace: 'mesh-root' });
    expect(custom.peerAuthentications.modeFor('any', {})).toBe('STRICT');
  });

  it('AuthorizationPolicies: root namespace mesh-wide, selector-matched in the namespace, by action', () => {
    const p = snap.authorizationPolicies.forWorkload('default', { app: 'reviews' });
    expect(p.deny.map((x) => x.name)).toEqual(['deny-all-ext']);
    expect(p.allow.map((x) => x.name)).toEqual(['allow-reviews']);
    expect(p.audit.map((x) => x.name)).toEqual(['audit']);
    expect(snap.authorizationPolicies.forWorkload('default', { app: 'ratings' }).allow).toEqual([]);
  });

  it('Sidecars: selecting, then namespace default, then root default', () => {
    expect(snap.sidecars.forWorkload('default', { app: 'ratings' })?.name).toBe('ratings');
    expect(snap.sidecars.forWorkload('default', { app: 'reviews' })?.name).toBe('default');
    expect(snap.sidecars.forWorkload('other', {})?.name).toBe('root');
  });

  it('Gateways by selector; RateLimitPolicies by workload and target', () => {
    expect(snap.gateways.forProxy({ istio: 'ingressgateway', extra: 'x' }).map((g) => g.name)).toEqual(['bookinfo-gateway']);
    expect(snap.gateways.forProxy({})).toEqual([]);
    expect(snap.rateLimitPolicies.forWorkload('default', { app: 'reviews' }).map((p) => p.name)).toEqual(['rl']);
    expect(snap.rateLimitPolicies.forTarget('Gateway', 'default', 'bookinfo-gateway').map((p) => p.name)).toEqual(['rl']);
  });
});

describe('helpers', () => {
  it('isIpLiteral accepts IPv4/IPv6 only', () => {
    expect(['10.0.0.1', '::1', 'fd00::2', '2001:db8::1'].every(isIpLiteral)).toBe(true);
    expect(['localhost', '10.0.0.256', 'unix:///tmp/s', '', 'a::g', '10.0.0'].some(isIpLiteral)).toBe(false);
  });

  it('parseLocality and portProtocol', () => {
    expect(parseLocality('r/z')).toEqual({ region: 'r', zone: 'z', subzone: '' });
    expect(portProtocol(undefined, 'http-web')).toBe('HTTP');
    expect(portProtocol(undefined, 'grpc-web')).toBe('GRPC-WEB');
    expect(portProtocol('http2', 'x')).toBe('HTTP2');
    expect(portProtocol(undefined, 'metrics')).toBe('TCP');
  });
});

describe('security policy scoping (targetRefs)', () => {
  const o = (kind: string, ns: string, name: string, spec: unknown): ModelObject => ({ apiVersion: 'security.istio.io/v1', kind, metadata: { name, namespace: ns }, spec });
  const s = buildSnapshot(
    [
      o('AuthorizationPolicy', 'foo', 'ns-wide', { rules: [{}] }),
      o('AuthorizationPolicy', 'foo', 'selected', { selector: { matchLabels: { app: 'a' } }, action: 'DENY', rules: [{}] }),
      o('AuthorizationPolicy', 'foo', 'to-gateway', { targetRefs: [{ kind: 'Gateway', name: 'gw' }], action: 'AUDIT', rules: [{}] }),
      o('AuthorizationPolicy', 'istio-system', 'mesh-wide', { action: 'DENY', rules: [{}] }),
      o('RequestAuthentication', 'foo', 'to-svc', { targetRef: { kind: 'Service', name: 'web' }, jwtRules: [{ issuer: 'i', jwks: '{"keys":[]}' }] }),
    ],
    { trustDomain: 'cluster.local' },
  );
  const keys = (p: { allow: readonly { key: string }[]; deny: readonly { key: string }[]; audit: readonly { key: string }[] }) => [...p.allow, ...p.deny, ...p.audit].map((x) => x.key).sort();
  it('a policy with targetRefs applies only to what it names, never to the whole namespace', () => {
    expect(keys(s.authorizationPolicies.forWorkload('foo', { app: 'b' }))).toEqual(['AuthorizationPolicy/foo/ns-wide', 'AuthorizationPolicy/istio-system/mesh-wide']);
    expect(keys(s.authorizationPolicies.forWorkload('foo', { app: 'a' }, [{ kind: 'Gateway', namespace: 'foo', name: 'gw' }]))).toEqual([
      'AuthorizationPolicy/foo/ns-wide',
      'AuthorizationPolicy/foo/selected',
      'AuthorizationPolicy/foo/to-gateway',
      'AuthorizationPolicy/istio-system/mesh-wide',
    ]);
    expect(keys(s.authorizationPolicies.forWorkload('bar', {}, [{ kind: 'Gateway', namespace: 'bar', name: 'gw' }]))).toEqual(['AuthorizationPolicy/istio-system/mesh-wide']);
  });
  it('key sources pilot must fetch: jwksUri, else the issuer\'s OpenID Connect discovery document; never inline jwks', () => {
    const ra = buildSnapshot(
      [
        o('RequestAuthentication', 'foo', 'r', {
          jwtRules: [{ issuer: 'https://a.example/', timeout: '3s' }, { issuer: 'b', jwksUri: 'https://b.example/keys' }, { issuer: 'c', jwks: '{"keys":[]}' }],
        }),
      ],
      { trustDomain: 'cluster.local' },
    ).requestAuthentications;
    expect(ra.jwksUris()).toEqual(new Map([['https://a.example/.well-known/openid-configuration', 3_000], ['https://b.example/keys', undefined]]));
  });
  it('RequestAuthentication is in the model, scoped the same way', () => {
    expect(s.requestAuthentications.forWorkload('foo', { app: 'web' }).map((r) => r.key)).toEqual([]);
    expect(s.requestAuthentications.forWorkload('foo', {}, [{ kind: 'Service', namespace: 'foo', name: 'web' }]).map((r) => r.key)).toEqual(['RequestAuthentication/foo/to-svc']);
  });
});
