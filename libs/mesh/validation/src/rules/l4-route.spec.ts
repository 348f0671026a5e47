import { describe, expect, it } from 'vitest';
import { validate } from '../validate';

const meta = { name: 'example', namespace: 'default' };
const v1 = 'gateway.networking.k8s.io/v1';
const v1alpha2 = 'gateway.networking.k8s.io/v1alpha2';
const backend = { name: 'tcp-echo-v1', port: 9000 };
const tcp = (spec: Record<string, unknown>, apiVersion = v1alpha2) => ({ apiVersion, kind: 'TCPRoute', metadata: meta, spec: { parentRefs: [{ name: 'gw' }], rules: [{ backendRefs: [backend] }], ...spec } });
const tls = (spec: Record<string, unknown>, apiVersion = v1) => ({ apiVersion, kind: 'TLSRoute', metadata: meta, spec: { parentRefs: [{ name: 'gw' }], hostnames: ['a.example.com'], rules: [{ backendRefs: [backend] }], ...spec } });

/** [what, resource, expected path, expected message fragment] */
const cases: [string, unknown, string, string][] = [
  ['TCPRoute versions', tcp({}, 'gateway.networking.k8s.io/v1beta1'), 'apiVersion', 'gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1alpha2'],
  ['TLSRoute versions', tls({}, 'gateway.networking.k8s.io/v1beta1'), 'apiVersion', 'gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1alpha2, gateway.networking.k8s.io/v1alpha3'],
  ['TCPRoute rules required', tcp({ rules: [] }), 'spec.rules', 'at least one rule'],
  ['TCPRoute v1: one rule', tcp({ rules: [{ backendRefs: [backend] }, { backendRefs: [backend] }] }, v1), 'spec.rules', 'at most 1 rule is allowed in gateway.networking.k8s.io/v1'],
  ['TCPRoute v1alpha2: a second rule refused', tcp({ rules: [{ backendRefs: [backend] }, { backendRefs: [backend] }] }), 'spec.rules[1]', 'more than one rule is not supported by Aviary yet'],
  ['rule names unique', tcp({ rules: [{ name: 'a', backendRefs: [backend] }, { name: 'a', backendRefs: [backend] }] }), 'spec.rules[1].name', 'unique'],
  ['backendRefs required', tcp({ rules: [{ backendRefs: [] }] }), 'spec.rules[0].backendRefs', 'at least one backendRef'],
  ['Service backend needs a port', tcp({ rules: [{ backendRefs: [{ name: 'svc' }] }] }), 'spec.rules[0].backendRefs[0].port', 'port is required'],
  ['weight range', tcp({ rules: [{ backendRefs: [{ ...backend, weight: 1000001 }] }] }), 'spec.rules[0].backendRefs[0].weight', ''],
  ['no filters on L4 backends', tcp({ rules: [{ backendRefs: [{ ...backend, filters: [] }] }] }), 'spec.rules[0].backendRefs[0].filters', 'unknown field'],
  ['no matches on L4 rules', tcp({ rules: [{ matches: [], backendRefs: [backend] }] }), 'spec.rules[0].matches', 'unknown field'],
  ['TCPRoute has no hostnames', tcp({ hostnames: ['a.example.com'] }), 'spec.hostnames', 'unknown field'],
  ['mesh (GAMMA) TCPRoute refused', tcp({ parentRefs: [{ group: '', kind: 'Service', name: 'tcp-echo', port: 9000 }] }), 'spec.parentRefs[0].kind', 'a Service parent (mesh, GAMMA) is not supported by Aviary yet for TCPRoute and TLSRoute'],
  ['parentRef section name', tcp({ parentRefs: [{ name: 'gw', sectionName: 'Bad_Name' }] }), 'spec.parentRefs[0].sectionName', 'invalid section name'],
  ['useDefaultGateways refused', tcp({ useDefaultGateways: 'All' }), 'spec.useDefaultGateways', 'not supported by Aviary yet'],
  ['TLSRoute v1 needs hostnames', tls({ hostnames: [] }), 'spec.hostnames', 'at least one hostname is required in gateway.networking.k8s.io/v1'],
  ['TLSRoute bad hostname', tls({ hostnames: ['10.0.0.1'] }), 'spec.hostnames[0]', 'IP address'],
  ['TLSRoute wildcard not first', tls({ hostnames: ['a.*.example.com'] }), 'spec.hostnames[0]', 'invalid hostname'],
];

describe('TCPRoute and TLSRoute validation', () => {
  it.each(cases)('%s', (_what, resource, path, message) => {
    const errors = validate(resource).errors;
    expect(errors.some((e) => e.path === path && e.message.includes(message)), JSON.stringify(errors)).toBe(true);
  });

  it('accepts Istio tcp-echo TCPRoute (v1alpha2), a weighted v1 TCPRoute across namespaces, and TLSRoutes of every served version', () => {
    const ok = [
      tcp({ parentRefs: [{ name: 'tcp-echo-gateway', sectionName: 'tcp-31400' }], rules: [{ backendRefs: [{ ...backend, weight: 80 }, { name: 'tcp-echo-v2', port: 9000, weight: 20 }] }] }),
      tcp({ parentRefs: [{ name: 'gw', namespace: 'infra', port: 9000 }], rules: [{ name: 'all', backendRefs: [{ ...backend, namespace: 'other', weight: 0 }, backend] }] }, v1),
      tls({}),
      tls({ hostnames: undefined }, v1alpha2),
      tls({ parentRefs: [{ name: 'gw', sectionName: 'tls' }] }, 'gateway.networking.k8s.io/v1alpha3'),
    ];
    for (const r of ok) expect(validate(r).errors, JSON.stringify(r)).toEqual([]);
  });

  it('accepts TCP, TLS passthrough and TLS terminate listeners', () => {
    const gw = {
      apiVersion: v1,
      kind: 'Gateway',
      metadata: meta,
      spec: {
        gatewayClassName: 'aviary',
        listeners: [
          { name: 'tcp', port: 31400, protocol: 'TCP', allowedRoutes: { kinds: [{ kind: 'TCPRoute' }] } },
          { name: 'tls', port: 443, protocol: 'TLS', hostname: '*.example.com', tls: { mode: 'Passthrough' } },
          { name: 'tls-terminate', port: 8443, protocol: 'TLS', tls: { mode: 'Terminate', certificateRefs: [{ name: 'cert' }] } },
        ],
      },
    };
    expect(validate(gw).errors).toEqual([]);
  });
});
