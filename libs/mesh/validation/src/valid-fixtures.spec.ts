import { describe, expect, it } from 'vitest';
import { loadFixtures } from './fixtures/load';
import { validate } from './validate';

const fixtures = loadFixtures('valid');

describe('documented Istio examples are accepted', () => {
  it('has fixtures for every kind', () => {
    const kinds = new Set(fixtures.map((f) => (f.doc as { kind: string }).kind));
    expect([...kinds].sort()).toEqual([
      'AuthorizationPolicy',
      'Canary',
      'DestinationRule',
      'Gateway',
      'PeerAuthentication',
      'RateLimitPolicy',
      'RequestAuthentication',
      'ServiceEntry',
      'Sidecar',
      'VirtualService',
      'WorkloadEntry',
    ]);
  });

  it.each(fixtures.map((f) => [`${f.file}#${f.index} ${(f.doc as { metadata: { name: string } }).metadata.name}`, f.doc]))('%s', (_name, doc) => {
    const result = validate(doc);
    expect(result.errors).toEqual([]);
  });
});
