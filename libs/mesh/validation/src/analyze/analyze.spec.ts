import type { StoredObject } from '@aviary/mesh-api';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadFixtures } from '../fixtures/load';
import { validate } from '../validate';
import { analyze } from './analyze';

function docs(text: string): StoredObject[] {
  const list = parseAllDocuments(text).map((d) => d.toJS() as StoredObject);
  for (const r of list) expect(validate(r).errors, r.metadata.name).toEqual([]);
  return list;
}

const bookinfo = loadFixtures('valid')
  .filter((f) => f.file === 'bookinfo-virtual-services.yaml' || f.file === 'bookinfo-destination-rules.yaml')
  .map((f) => f.doc as StoredObject);

const reviewsDr = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: bookinfo }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
const vsTo = (name: string, subset: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: bookinfo }
spec:
  hosts: [reviews]
${extra}
  http:
  - route:
    - destination: { host: reviews, subset: ${subset} }
`;

describe('analyze', () => {
  it('finds nothing wrong in Bookinfo (all-v1 + destination-rule-all)', () => {
    expect(analyze(bookinfo)).toEqual([]);
  });

  it('IST0101: a route to a subset that no DestinationRule defines', () => {
    const findings = analyze(docs(`${reviewsDr}---${vsTo('reviews', 'v3')}`));
    expect(findings).toEqual([
      {
        code: 'IST0101',
        severity: 'Error',
        message: 'Referenced host+subset in destinationrule not found: "reviews+v3"',
        resources: ['VirtualService/bookinfo/reviews'],
        path: 'spec.http[0].route[0].destination.subset',
      },
    ]);
  });

  it('IST0174 / IST0101: a DestinationRule (and a route) for a host nobody provides, when knownHosts is given', () => {
    const resources = docs(`${reviewsDr}---${vsTo('reviews', 'v1')}`);
    expect(analyze(resources, { knownHosts: ['reviews.bookinfo.svc.cluster.local'] })).toEqual([]);
    const findings = analyze(resources, { knownHosts: ['ratings.bookinfo.svc.cluster.local'] });
    expect(findings.map((f) => [f.code, f.resources[0], f.path, f.message])).toEqual([
      ['IST0101', 'VirtualService/bookinfo/reviews', 'spec.http[0].route[0].destination.host', 'Referenced host not found: "reviews"'],
      ['IST0174', 'DestinationRule/bookinfo/reviews', 'spec.host', 'The host reviews defined in the DestinationRule does not match any services in the mesh.'],
    ]);
  });

  it('IST0101: hosts provided by a ServiceEntry count as known', () => {
    const resources = docs(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: bookinfo }
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  resolution: STATIC
  workloadSelector: { labels: { app: reviews } }
---${reviewsDr}`);
    expect(analyze(resources, { knownHosts: [] })).toEqual([]);
  });

  it('IST0101: a delegating route whose delegate is missing, has hosts, or is not exported to the root', () => {
    const root = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: root, namespace: bookinfo }
spec:
  hosts: [reviews]
  http:
  - { match: [{ uri: { prefix: /a } }], delegate: { name: missing } }
  - { match: [{ uri: { prefix: /b } }], delegate: { name: hosted } }
  - { match: [{ uri: { prefix: /c } }], delegate: { name: private, namespace: team } }
  - { match: [{ uri: { prefix: /d } }], delegate: { name: shared, namespace: team } }
`;
    const delegate = (name: string, namespace: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${extra}
  http:
  - route:
    - destination: { host: reviews.bookinfo.svc.cluster.local }
`;
    const findings = analyze(docs([root, delegate('hosted', 'bookinfo', '  hosts: [ratings]'), delegate('private', 'team', '  exportTo: [.]'), delegate('shared', 'team', '  exportTo: [bookinfo]')].join('---')));
    expect(findings.map((f) => [f.code, f.path, f.message])).toEqual([
      ['IST0101', 'spec.http[0].delegate', 'Referenced delegate virtual service not found: "bookinfo/missing"'],
      ['IST0101', 'spec.http[1].delegate', 'Referenced delegate virtual service "bookinfo/hosted" has hosts, so it is not a delegate'],
      ['IST0101', 'spec.http[2].delegate', 'Referenced delegate virtual service "team/private" is not exported to namespace "bookinfo"'],
    ]);
  });

  it('IST0101: a VirtualService bound to a missing Gateway', () => {
    const findings = analyze(docs(vsTo('reviews', 'v1', '  gateways: [bookinfo-gateway, mesh]')));
    expect(findings.filter((f) => f.code === 'IST0101' && f.path === 'spec.gateways[0]')).toEqual([
      { code: 'IST0101', severity: 'Error', message: 'Referenced gateway not found: "bookinfo-gateway"', resources: ['VirtualService/bookinfo/reviews'], path: 'spec.gateways[0]' },
    ]);
  });

  const gateway = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bookinfo-gateway, namespace: bookinfo }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["bookinfo.example.com"]
`;
  const edgeVs = (name: string, host: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: bookinfo }
spec:
  hosts: ["${host}"]
  gateways: [bookinfo-gateway]
  http:
  - route:
    - destination: { host: productpage, port: { number: 9080 } }
`;

  it('IST0109: not for VirtualServices on one ingress gateway (their routes for a host are merged)', () => {
    expect(analyze(docs(`${gateway}---${edgeVs('a', 'bookinfo.example.com')}---${edgeVs('b', 'bookinfo.example.com')}`))).toEqual([]);
  });

  it('IST0109: two mesh VirtualServices for one host (short names resolve to the same FQDN), once per VirtualService', () => {
    const message =
      'The VirtualServices bookinfo/reviews-a,bookinfo/reviews-b associated with mesh gateway define the same host */reviews.bookinfo.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.';
    expect(analyze(docs(`${reviewsDr}---${vsTo('reviews-a', 'v1')}---${vsTo('reviews-b', 'v2')}`))).toEqual([
      { code: 'IST0109', severity: 'Error', message, resources: ['VirtualService/bookinfo/reviews-a', 'VirtualService/bookinfo/reviews-b'], path: 'spec.hosts' },
      { code: 'IST0109', severity: 'Error', message, resources: ['VirtualService/bookinfo/reviews-b', 'VirtualService/bookinfo/reviews-a'], path: 'spec.hosts' },
    ]);
  });

  it('IST0109: per exportTo audience; one exported everywhere conflicts with every audience', () => {
    const scoped = (name: string, exportTo: string) => vsTo(name, 'v1', `  exportTo: ${exportTo}`);
    // Two audiences that never meet: no conflict.
    expect(analyze(docs(`${reviewsDr}---${scoped('a', '[.]')}---${scoped('b', '[shop]')}`))).toEqual([]);
    // Exported to bookinfo twice (`.` is bookinfo), and everywhere: all three conflict.
    const findings = analyze(docs(`${reviewsDr}---${scoped('a', '[.]')}---${scoped('b', '[bookinfo]')}---${vsTo('c', 'v2')}`));
    expect(findings.map((f) => [f.resources[0], f.message.split(' define the same host ')[1]!.split(' ')[0]])).toEqual([
      ['VirtualService/bookinfo/a', 'bookinfo/reviews.bookinfo.svc.cluster.local'],
      ['VirtualService/bookinfo/b', 'bookinfo/reviews.bookinfo.svc.cluster.local'],
      ['VirtualService/bookinfo/c', 'bookinfo/reviews.bookinfo.svc.cluster.local'],
    ]);
  });

  it('IST0132: a VirtualService host the bound Gateway does not serve', () => {
    const findings = analyze(docs(`${gateway}---${edgeVs('a', 'shop.example.com')}`));
    expect(findings.map((f) => [f.code, f.severity, f.message, f.resources])).toEqual([
      ['IST0132', 'Warning', 'one or more host [shop.example.com] defined in VirtualService bookinfo/a not found in Gateway bookinfo/bookinfo-gateway.', ['VirtualService/bookinfo/a', 'Gateway/bookinfo/bookinfo-gateway']],
    ]);
  });

  const strict = (namespace: string) => `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: ${namespace} }
spec:
  mtls: { mode: STRICT }
`;
  const disableDr = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-plain, namespace: bookinfo }
spec:
  host: reviews
  trafficPolicy:
    tls: { mode: DISABLE }
`;

  it('IST0113: STRICT mTLS on a host whose DestinationRule disables TLS (namespace-wide and mesh-wide)', () => {
    for (const ns of ['bookinfo', 'istio-system']) {
      const findings = analyze(docs(`${strict(ns)}---${disableDr}`));
      expect(findings).toEqual([
        {
          code: 'IST0113',
          severity: 'Error',
          message: `A DestinationRule and Policy are in conflict with regards to mTLS for host reviews.bookinfo.svc.cluster.local. The DestinationRule "bookinfo/reviews-plain" specifies that mTLS must be false but the Policy object "${ns}/default" specifies STRICT.`,
          resources: ['DestinationRule/bookinfo/reviews-plain', `PeerAuthentication/${ns}/default`],
          path: 'spec.trafficPolicy.tls.mode',
        },
      ]);
    }
    // a PERMISSIVE namespace policy overrides the mesh-wide STRICT one
    const permissive = strict('bookinfo').replace('STRICT', 'PERMISSIVE');
    expect(analyze(docs(`${strict('istio-system')}---${permissive}---${disableDr}`))).toEqual([]);
  });

  it('IST0128 / IST0129: SIMPLE TLS without a CA to verify the server', () => {
    const findings = analyze(
      docs(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: external, namespace: egress }
spec:
  host: api.example.com
  trafficPolicy:
    tls: { mode: SIMPLE }
    portLevelSettings:
    - port: { number: 8443 }
      tls: { mode: SIMPLE, sni: api.example.com }
`),
    );
    expect(findings.map((f) => [f.code, f.severity, f.path])).toEqual([
      ['IST0128', 'Warning', 'spec.trafficPolicy.tls'],
      ['IST0129', 'Warning', 'spec.trafficPolicy.portLevelSettings[0].tls'],
    ]);
    expect(findings[0]!.message).toBe('DestinationRule egress/external in namespace egress has TLS mode set to SIMPLE but no caCertificates are set to validate server identity for host: api.example.com');
  });

  it('IST0130 / IST0131: rules after a catch-all, and duplicate matches', () => {
    const findings = analyze(
      docs(`${reviewsDr}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: bookinfo }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - match: [{ name: again, headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
  - route: [{ destination: { host: reviews, subset: v2 } }]
`),
    );
    // As istioctl reports the same VirtualService (match names do not make matches differ).
    expect(findings.map((f) => [f.code, f.severity, f.path, f.message])).toEqual([
      ['IST0130', 'Warning', 'spec.http[1]', 'VirtualService rule #1 not used (all matches used by prior rules).'],
      ['IST0130', 'Warning', 'spec.http[3]', 'VirtualService rule #3 not used (only the last rule can have no matches).'],
      ['IST0131', 'Info', 'spec.http[1].match[0]', 'VirtualService rule #1 match "again" is not used (duplicate/overlapping match in rule #0).'],
    ]);
  });

  it('IST0130 / IST0131: rules named by their name; every match after a rule without matches; prefixes an earlier prefix covers', () => {
    const vs = (http: string) =>
      analyze(
        docs(`${reviewsDr}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: bookinfo }
spec:
  hosts: [reviews]
  http:
${http}`),
      ).map((f) => [f.path, f.message]);
    expect(
      vs(`  - route: [{ destination: { host: reviews, subset: v1 } }]
  - name: late
    match: [{ uri: { prefix: /late } }, { uri: { prefix: /later } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
`),
    ).toEqual([
      ['spec.http[1].match[0]', 'VirtualService rule "late" not used (route without matches defined before).'],
      ['spec.http[1].match[1]', 'VirtualService rule "late" not used (route without matches defined before).'],
    ]);
    expect(
      vs(`  - name: all
    match: [{ uri: { prefix: / } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ uri: { prefix: /api } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
`),
    ).toEqual([['spec.http[1].match[0]', 'VirtualService rule #1 match #0 of prefix /api is not used (duplicate/overlapping match in rule #0 of prefix / on "all").']]);
    // A header condition on the later match only: not covered (Istio compares the same keys).
    expect(
      vs(`  - match: [{ uri: { prefix: /api } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ uri: { prefix: /api/v2 }, headers: { x-canary: { exact: "1" } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - match: [{ uri: { prefix: /api/v1 } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
`),
    ).toEqual([['spec.http[2].match[0]', 'VirtualService rule #2 match #0 of prefix /api/v1 is not used (duplicate/overlapping match in rule #0 of prefix /api on #0).']]);
  });

  it('IST0145: gateways with one selector serving one host on one port', () => {
    const other = gateway.replace('name: bookinfo-gateway', 'name: shop-gateway');
    const findings = analyze(docs(`${gateway}---${other}`));
    expect(findings).toEqual([
      {
        code: 'IST0145',
        severity: 'Error',
        message: 'Conflict with gateways bookinfo/shop-gateway (workload selector istio=ingressgateway, port 80, hosts bookinfo.example.com).',
        resources: ['Gateway/bookinfo/bookinfo-gateway', 'Gateway/bookinfo/shop-gateway'],
        path: 'spec.servers',
      },
      {
        code: 'IST0145',
        severity: 'Error',
        message: 'Conflict with gateways bookinfo/bookinfo-gateway (workload selector istio=ingressgateway, port 80, hosts bookinfo.example.com).',
        resources: ['Gateway/bookinfo/shop-gateway', 'Gateway/bookinfo/bookinfo-gateway'],
        path: 'spec.servers',
      },
    ]);
  });

  it('IST0111: two Sidecars without workloadSelector in one namespace', () => {
    const sidecar = (name: string) => `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: ${name}, namespace: prod }
spec:
  egress: [{ hosts: ["./*"] }]
`;
    expect(analyze(docs(`${sidecar('a')}---${sidecar('b')}`))).toEqual([
      {
        code: 'IST0111',
        severity: 'Error',
        message: 'The Sidecars [a b] in namespace "prod" have no workload selector, which can lead to undefined behavior.',
        resources: ['Sidecar/prod/a', 'Sidecar/prod/b'],
      },
      {
        code: 'IST0111',
        severity: 'Error',
        message: 'The Sidecars [a b] in namespace "prod" have no workload selector, which can lead to undefined behavior.',
        resources: ['Sidecar/prod/b', 'Sidecar/prod/a'],
      },
    ]);
  });

  it('AVI0101: a subset defined by two DestinationRules for one host', () => {
    const second = reviewsDr.replace('name: reviews, namespace', 'name: reviews-canary, namespace').replace('- { name: v1, labels: { version: v1 } }\n', '');
    const findings = analyze(docs(`${reviewsDr}---${second}`));
    expect(findings).toEqual([
      {
        code: 'AVI0101',
        severity: 'Error',
        message: 'Subset "v2" for host reviews.bookinfo.svc.cluster.local is defined 2 times (DestinationRule/bookinfo/reviews-canary, DestinationRule/bookinfo/reviews); only one definition takes effect.',
        resources: ['DestinationRule/bookinfo/reviews-canary', 'DestinationRule/bookinfo/reviews'],
        path: 'spec.subsets[0].name',
      },
    ]);
  });

  it('IST0101: a RateLimitPolicy targeting a missing Gateway', () => {
    const findings = analyze(
      docs(`
apiVersion: networking.aviary.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: edge, namespace: bookinfo }
spec:
  targetRefs: [{ kind: Gateway, name: bookinfo-gateway }]
  rules:
  - name: all
    tokenBucket: { maxTokens: 10, fillInterval: 1s }
`),
    );
    expect(findings.map((f) => [f.code, f.message, f.path])).toEqual([['IST0101', 'Referenced Gateway not found: "bookinfo/bookinfo-gateway"', 'spec.targetRefs[0]']]);
  });

  it('is deterministic and independent of input order', () => {
    const resources = docs(`${gateway}---${edgeVs('a', 'shop.example.com')}---${strict('bookinfo')}---${disableDr}---${vsTo('r', 'v9')}`);
    const forward = analyze(resources);
    expect(analyze([...resources].reverse())).toEqual(forward);
    expect(forward.map((f) => f.code)).toEqual(['IST0101', 'IST0113', 'IST0132']);
  });
});
