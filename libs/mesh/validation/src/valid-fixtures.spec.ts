import { describe, expect, it } from 'vitest';
import { loadFixtures } from './fixtures/load';
import { validate } from './validate';

const fixtures = loadFixtures('valid');

describe('documented Istio and Gateway API examples are accepted', () => {
  it('has fixtures for every kind', () => {
    const kinds = new Set(fixtures.map((f) => (f.doc as { kind: string }).kind));
    expect([...kinds].sort()).toEqual([
      'AuthorizationPolicy',
      'Canary',
      'DestinationRule',
      'GRPCRoute',
      'Gateway',
      'GatewayClass',
      'HTTPRoute',
      'PeerAuthentication',
      'RateLimitPolicy',
      'ReferenceGrant',
      'RequestAuthentication',
      'ServiceEntry',
      'Sidecar',
      'TCPRoute',
      'TLSRoute',
      'VirtualService',
      'WorkloadEntry',
    ]);
  });

  // Istio accepts every one of them; Aviary refuses only the fields its registry marks as not supported yet.
  it.each(fixtures.map((f) => [`${f.file}#${f.index} ${(f.doc as { metadata: { name: string } }).metadata.name}`, f.doc]))('%s', (_name, doc) => {
    const result = validate(doc);
    expect(result.errors.filter((e) => !e.message.includes(NOT_YET))).toEqual([]);
  });

  it('refuses exactly the documented examples that use fields Aviary does not support yet', () => {
    const refused = fixtures.flatMap((f) => validate(f.doc).errors.filter((e) => e.message.includes(NOT_YET)).map((e) => `${f.file}#${f.index} ${e.path}`));
    expect(refused).toEqual([
      'bookinfo-reviews-variants.yaml#7 spec.tcp[0].match[0].destinationSubnets',
      'destination-rule-reference.yaml#4 spec.trafficPolicy.tls.credentialName',
      'destination-rule-reference.yaml#6 spec.trafficPolicy.loadBalancer.localityLbSetting',
      'gateways.yaml#2 spec.servers[4].port.protocol',
      'service-entries.yaml#4 spec.endpoints[0].address',
    ]);
  });
});

const NOT_YET = 'not supported by Aviary yet';
