import { describe, expect, it } from 'vitest';
import { citadelConfig, parseConfig } from '@aviary/config';
import { servingDnsNames } from './component';

describe("citadel's TLS serving certificate names", () => {
  it('carry the Service names proxies dial (AVIARY_CA_TLS_DNS_NAMES, set by the chart) besides the local ones', () => {
    const parsed = parseConfig(citadelConfig, [], { AVIARY_CA_TLS_DNS_NAMES: 'aviary-citadel.istio-system.svc,aviary-citadel.istio-system.svc.cluster.local', AVIARY_CA_HOST: '0.0.0.0' });
    if (parsed.kind !== 'config') throw new Error('expected a config');
    expect(servingDnsNames(parsed.config.caHost, parsed.config.caTlsDnsNames)).toEqual([
      'localhost',
      'citadel',
      'aviary-citadel',
      '127.0.0.1',
      '::1',
      'aviary-citadel.istio-system.svc',
      'aviary-citadel.istio-system.svc.cluster.local',
    ]);
    expect(servingDnsNames('Citadel.Example')).toContain('citadel.example');
  });

  it('refuses a malformed name list at boot', () => {
    expect(() => parseConfig(citadelConfig, [], { AVIARY_CA_TLS_DNS_NAMES: 'a b' })).toThrow(/AVIARY_CA_TLS_DNS_NAMES|--ca-tls-dns-names/);
  });
});
