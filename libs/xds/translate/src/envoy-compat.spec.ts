import { describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { translate, type Msg, type XdsResources } from './index';

/** What upstream Envoy needs from the translation (issue 13): each item checked on its own. */

function obj(kind: string, name: string, spec: unknown, namespace = 'default'): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}
const svc = (name: string, protocol: string, port = 8080) =>
  obj('ServiceEntry', name, { hosts: [`${name}.default.svc.cluster.local`], location: 'MESH_INTERNAL', ports: [{ number: port, name: protocol.toLowerCase(), protocol }], workloadSelector: { labels: { app: name } } });
const we = (name: string, address: string, app: string) =>
  obj('WorkloadEntry', name, { address, labels: { app, 'security.istio.io/tlsMode': 'istio' }, serviceAccount: app });
const sidecar = (ip = '10.0.0.1', labels: Record<string, string> = { app: 'web' }) =>
  parseNode({ id: `sidecar~${ip}~pod.default~default.svc.cluster.local`, metadata: { NAMESPACE: 'default', LABELS: labels } });
const run = (objects: ModelObject[], proxy = sidecar()): XdsResources => translate(proxy, buildSnapshot(objects, { trustDomain: 'cluster.local' }));
const get = (list: XdsResources['clusters'], name: string): Msg => {
  const r = list.find((x) => x.name === name);
  if (!r) throw new Error(`no ${name} in ${list.map((x) => x.name).join(', ')}`);
  return r.resource;
};
const mesh = [svc('http1', 'HTTP'), svc('grpc', 'GRPC', 9090), svc('tcp', 'TCP', 5432), we('h-1', '10.0.1.1', 'http1'), we('g-1', '10.0.1.2', 'grpc'), we('t-1', '10.0.1.3', 'tcp')];
const tlsOf = (c: Msg): Msg => ((c.transport_socket_matches as Msg[] | undefined)?.[0]?.transport_socket ?? c.transport_socket) as Msg;
const commonOf = (c: Msg): Msg => (tlsOf(c).typed_config as Msg).common_tls_context as Msg;

describe('ISTIO_MUTUAL upstream ALPN is the protocol the connection carries', () => {
  const r = run(mesh);
  it('http/1.1 for HTTP, h2 for gRPC, none for TCP (auto mTLS)', () => {
    expect(commonOf(get(r.clusters, 'outbound|8080||http1.default.svc.cluster.local')).alpn_protocols).toEqual(['http/1.1']);
    expect(commonOf(get(r.clusters, 'outbound|9090||grpc.default.svc.cluster.local')).alpn_protocols).toEqual(['h2']);
    expect(commonOf(get(r.clusters, 'outbound|5432||tcp.default.svc.cluster.local')).alpn_protocols).toBeUndefined();
  });
  it('h2 when a DestinationRule upgrades an HTTP/1.1 port, with explicit ISTIO_MUTUAL', () => {
    const dr = obj('DestinationRule', 'h', { host: 'http1', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' }, connectionPool: { http: { h2UpgradePolicy: 'UPGRADE' } } } });
    expect(commonOf(get(run([...mesh, dr]).clusters, 'outbound|8080||http1.default.svc.cluster.local')).alpn_protocols).toEqual(['h2']);
  });
  it('never offers Istio-only ALPN tokens', () => {
    expect(JSON.stringify(r)).not.toContain('istio-peer-exchange');
  });
});

describe('SDS and certificate validation', () => {
  const common = commonOf(get(run(mesh).clusters, 'outbound|8080||http1.default.svc.cluster.local'));
  it('secrets come from sds-grpc with initial_fetch_timeout 0s', () => {
    const secret = (common.tls_certificate_sds_secret_configs as Msg[])[0]!;
    expect(secret).toMatchObject({ name: 'default', sds_config: { initial_fetch_timeout: { seconds: 0 }, api_config_source: { grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] } } });
    const root = (common.combined_validation_context as Msg).validation_context_sds_secret_config as Msg;
    expect(root).toMatchObject({ name: 'ROOTCA', sds_config: { initial_fetch_timeout: { seconds: 0 } } });
  });
  it('SPIFFE IDs are matched as URI SANs (typed matchers only)', () => {
    expect((common.combined_validation_context as Msg).default_validation_context).toEqual({
      match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/default/sa/http1' } }],
    });
  });
  it('DestinationRule subjectAltNames get the SAN type of their form', () => {
    const dr = obj('DestinationRule', 'h', { host: 'http1', trafficPolicy: { tls: { mode: 'SIMPLE', subjectAltNames: ['api.example.com', 'spiffe://td/ns/a/sa/b', '10.1.2.3', 'ops@example.com'] } } });
    const c = get(run([...mesh, dr]).clusters, 'outbound|8080||http1.default.svc.cluster.local');
    expect((commonOf(c).validation_context as Msg).match_typed_subject_alt_names).toEqual([
      { san_type: 'IP_ADDRESS', matcher: { exact: '10.1.2.3' } },
      { san_type: 'DNS', matcher: { exact: 'api.example.com' } },
      { san_type: 'EMAIL', matcher: { exact: 'ops@example.com' } },
      { san_type: 'URI', matcher: { exact: 'spiffe://td/ns/a/sa/b' } },
    ]);
  });
});

describe('retries, regexes, inbound', () => {
  it('every retry policy that limits host re-selection has the previous_hosts predicate', () => {
    const vs = obj('VirtualService', 'h', { hosts: ['http1'], http: [{ retries: { attempts: 3, retryOn: '5xx' }, route: [{ destination: { host: 'http1' } }] }] });
    const policies: Msg[] = [];
    JSON.stringify(run([...mesh, vs]), (k, v: unknown) => {
      if (k === 'retry_policy') policies.push(v as Msg);
      return v;
    });
    expect(policies.length).toBeGreaterThan(1);
    for (const p of policies) {
      expect(p.host_selection_retry_max_attempts).toBe(5);
      expect(p.retry_host_predicate).toEqual([
        { name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': ExtensionTypeUrl.PreviousHostsPredicate } },
      ]);
    }
  });
  it('regex matchers name no engine (google_re2 is deprecated)', () => {
    const vs = obj('VirtualService', 'h', { hosts: ['http1'], http: [{ match: [{ uri: { regex: '/a.*' } }], route: [{ destination: { host: 'http1' } }] }] });
    expect(JSON.stringify(run([...mesh, vs]))).not.toContain('google_re2');
  });
  it('the inbound passthrough cluster binds to 127.0.0.6; inspectors: tls always, http only on HTTP ports', () => {
    const r = run(mesh, sidecar('10.0.1.1', { app: 'http1' }));
    expect(get(r.clusters, 'InboundPassthroughClusterIpv4').upstream_bind_config).toEqual({ source_address: { address: '127.0.0.6', port_value: 0 } });
    const inbound = get(r.listeners, 'virtualInbound');
    expect((inbound.listener_filters as Msg[]).map((f) => f.name)).toEqual(['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector']);
    expect((inbound.listener_filters as Msg[])[2]!.filter_disabled).toEqual({ not_match: { destination_port_range: { start: 8080, end: 8081 } } });
    const tcpOnly = get(run(mesh, sidecar('10.0.1.3', { app: 'tcp' })).listeners, 'virtualInbound');
    expect((tcpOnly.listener_filters as Msg[]).map((f) => f.name)).toEqual(['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector']);
  });
});

describe('DestinationRule workloadSelector (Istio matchLabels)', () => {
  it('applies to the selected workloads only', () => {
    const dr = obj('DestinationRule', 'h', { host: 'http1', workloadSelector: { matchLabels: { app: 'web' } }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } });
    expect(get(run([...mesh, dr]).clusters, 'outbound|8080||http1.default.svc.cluster.local').lb_policy).toBe('RANDOM');
    expect(get(run([...mesh, dr], sidecar('10.0.0.9', { app: 'other' })).clusters, 'outbound|8080||http1.default.svc.cluster.local').lb_policy).toBe('ROUND_ROBIN');
  });
});

describe('auto mTLS (no DestinationRule TLS), as Istio', () => {
  const cluster = (objects: ModelObject[], host = 'http1') => get(run([...mesh, ...objects]).clusters, `outbound|8080||${host}.default.svc.cluster.local`);
  it('mTLS to endpoints labelled tlsMode istio, plaintext to the others', () => {
    const r = run([...mesh, obj('WorkloadEntry', 'h-2', { address: '10.0.1.9', labels: { app: 'http1' } })]);
    const c = get(r.clusters, 'outbound|8080||http1.default.svc.cluster.local');
    expect((c.transport_socket_matches as Msg[]).map((m) => [m.name, m.match, (m.transport_socket as Msg).name])).toEqual([
      ['tlsMode-istio', { fields: { tlsMode: { string_value: 'istio' } } }, 'envoy.transport_sockets.tls'],
      ['tlsMode-disabled', {}, 'envoy.transport_sockets.raw_buffer'],
    ]);
    const endpoints = (get(r.endpoints, 'outbound|8080||http1.default.svc.cluster.local').endpoints as Msg[]).flatMap((l) => l.lb_endpoints as Msg[]);
    // Only the transport-socket match key decides TLS (the endpoints also carry workload metadata for telemetry).
    const tlsMatch = (e: Msg) => ((e.metadata as Msg | undefined)?.filter_metadata as Msg | undefined)?.['envoy.transport_socket_match'];
    expect(endpoints.map((e) => [JSON.stringify(e.endpoint), tlsMatch(e)])).toEqual([
      [expect.stringContaining('10.0.1.1'), { fields: { tlsMode: { string_value: 'istio' } } }],
      [expect.stringContaining('10.0.1.9'), undefined],
    ]);
  });
  it('an explicit DestinationRule TLS setting replaces it', () => {
    const c = cluster([obj('DestinationRule', 'h', { host: 'http1', trafficPolicy: { tls: { mode: 'DISABLE' } } })]);
    expect(c.transport_socket_matches).toBeUndefined();
    expect(c.transport_socket).toBeUndefined();
  });
  it('plaintext when the destination namespace disables mTLS', () => {
    const c = cluster([obj('PeerAuthentication', 'default', { mtls: { mode: 'DISABLE' } })]);
    expect(c.transport_socket_matches).toBeUndefined();
    expect(cluster([obj('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } })]).transport_socket_matches).toBeDefined();
  });
});

describe("a service port that is one of the sidecar's own ports", () => {
  it('gets no virtual outbound listener (Envoy would refuse the LDS update: duplicate address of the static 15021 listener)', () => {
    const r = run([...mesh, svc('monitoring', 'HTTP', 15021), we('m-1', '10.0.1.4', 'monitoring')]);
    expect(r.listeners.map((l) => l.name)).not.toContain('0.0.0.0_15021');
    expect(r.listeners.map((l) => l.name)).toContain('0.0.0.0_8080');
    expect(r.problems).toContain("outbound port 15021 (monitoring.default.svc.cluster.local) is one of the sidecar's own ports: no listener, its traffic is passed through");
  });
});
