import { describe, expect, it } from 'vitest';
import { validate } from './validate';

// Documents Istio's validator accepts and Aviary used to refuse, found by the differential test
// against `istioctl validate` (e2e/istio-diff, docs/istio-validation.md). Each rule is Istio's
// (pkg/config/validation), with what Aviary's translation does with the value.
const meta = { name: 'example', namespace: 'default' };
const net = (kind: string, spec: unknown) => ({ apiVersion: 'networking.istio.io/v1', kind, metadata: meta, spec });
const sec = (kind: string, spec: unknown) => ({ apiVersion: 'security.istio.io/v1', kind, metadata: meta, spec });
const dest = (subset: string, weight?: number) => ({ destination: { host: 'reviews', subset }, ...(weight !== undefined && { weight }) });
const vs = (http: unknown[]) => net('VirtualService', { hosts: ['reviews'], http });

const accepted: [string, unknown][] = [
  ['weights that do not sum to 100 (relative weights)', vs([{ route: [dest('v1', 30), dest('v2', 30)] }])],
  ['weights above 100', vs([{ route: [dest('v1', 150), dest('v2', 50)] }])],
  ['one destination with a weight other than 100', vs([{ route: [dest('v1', 50)] }])],
  ['an empty URI prefix (matches every path)', vs([{ match: [{ uri: { prefix: '' } }], route: [dest('v1')] }])],
  ['match port 0 (proto3 unset)', vs([{ match: [{ port: 0 }], route: [dest('v1')] }])],
  ['a header operation name outside the RFC token syntax', vs([{ route: [dest('v1')], headers: { response: { set: { 'x header': 'v' } } } }])],
  ['a mixed-case subset name', net('DestinationRule', { host: 'reviews', subsets: [{ name: 'Version1', labels: { version: 'v1' } }] })],
  ['a mixed-case ServiceEntry port name', net('ServiceEntry', { hosts: ['api.example.com'], ports: [{ number: 443, name: 'HTTPS-Port', protocol: 'TLS' }], resolution: 'DNS' })],
  ['a STATIC ServiceEntry without endpoints', net('ServiceEntry', { hosts: ['db.example.com'], ports: [{ number: 5432, name: 'tcp', protocol: 'TLS' }], resolution: 'STATIC' })],
  ['a workload selector key outside the label syntax', sec('PeerAuthentication', { selector: { matchLabels: { 'app!': 'x' } }, mtls: { mode: 'STRICT' } })],
  ['RE2 named groups (?P<name>)', vs([{ match: [{ uri: { regex: '/(?P<v>v[0-9]+)/.*' } }], route: [dest('v1')] }])],
  ['RE2 \\z and \\A', vs([{ match: [{ uri: { regex: '\\A/api/v1\\z' } }], route: [dest('v1')] }])],
  ['RE2 POSIX classes', vs([{ match: [{ uri: { regex: '/[[:alpha:]]+[[:^digit:]]' } }], route: [dest('v1')] }])],
  ['RE2 one-letter Unicode classes', vs([{ match: [{ uri: { regex: '/\\pL+' } }], route: [dest('v1')] }])],
  ['a prime maglev table size', net('DestinationRule', { host: 'reviews', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x', maglev: { tableSize: 65537 } } } } })],
  ['a ServiceEntry exported to no namespace (~)', net('ServiceEntry', { hosts: ['a.example.com'], exportTo: ['~'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' })],
  ['service accounts as name or namespace/name', sec('AuthorizationPolicy', { rules: [{ from: [{ source: { serviceAccounts: ['default/sleep', 'httpbin'] } }] }] })],
  ['a JWT rule with jwksUri and no issuer', sec('RequestAuthentication', { jwtRules: [{ issuer: '', jwksUri: 'https://example.com/jwks.json' }] })],
];

describe('accepted as Istio accepts them', () => {
  it.each(accepted)('%s', (_what, resource) => {
    expect(validate(resource).errors).toEqual([]);
  });

  it('warns on a duplicate route name (Istio accepts it; a Canary naming the route takes the first)', () => {
    const result = validate(vs([{ name: 'r', match: [{ uri: { prefix: '/a' } }], route: [dest('v1')] }, { name: 'r', route: [dest('v2')] }]));
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([{ path: 'spec.http[1].name', message: 'duplicate route name "r"' }]);
  });
});

describe('refused as not supported where Istio rewrites instead', () => {
  it('setting Host or :authority on requests (Istio: an authority rewrite; Envoy refuses both in request_headers_to_add)', () => {
    for (const name of ['host', ':authority']) {
      const { errors } = validate(vs([{ route: [dest('v1')], headers: { request: { set: { [name]: 'a.example.com' } } } }]));
      expect(errors.map((e) => e.message)).toEqual([`setting ${JSON.stringify(name)} in headers.request.set is not supported by Aviary yet: use rewrite.authority`]);
    }
  });

  it('AUTO_PASSTHROUGH on an HTTPS server', () => {
    const gw = net('Gateway', { servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls: { mode: 'AUTO_PASSTHROUGH' } }] });
    expect(validate(gw).errors.map((e) => e.message)).toEqual(['AUTO_PASSTHROUGH on a HTTPS port is not supported by Aviary yet: use protocol TLS']);
  });
});
