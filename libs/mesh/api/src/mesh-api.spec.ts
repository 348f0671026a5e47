import { Compile } from 'typebox/compile';
import { describe, expect, it } from 'vitest';
import { isDuration, parseDuration } from './duration';
import { isMeshKind, kindFor, kinds, resourceKey, type MeshResource } from './kinds';
import { type VirtualService } from './networking/virtual-service';

describe('parseDuration', () => {
  it.each([
    ['1.5s', 1500],
    ['100ms', 100],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['0s', 0],
    ['0', 0],
    ['.5s', 500],
    ['250us', 0.25],
    ['1h1m1s1ms', 3_661_001],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(isDuration(text)).toBe(true);
  });

  it.each(['', '5', '-1s', '1.5', 's', '1d', '1 s', '1s ', '10 seconds', 'x'.repeat(100)])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
    expect(isDuration(text)).toBe(false);
  });

  it('isDuration rejects non-strings', () => {
    expect(isDuration(5)).toBe(false);
  });
});

describe('kinds registry', () => {
  it('lists the Istio kinds, RateLimitPolicy, Canary and the Gateway API kinds with groups and versions', () => {
    expect(Object.fromEntries(Object.values(kinds).map((k) => [k.kind, `${k.group} ${k.versions.join(',')} ${k.plural}`]))).toEqual({
      VirtualService: 'networking.istio.io v1,v1beta1,v1alpha3 virtualservices',
      DestinationRule: 'networking.istio.io v1,v1beta1,v1alpha3 destinationrules',
      Gateway: 'networking.istio.io v1,v1beta1,v1alpha3 gateways',
      ServiceEntry: 'networking.istio.io v1,v1beta1,v1alpha3 serviceentries',
      WorkloadEntry: 'networking.istio.io v1,v1beta1,v1alpha3 workloadentries',
      Sidecar: 'networking.istio.io v1,v1beta1,v1alpha3 sidecars',
      PeerAuthentication: 'security.istio.io v1,v1beta1 peerauthentications',
      AuthorizationPolicy: 'security.istio.io v1,v1beta1 authorizationpolicies',
      RequestAuthentication: 'security.istio.io v1,v1beta1 requestauthentications',
      RateLimitPolicy: 'networking.aviary.dev v1alpha1 ratelimitpolicies',
      Canary: 'networking.aviary.dev v1alpha1 canaries',
      GatewayClass: 'gateway.networking.k8s.io v1,v1beta1 gatewayclasses',
      KubernetesGateway: 'gateway.networking.k8s.io v1,v1beta1 gateways',
      HTTPRoute: 'gateway.networking.k8s.io v1,v1beta1 httproutes',
      GRPCRoute: 'gateway.networking.k8s.io v1 grpcroutes',
      TCPRoute: 'gateway.networking.k8s.io v1,v1alpha2 tcproutes',
      TLSRoute: 'gateway.networking.k8s.io v1,v1alpha2,v1alpha3 tlsroutes',
      ReferenceGrant: 'gateway.networking.k8s.io v1beta1,v1 referencegrants',
    });
    expect(kinds.GatewayClass.namespaced).toBe(false);
    expect(kinds.KubernetesGateway.apiKind).toBe('Gateway');
    expect(kinds.VirtualService.shortNames).toEqual(['vs']);
    expect(kinds.VirtualService.namespaced).toBe(true);
  });

  it('kindFor matches group and version', () => {
    expect(kindFor('networking.istio.io/v1alpha3', 'Gateway')?.kind).toBe('Gateway');
    expect(kindFor('gateway.networking.k8s.io/v1', 'Gateway')?.kind).toBe('KubernetesGateway');
    expect(kindFor('gateway.networking.k8s.io/v1', 'KubernetesGateway')).toBeUndefined();
    expect(kindFor('gateway.networking.k8s.io/v1alpha2', 'ReferenceGrant')).toBeUndefined();
    expect(kindFor('gateway.networking.k8s.io/v1beta1', 'ReferenceGrant')?.kind).toBe('ReferenceGrant');
    expect(kindFor('security.istio.io/v1alpha3', 'PeerAuthentication')).toBeUndefined();
    expect(kindFor('networking.istio.io/v1', 'PeerAuthentication')).toBeUndefined();
    expect(kindFor('networking.istio.io/v1', 'toString')).toBeUndefined();
    expect(isMeshKind('constructor')).toBe(false);
  });

  it('resourceKey is Kind/namespace/name with the default namespace', () => {
    const vs: VirtualService = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'] } };
    const r: MeshResource = vs;
    expect(resourceKey(r)).toBe('VirtualService/default/reviews');
    expect(resourceKey({ ...vs, metadata: { name: 'reviews', namespace: 'bookinfo' } })).toBe('VirtualService/bookinfo/reviews');
  });
});

describe('schemas', () => {
  const check = Compile(kinds.VirtualService.schema);
  const base = { apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'a', resourceVersion: '7', generation: 2, uid: 'u', creationTimestamp: '2024-01-01T00:00:00Z' }, spec: { hosts: ['a'] } };

  it('accept full metadata and every served apiVersion', () => {
    for (const v of ['v1', 'v1beta1', 'v1alpha3']) expect(check.Check({ ...base, apiVersion: `networking.istio.io/${v}` })).toBe(true);
  });

  it('reject unknown fields in spec, nested objects and metadata', () => {
    expect(check.Check({ ...base, spec: { hosts: ['a'], extra: true } })).toBe(false);
    expect(check.Check({ ...base, spec: { http: [{ route: [{ destination: { host: 'a', extra: 1 } }] }] } })).toBe(false);
    expect(check.Check({ ...base, metadata: { name: 'a', nickname: 'b' } })).toBe(false);
  });

  it('every spec object is closed', () => {
    const open: string[] = [];
    const walk = (s: Record<string, unknown>, path: string) => {
      if (s['type'] === 'object' && s['properties'] !== undefined && s['additionalProperties'] !== false) open.push(path);
      for (const [k, v] of Object.entries((s['properties'] as Record<string, Record<string, unknown>>) ?? {})) walk(v, `${path}.${k}`);
      if (s['items'] !== undefined) walk(s['items'] as Record<string, unknown>, `${path}[]`);
      for (const v of Object.values((s['patternProperties'] as Record<string, Record<string, unknown>>) ?? {})) walk(v, `${path}{}`);
    };
    for (const k of Object.values(kinds)) walk((k.schema as { properties: { spec: Record<string, unknown> } }).properties.spec, `${k.kind}.spec`);
    expect(open).toEqual([]);
  });
});
