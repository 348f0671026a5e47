import { describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';
import { localMesh, localProxies } from './__fixtures__/fixture';
import { cachedTranslation, proxyGroupKey, toSnapshotInput, translate, type Msg, type XdsResources } from './index';

/** INTERCEPTION_MODE NONE (no iptables) and the Sidecar resource's ingress/egress listeners. */

function obj(kind: string, name: string, spec: unknown, namespace = 'demo'): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}
const node = (ip: string, labels: Record<string, string>, extra: Record<string, unknown> = {}): ProxyInfo =>
  parseNode({ id: `sidecar~${ip}~pod.demo~demo.svc.cluster.local`, metadata: { NAMESPACE: 'demo', LABELS: labels, ...extra } });
const none = (ip: string, labels: Record<string, string>) => node(ip, labels, { INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: `${ip},fd00::1` });
const listener = (r: XdsResources, name: string): Msg => {
  const l = r.listeners.find((x) => x.name === name);
  if (!l) throw new Error(`no listener ${name} in ${r.listeners.map((x) => x.name).join(', ')}`);
  return l.resource;
};
const mesh = localMesh();
const hello = [
  obj('ServiceEntry', 'hello', { hosts: ['hello.demo.svc.cluster.local'], location: 'MESH_INTERNAL', ports: [{ number: 8000, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: 'hello' } } }),
  obj('WorkloadEntry', 'hello-1', { address: '127.0.0.21', ports: { http: 9001 }, labels: { app: 'hello', 'security.istio.io/tlsMode': 'istio' }, serviceAccount: 'hello' }),
];
const run = (objects: ModelObject[], proxy: ProxyInfo) => translate(proxy, buildSnapshot(objects, { trustDomain: 'cluster.local' }));

describe('INTERCEPTION_MODE NONE sidecar', () => {
  const r = translate(localProxies['sidecar-hello-v1']!, mesh);

  it('has no capture listeners and no original destination', () => {
    expect(r.listeners.map((l) => l.name)).toEqual(['127.0.0.11_9081', '127.0.0.1_5432', '127.0.0.1_7070', '127.0.0.1_80']);
    expect(JSON.stringify(r.listeners)).not.toContain('original_dst');
    expect(JSON.stringify(r.listeners)).not.toContain('bind_to_port');
  });

  it('binds inbound to INSTANCE_IPS[0] on the target port and forwards to 127.0.0.1:<port>', () => {
    const l = listener(r, '127.0.0.11_9081');
    expect(l.address).toEqual({ socket_address: { address: '127.0.0.11', port_value: 9081 } });
    expect((l.filter_chains as Msg[]).map((c) => c.filter_chain_match)).toEqual([{ transport_protocol: 'tls' }]); // STRICT
    expect(JSON.stringify(r.clusters.find((c) => c.name === 'inbound|9081||'))).toContain('{"socket_address":{"address":"127.0.0.1","port_value":9081}}');
  });

  it('binds outbound per service port on 127.0.0.1; unknown hosts get 502 (nothing to pass through to)', () => {
    expect(listener(r, '127.0.0.1_80').address).toEqual({ socket_address: { address: '127.0.0.1', port_value: 80 } });
    const vhosts = (r.routes.find((x) => x.name === '80')!.resource.virtual_hosts as Msg[]).map((v) => v.name);
    expect(vhosts).toEqual(['block_all', 'hello.demo.svc.cluster.local:80']);
  });

  it('uses INSTANCE_IPS over the node id IP', () => {
    const p = node('10.9.9.9', { app: 'hello' }, { INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: '127.0.0.21' });
    expect(run(hello, p).listeners.map((l) => l.name)).toContain('127.0.0.21_9001');
    const bad = node('127.0.0.21', { app: 'hello' }, { INTERCEPTION_MODE: 'NONE', INSTANCE_IPS: 'not-an-ip' });
    const out = run(hello, bad);
    expect(out.listeners.map((l) => l.name)).toContain('127.0.0.21_9001');
    expect(out.problems.some((p) => p.includes('INSTANCE_IPS'))).toBe(true);
  });

  it('notes that an explicit ALLOW_ANY cannot pass through', () => {
    const out = run([...hello, obj('Sidecar', 'default', { outboundTrafficPolicy: { mode: 'ALLOW_ANY' } })], none('127.0.0.21', { app: 'hello' }));
    expect(out.problems.some((p) => p.includes('ALLOW_ANY has no effect'))).toBe(true);
  });

  it('routers bind their gateway ports on 127.0.0.1', () => {
    const router = translate(localProxies['router']!, mesh);
    expect(router.listeners.map((l) => [l.name, l.resource.address])).toEqual([['127.0.0.1_8080', { socket_address: { address: '127.0.0.1', port_value: 8080 } }]]);
  });
});

describe('Sidecar ingress and egress listeners', () => {
  const r = translate(localProxies['sidecar-greeter']!, mesh);

  it('ingress replaces the service instances: defaultEndpoint 127.0.0.1:<port> or unix://, bind or the workload IP', () => {
    expect(r.listeners.map((l) => l.name)).toEqual(['127.0.0.13_5432', '127.0.0.13_7070', '127.0.0.13_80', '127.0.0.13_8443', '127.0.0.1_5432', '127.0.0.1_7070']);
    const endpoint = (name: string) => JSON.stringify(r.clusters.find((c) => c.name === name)!.resource.load_assignment);
    expect(endpoint('inbound|7070||')).toContain('{"socket_address":{"address":"127.0.0.1","port_value":17070}}');
    expect(endpoint('inbound|5432||')).toContain('{"pipe":{"path":"/tmp/greeter-db.sock"}}');
    const hcm = JSON.stringify(listener(r, '127.0.0.13_7070'));
    expect(hcm).toContain('"operation":"greeter.demo.svc.cluster.local:7070/*"');
    expect(hcm).toContain('envoy.filters.listener.http_inspector');
  });

  it('an egress listener with a port owns it, on its bind, with only its hosts', () => {
    const l = listener(r, '127.0.0.13_80');
    expect(l.address).toEqual({ socket_address: { address: '127.0.0.13', port_value: 80 } });
    const vhosts = (r.routes.find((x) => x.name === '80')!.resource.virtual_hosts as Msg[]).map((v) => v.name);
    expect(vhosts).toEqual(['block_all', 'hello.demo.svc.cluster.local:80']);
  });

  it('under iptables: ingress ports are virtualInbound chains by destination port; a bind makes its own listener', () => {
    const sidecar = obj('Sidecar', 'hello', {
      workloadSelector: { labels: { app: 'hello' } },
      ingress: [
        { port: { number: 9001, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:8001' },
        { port: { number: 9002, protocol: 'TCP', name: 'tcp' }, bind: '127.0.0.21', defaultEndpoint: '0.0.0.0:8002' },
      ],
      egress: [{ port: { number: 8000, protocol: 'HTTP', name: 'http' }, bind: '127.0.0.21', hosts: ['./*'] }, { hosts: ['*/*'] }],
    });
    const out = run([...hello, sidecar], node('127.0.0.21', { app: 'hello' }));
    expect(out.listeners.map((l) => l.name)).toEqual(['127.0.0.21_8000', '127.0.0.21_9002', 'virtualInbound', 'virtualOutbound']);
    const chains = listener(out, 'virtualInbound').filter_chains as Msg[];
    expect(chains.filter((c) => String(c.name).startsWith('inbound_')).map((c) => [c.name, (c.filter_chain_match as Msg).destination_port])).toEqual([
      ['inbound_9001_mtls', { value: 9001 }],
      ['inbound_9001_plaintext', { value: 9001 }],
    ]);
    expect(JSON.stringify(out.clusters.find((c) => c.name === 'inbound|9002||'))).toContain('{"address":"127.0.0.21","port_value":8002}');
    expect(out.problems).toEqual([]);
  });

  it('refuses what it cannot build, with the reason', () => {
    const sidecar = obj('Sidecar', 'hello', {
      workloadSelector: { labels: { app: 'hello' } },
      ingress: [
        { port: { number: 9001, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '0.0.0.0:9001', bind: '127.0.0.21' },
        { port: { number: 9003, protocol: 'HTTP', name: 'http', targetPort: 8003 } },
      ],
      egress: [{ port: { number: 8000 }, bind: 'unix:///tmp/x.sock', hosts: ['./*'] }, { port: { number: 8001 }, hosts: ['./*'] }],
    });
    const out = run([...hello, sidecar], none('127.0.0.21', { app: 'hello' }));
    expect(out.problems).toEqual([
      "Sidecar/demo/hello egress[0]: unix:// bind unix:///tmp/x.sock is not supported; listener skipped",
      'Sidecar/demo/hello egress[1]: no service selected by its hosts has port 8001',
      "Sidecar/demo/hello ingress[0]: defaultEndpoint is the listener's own address 127.0.0.21:9001; skipped",
      'Sidecar/demo/hello ingress[1]: port.targetPort is not supported (deprecated by Istio); use defaultEndpoint',
    ]);
  });
});

describe('outboundTrafficPolicy.egressProxy', () => {
  const egressGw = obj('ServiceEntry', 'egress', { hosts: ['egress.demo.svc.cluster.local'], location: 'MESH_INTERNAL', ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], endpoints: [{ address: '127.0.0.30' }] });
  const policy = (host: string) => obj('Sidecar', 'default', { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host, port: { number: 8080 } } } });
  const unknown = (r: XdsResources) => (r.routes.find((x) => x.name === '8000')!.resource.virtual_hosts as Msg[]).find((v) => v.name === 'allow_any');
  const E = 'outbound|8080||egress.demo.svc.cluster.local';

  it('sends unknown hosts to the egress proxy: HTTP catch-all and virtualOutbound', () => {
    const r = run([...hello, egressGw, policy('egress')], node('127.0.0.21', { app: 'hello' }));
    expect(((unknown(r)!.routes as Msg[])[0]!.route as Msg).cluster).toBe(E);
    expect(JSON.stringify(listener(r, 'virtualOutbound'))).toContain(`"cluster":"${E}"`);
    expect(r.problems).toEqual([]);
  });
  it('works without capture too (no original destination needed)', () => {
    const r = run([...hello, egressGw, policy('egress')], none('127.0.0.21', { app: 'hello' }));
    expect(((unknown(r)!.routes as Msg[])[0]!.route as Msg).cluster).toBe(E);
    expect(r.problems).toEqual([]);
  });
  it('reports an egress proxy that is not a reachable service port', () => {
    const r = run([...hello, policy('nowhere')], node('127.0.0.21', { app: 'hello' }));
    expect(r.problems).toEqual([expect.stringContaining('nowhere.demo.svc.cluster.local:8080 is not a service port (and subset) this proxy can reach')]);
    expect(((unknown(r)!.routes as Msg[])[0]!.route as Msg).cluster).toBe('PassthroughCluster');
  });
});

describe('Sidecar connection pools and ingress TLS', () => {
  it('ingress connectionPool, else inboundConnectionPool, shapes the inbound cluster', () => {
    const sidecar = obj('Sidecar', 'hello', {
      workloadSelector: { labels: { app: 'hello' } },
      inboundConnectionPool: { tcp: { maxConnections: 7 } },
      ingress: [
        { port: { number: 9001, protocol: 'HTTP', name: 'http' }, connectionPool: { tcp: { connectTimeout: '2s' }, http: { http2MaxRequests: 9, idleTimeout: '30s' } } },
        { port: { number: 9002, protocol: 'HTTP2', name: 'http2' } },
      ],
    });
    const out = run([...hello, sidecar], none('127.0.0.21', { app: 'hello' }));
    const c1 = out.clusters.find((c) => c.name === 'inbound|9001||')!.resource;
    expect(c1.connect_timeout).toEqual({ seconds: 2 });
    expect((c1.circuit_breakers as Msg).thresholds).toEqual([{ max_connections: { value: 4294967295 }, max_pending_requests: { value: 4294967295 }, max_requests: { value: 9 }, max_retries: { value: 4294967295 } }]);
    expect(JSON.stringify(c1.typed_extension_protocol_options)).toContain('"idle_timeout":{"seconds":30}');
    const c2 = out.clusters.find((c) => c.name === 'inbound|9002||')!.resource;
    expect((c2.circuit_breakers as Msg).thresholds).toEqual([{ max_connections: { value: 7 }, max_pending_requests: { value: 4294967295 }, max_requests: { value: 4294967295 }, max_retries: { value: 4294967295 } }]);
    expect(JSON.stringify(c2.typed_extension_protocol_options)).toContain('http2_protocol_options');
    expect(out.problems).toEqual([]);
  });

  it('ingress tls terminates with the given credential instead of mesh mTLS', () => {
    const sidecar = obj('Sidecar', 'hello', {
      workloadSelector: { labels: { app: 'hello' } },
      ingress: [{ port: { number: 9443, protocol: 'HTTPS', name: 'https' }, defaultEndpoint: '127.0.0.1:9001', tls: { mode: 'SIMPLE', credentialName: 'hello-cert' } }],
    });
    const l = listener(run([...hello, sidecar], none('127.0.0.21', { app: 'hello' })), '127.0.0.21_9443');
    const chains = l.filter_chains as Msg[];
    expect(chains.map((c) => c.name)).toEqual(['inbound_9443_tls']);
    expect(JSON.stringify(chains[0]!.transport_socket)).toContain('"name":"kubernetes://hello-cert"');
    expect(JSON.stringify(chains[0]!.filters)).toContain('envoy.filters.network.http_connection_manager');
  });
});

describe('caching and grouping keep interception modes apart', () => {
  const iptables = node('127.0.0.11', { app: 'hello', version: 'v1' }, { INSTANCE_IPS: '127.0.0.11' });
  const local = localProxies['sidecar-hello-v1']!;

  it('different group keys; cachedTranslation equals translate for both, in either order', () => {
    expect(proxyGroupKey(iptables)).not.toBe(proxyGroupKey(local));
    const cached = cachedTranslation();
    for (const p of [iptables, local, iptables]) expect(JSON.stringify(cached.translate(p, mesh))).toBe(JSON.stringify(toSnapshotInput(translate(p, mesh))));
  });
});
