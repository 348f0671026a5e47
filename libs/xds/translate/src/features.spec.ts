import { describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { TypeUrl, canonicalResource, decodeResource, encodeResource } from '@aviary/xds-protos';
import { translate, type Msg, type XdsResources } from './index';

function obj(kind: string, name: string, spec: unknown, namespace = 'default'): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}
const svc = (name: string, ns = 'default', extra: Record<string, unknown> = {}, port: Record<string, unknown> = { number: 8080, name: 'http', protocol: 'HTTP' }) =>
  obj('ServiceEntry', name, { hosts: [`${name}.${ns}.svc.cluster.local`], location: 'MESH_INTERNAL', ports: [port], workloadSelector: { labels: { app: name } }, ...extra }, ns);
const we = (name: string, address: string, labels: Record<string, string>, ns = 'default', extra: Record<string, unknown> = {}) =>
  obj('WorkloadEntry', name, { address, labels: { ...labels, 'security.istio.io/tlsMode': 'istio' }, serviceAccount: labels.app, ...extra }, ns);

const sidecar = (ip = '10.0.0.1', labels: Record<string, string> = { app: 'echo' }, ns = 'default') =>
  parseNode({ id: `sidecar~${ip}~pod.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns, LABELS: labels } });
const proxyless = parseNode({ id: 'c', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } });

/** Translates and checks that every resource is canonical and survives encode → decode unchanged. */
function run(objects: ModelObject[], proxy = sidecar()): XdsResources {
  const r = translate(proxy, buildSnapshot(objects, { trustDomain: 'cluster.local' }));
  const urls = { listeners: TypeUrl.Listener, routes: TypeUrl.RouteConfiguration, clusters: TypeUrl.Cluster, endpoints: TypeUrl.ClusterLoadAssignment } as const;
  for (const [key, url] of Object.entries(urls)) {
    for (const { resource } of r[key as keyof typeof urls]) {
      expect(canonicalResource(url, resource)).toEqual(resource);
      expect(decodeResource(url, encodeResource(url, resource))).toEqual(resource);
    }
  }
  return r;
}
function get(list: XdsResources['clusters'], name: string): Msg {
  const r = list.find((x) => x.name === name);
  if (!r) throw new Error(`no ${name} in ${list.map((x) => x.name).join(', ')}`);
  return r.resource;
}
const echo = [svc('echo'), we('echo-1', '10.0.0.1', { app: 'echo', version: 'v1' }), we('echo-2', '10.0.0.2', { app: 'echo', version: 'v2' }, 'default', { locality: 'r1/z1' })];
const C = 'outbound|8080||echo.default.svc.cluster.local';

describe('proxyless gRPC', () => {
  const r = run([...echo, obj('DestinationRule', 'echo', { host: 'echo', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }] })], proxyless);

  it('api_listener <host>:<port> → HCM (typed Any) → RDS over ADS, router last', () => {
    const l = get(r.listeners, 'echo.default.svc.cluster.local:8080');
    const hcm = (l.api_listener as Msg).api_listener as Msg;
    expect(hcm['@type']).toBe(ExtensionTypeUrl.HttpConnectionManager);
    expect(hcm.rds).toEqual({ config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: C });
    const filters = hcm.http_filters as Msg[];
    expect(filters.at(-1)).toEqual({ name: 'envoy.filters.http.router', typed_config: { '@type': ExtensionTypeUrl.Router } });
  });

  it('the virtual host matches the target authority', () => {
    const vh = (get(r.routes, C).virtual_hosts as Msg[])[0]!;
    expect(vh.domains).toEqual(['echo.default.svc.cluster.local', 'echo.default.svc.cluster.local:8080']);
  });

  it('EDS clusters with ads config; unsupported LB becomes ROUND_ROBIN with a problem; no auto mTLS', () => {
    const c = get(r.clusters, 'outbound|8080|v1|echo.default.svc.cluster.local');
    expect(c).toMatchObject({ type: 'EDS', lb_policy: 'ROUND_ROBIN', eds_cluster_config: { eds_config: { ads: {} } } });
    expect(c.transport_socket_matches).toBeUndefined();
    expect(r.problems.some((p) => p.includes('RANDOM becomes ROUND_ROBIN'))).toBe(true);
  });

  it('every locality has a locality and a load_balancing_weight; subsets filter endpoints', () => {
    const all = get(r.endpoints, C).endpoints as Msg[];
    expect(all.map((l) => [l.locality, l.load_balancing_weight])).toEqual([
      [{}, { value: 1 }],
      [{ region: 'r1', zone: 'z1' }, { value: 1 }],
    ]);
    const v1 = get(r.endpoints, 'outbound|8080|v1|echo.default.svc.cluster.local').endpoints as Msg[];
    expect(JSON.stringify(v1)).toContain('10.0.0.1');
    expect(JSON.stringify(v1)).not.toContain('10.0.0.2');
  });
});

describe('sidecar inbound mTLS follows PeerAuthentication', () => {
  const chains = (mode: string) => {
    const r = run([...echo, obj('PeerAuthentication', 'pa', { mtls: { mode } })]);
    return (get(r.listeners, 'virtualInbound').filter_chains as Msg[]).filter((c) => String(c.name).startsWith('inbound_8080'));
  };
  it('STRICT: only a TLS chain that requires a client certificate', () => {
    const c = chains('STRICT');
    expect(c.map((x) => (x.filter_chain_match as Msg).transport_protocol)).toEqual(['tls']);
    const tls = (c[0]!.transport_socket as Msg).typed_config as Msg;
    expect(tls['@type']).toBe(ExtensionTypeUrl.DownstreamTlsContext);
    expect(tls.require_client_certificate).toEqual({ value: true });
    expect(JSON.stringify(tls)).toContain('"name":"ROOTCA"');
  });
  it('PERMISSIVE: TLS and plaintext chains; DISABLE: plaintext only', () => {
    expect(chains('PERMISSIVE').map((x) => (x.filter_chain_match as Msg).transport_protocol)).toEqual(['tls', 'raw_buffer']);
    expect(chains('DISABLE').map((x) => (x.filter_chain_match as Msg).transport_protocol)).toEqual(['raw_buffer']);
  });
  it('inbound cluster points at the app port on 127.0.0.1', () => {
    const r = run(echo);
    expect(JSON.stringify(get(r.clusters, 'inbound|8080||'))).toContain('{"socket_address":{"address":"127.0.0.1","port_value":8080}}');
  });
});

describe('DestinationRule TLS on outbound clusters', () => {
  const cluster = (tls: Record<string, unknown>) => get(run([...echo, obj('DestinationRule', 'echo', { host: 'echo', trafficPolicy: { tls } })]).clusters, C);
  it('ISTIO_MUTUAL: SDS default + ROOTCA, SANs from endpoint identities, Istio SNI', () => {
    const t = (cluster({ mode: 'ISTIO_MUTUAL' }).transport_socket as Msg).typed_config as Msg;
    const common = t.common_tls_context as Msg;
    expect((common.tls_certificate_sds_secret_configs as Msg[])[0]!.name).toBe('default');
    expect((common.combined_validation_context as Msg).default_validation_context).toEqual({
      match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/default/sa/echo' } }],
    });
    expect(t.sni).toBe('outbound_.8080_._.echo.default.svc.cluster.local');
  });
  it('DISABLE: no transport socket; unset: auto mTLS by transport_socket_matches', () => {
    const d = cluster({ mode: 'DISABLE' });
    expect(d.transport_socket).toBeUndefined();
    expect(d.transport_socket_matches).toBeUndefined();
    const auto = get(run(echo).clusters, C);
    expect((auto.transport_socket_matches as Msg[]).map((m) => m.name)).toEqual(['tlsMode-istio', 'tlsMode-disabled']);
  });
  it('SIMPLE and MUTUAL', () => {
    const s = (cluster({ mode: 'SIMPLE', sni: 'echo.example.com', caCertificates: '/etc/ca.pem' }).transport_socket as Msg).typed_config as Msg;
    expect(s).toMatchObject({ sni: 'echo.example.com', common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/ca.pem' } } } });
    const m = (cluster({ mode: 'MUTUAL', credentialName: 'echo-client' }).transport_socket as Msg).typed_config as Msg;
    expect(JSON.stringify(m)).toContain('kubernetes://echo-client');
    expect(JSON.stringify(m)).toContain('kubernetes://echo-client-cacert');
  });
});

describe('DestinationRule traffic policy', () => {
  it('connectionPool → circuit breakers, outlierDetection, consistent hash → RING_HASH + route hash_policy', () => {
    const r = run([
      ...echo,
      obj('DestinationRule', 'echo', {
        host: 'echo',
        trafficPolicy: {
          connectionPool: { tcp: { maxConnections: 10 }, http: { http2MaxRequests: 20, maxRetries: 2 } },
          outlierDetection: { consecutive5xxErrors: 3, interval: '5s', baseEjectionTime: '1m', maxEjectionPercent: 30 },
          loadBalancer: { consistentHash: { httpCookie: { name: 'u', ttl: '10s' } } },
        },
      }),
    ]);
    const c = get(r.clusters, C);
    expect(c.circuit_breakers).toEqual({ thresholds: [{ max_connections: { value: 10 }, max_pending_requests: { value: 4294967295 }, max_requests: { value: 20 }, max_retries: { value: 2 } }] });
    expect(c.outlier_detection).toEqual({ consecutive_5xx: { value: 3 }, enforcing_consecutive_5xx: { value: 100 }, interval: { seconds: 5 }, base_ejection_time: { seconds: 60 }, max_ejection_percent: { value: 30 } });
    expect(c.lb_policy).toBe('RING_HASH');
    const route = ((get(r.routes, '8080').virtual_hosts as Msg[]).find((v) => v.name === 'echo.default.svc.cluster.local:8080')!.routes as Msg[])[0]!;
    expect((route.route as Msg).hash_policy).toEqual([{ cookie: { name: 'u', ttl: { seconds: 10 } } }]);
  });
  it('LEAST_REQUEST and RANDOM map for sidecars', () => {
    const lb = (simple: string) => get(run([...echo, obj('DestinationRule', 'echo', { host: 'echo', trafficPolicy: { loadBalancer: { simple } } })]).clusters, C).lb_policy;
    expect([lb('LEAST_REQUEST'), lb('LEAST_CONN'), lb('RANDOM'), lb('ROUND_ROBIN')]).toEqual(['LEAST_REQUEST', 'LEAST_REQUEST', 'RANDOM', 'ROUND_ROBIN']);
  });
  const withPolicy = (trafficPolicy: Record<string, unknown>, proxy = sidecar()) => get(run([...echo, obj('DestinationRule', 'echo', { host: 'echo', trafficPolicy })], proxy).clusters, C);
  const httpOptions = (c: Msg) => (c.typed_extension_protocol_options as Record<string, Msg>)['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']!;
  it('warmup → slow start on ROUND_ROBIN and LEAST_REQUEST (Istio defaults: aggression 1, minimum 10%); none for RANDOM or proxyless', () => {
    expect(withPolicy({ loadBalancer: { simple: 'ROUND_ROBIN', warmupDurationSecs: '60s' } }).round_robin_lb_config).toEqual({
      slow_start_config: { slow_start_window: { seconds: 60 }, aggression: { default_value: 1, runtime_key: 'upstream.slow_start.aggression' }, min_weight_percent: { value: 10 } },
    });
    expect(withPolicy({ loadBalancer: { simple: 'LEAST_REQUEST', warmup: { duration: '1.5s', minimumPercent: 40, aggression: 2 } } }).least_request_lb_config).toEqual({
      slow_start_config: { slow_start_window: { seconds: 1, nanos: 500000000 }, aggression: { default_value: 2, runtime_key: 'upstream.slow_start.aggression' }, min_weight_percent: { value: 40 } },
    });
    // No simple LB given: ROUND_ROBIN, so warmup applies.
    expect(withPolicy({ loadBalancer: { warmupDurationSecs: '5s' } }).round_robin_lb_config).toBeDefined();
    const random = withPolicy({ loadBalancer: { simple: 'RANDOM', warmupDurationSecs: '60s' } });
    expect([random.round_robin_lb_config, random.least_request_lb_config]).toEqual([undefined, undefined]);
    expect(withPolicy({ loadBalancer: { simple: 'ROUND_ROBIN', warmupDurationSecs: '60s' } }, proxyless).round_robin_lb_config).toBeUndefined();
  });
  it('tcpKeepalive → upstream_connection_options (whole seconds); maxConnectionDuration → common HTTP options', () => {
    const c = withPolicy({ connectionPool: { tcp: { tcpKeepalive: { probes: 4, time: '2h', interval: '1500ms' }, maxConnectionDuration: '30m' } } });
    expect(c.upstream_connection_options).toEqual({ tcp_keepalive: { keepalive_probes: { value: 4 }, keepalive_time: { value: 7200 }, keepalive_interval: { value: 2 } } });
    expect(httpOptions(c).common_http_protocol_options).toEqual({ max_connection_duration: { seconds: 1800 } });
    expect(withPolicy({ connectionPool: { tcp: { tcpKeepalive: {} } } }).upstream_connection_options).toEqual({ tcp_keepalive: {} });
  });
  it('HTTP/2: maxConcurrentStreams and http2KeepAlive (timeout defaults to 20s); useClientProtocol follows the downstream protocol', () => {
    const h2 = withPolicy({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', maxConcurrentStreams: 64, http2KeepAlive: { interval: '10s' } } } });
    expect(httpOptions(h2).explicit_http_config).toEqual({ http2_protocol_options: { allow_connect: true, max_concurrent_streams: { value: 64 }, connection_keepalive: { interval: { seconds: 10 }, timeout: { seconds: 20 } } } });
    const client = withPolicy({ connectionPool: { http: { useClientProtocol: true } } });
    expect(httpOptions(client).use_downstream_protocol_config).toEqual({ http_protocol_options: {}, http2_protocol_options: { allow_connect: true } });
    expect(httpOptions(client).explicit_http_config).toBeUndefined();
  });
  it('outlierDetection.minHealthPercent → healthy_panic_threshold', () => {
    expect(withPolicy({ outlierDetection: { consecutive5xxErrors: 5, minHealthPercent: 25 } }).common_lb_config).toEqual({ healthy_panic_threshold: { value: 25 } });
    expect(withPolicy({ outlierDetection: { consecutive5xxErrors: 5 } }).common_lb_config).toBeUndefined();
  });
});

describe('VirtualService HTTP routes', () => {
  const routesOf = (http: unknown[]) => {
    const r = run([...echo, obj('VirtualService', 'echo', { hosts: ['echo'], http })]);
    return (get(r.routes, '8080').virtual_hosts as Msg[]).find((v) => v.name === 'echo.default.svc.cluster.local:8080')!.routes as Msg[];
  };
  it('matches: regex uri, withoutHeaders, authority; prefix rewrite', () => {
    const [route] = routesOf([{ match: [{ uri: { regex: '/v[0-9]' }, withoutHeaders: { 'x-skip': {} }, authority: { prefix: 'echo' } }], rewrite: { uri: '/new' }, route: [{ destination: { host: 'echo' } }] }]);
    expect(route!.match).toEqual({
      safe_regex: { regex: '/v[0-9]' },
      headers: [
        { name: 'x-skip', present_match: true, invert_match: true },
        { name: ':authority', string_match: { prefix: 'echo' } },
      ],
    });
    expect((route!.route as Msg).regex_rewrite).toEqual({ pattern: { regex: '.*' }, substitution: '/new' });
  });
  it('match port 0 is no port condition (proto3 unset, as Istio reads it); another port drops the match; relative weights pass through', () => {
    const routes = routesOf([
      { match: [{ port: 0, uri: { prefix: '' } }], route: [{ destination: { host: 'echo' }, weight: 30 }, { destination: { host: 'echo' }, weight: 30 }] },
      { match: [{ port: 9999, uri: { prefix: '/other-port' } }], route: [{ destination: { host: 'echo' } }] },
    ]);
    expect(routes.map((r) => r.match)).toEqual([{ prefix: '' }]);
    expect(((routes[0]!.route as Msg).weighted_clusters as Msg).clusters).toMatchObject([{ weight: { value: 30 } }, { weight: { value: 30 } }]);
  });
  it('redirect codes, direct responses, gRPC-status aborts, mirrors, attempts 0 disables retries', () => {
    const routes = routesOf([
      { match: [{ uri: { prefix: '/a' } }], redirect: { authority: 'b.example.com', redirectCode: 308 } },
      { match: [{ uri: { prefix: '/b' } }], directResponse: { status: 418, body: { bytes: 'aGk=' } } },
      { fault: { abort: { grpcStatus: 'UNAVAILABLE' } }, retries: { attempts: 0 }, mirrors: [{ destination: { host: 'echo' }, percentage: { value: 1.5 } }], route: [{ destination: { host: 'echo' } }] },
    ]);
    expect(routes[0]!.redirect).toEqual({ host_redirect: 'b.example.com', response_code: 'PERMANENT_REDIRECT' });
    expect(routes[1]!.direct_response).toEqual({ status: 418, body: { inline_bytes: 'aGk=' } });
    expect((routes[2]!.typed_per_filter_config as Msg)['envoy.filters.http.fault']).toMatchObject({ abort: { grpc_status: 14, percentage: { numerator: 1000000, denominator: 'MILLION' } } });
    expect((routes[2]!.route as Msg).retry_policy).toBeUndefined();
    expect((routes[2]!.route as Msg).request_mirror_policies).toEqual([{ cluster: C, runtime_fraction: { default_value: { numerator: 15000, denominator: 'MILLION' } } }]);
  });
});

describe('delegate VirtualServices', () => {
  const objects = [
    ...echo,
    svc('api', 'team'),
    obj('VirtualService', 'echo', { hosts: ['echo'], http: [{ match: [{ uri: { prefix: '/api' } }], delegate: { name: 'api', namespace: 'team' }, timeout: '3s' }, { route: [{ destination: { host: 'echo' } }] }] }),
    obj('VirtualService', 'api', { http: [{ match: [{ uri: { prefix: '/api/v1' } }], route: [{ destination: { host: 'api' } }] }, { match: [{ uri: { prefix: '/other' } }], route: [{ destination: { host: 'api' } }] }] }, 'team'),
  ];
  const api = 'outbound|8080||api.team.svc.cluster.local';

  it("sidecars route the root's host with the delegate's routes narrowed by the root match, the root timeout, the delegate's hosts in its namespace", () => {
    const vh = (get(run(objects).routes, '8080').virtual_hosts as Msg[]).find((v) => v.name === 'echo.default.svc.cluster.local:8080')!;
    const routes = vh.routes as Msg[];
    expect(routes.map((r) => [r.match, (r.route as Msg).cluster, (r.route as Msg).timeout])).toEqual([
      [{ prefix: '/api/v1' }, api, { seconds: 3 }],
      [{ prefix: '/' }, C, { seconds: 0 }],
    ]);
  });

  it('gateways serve a gateway-bound root with its delegate merged (a delegate in another namespace, exported to the root)', () => {
    const router = parseNode({ id: 'router~10.0.0.30~gw.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' } } });
    const r = run(
      [
        ...echo,
        svc('api', 'team'),
        obj('Gateway', 'gw', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] }),
        obj('VirtualService', 'edge', { hosts: ['app.example.com'], gateways: ['gw'], http: [{ match: [{ uri: { prefix: '/api' }, headers: { 'x-team': { exact: 'a' } } }], delegate: { name: 'api', namespace: 'team' } }] }),
        obj('VirtualService', 'api', { exportTo: ['default'], http: [{ match: [{ uri: { exact: '/api/v1' } }], route: [{ destination: { host: 'api' } }] }] }, 'team'),
      ],
      router,
    );
    const vh = r.routes.flatMap((x) => x.resource.virtual_hosts as Msg[]).find((v) => (v.domains as string[]).includes('app.example.com'))!;
    const routes = vh.routes as Msg[];
    expect(routes.map((x) => [x.match, (x.route as Msg).cluster])).toEqual([[{ path: '/api/v1', headers: [{ name: 'x-team', string_match: { exact: 'a' } }] }, api]]);
  });

  it('gRPC clients get the same merged routes', () => {
    const routes = (get(run(objects, proxyless).routes, C).virtual_hosts as Msg[])[0]!.routes as Msg[];
    expect(routes.map((r) => [r.match, (r.route as Msg).cluster])).toEqual([
      [{ prefix: '/api/v1' }, api],
      [{ prefix: '/' }, C],
    ]);
  });
});

describe('VirtualService corsPolicy and statPrefix', () => {
  const cors = { allowOrigins: [{ prefix: 'https://app.' }], allowOrigin: ['https://legacy.example'], allowMethods: ['GET', 'PUT'], allowHeaders: ['x-a'], maxAge: '90s', allowCredentials: false, unmatchedPreflights: 'FORWARD' };
  const objects = [...echo, obj('VirtualService', 'echo', { hosts: ['echo'], http: [{ match: [{ uri: { prefix: '/a' }, statPrefix: 'echo_a' }], corsPolicy: cors, route: [dest()] }] })];
  const routeOf = (r: XdsResources) => ((get(r.routes, '8080').virtual_hosts as Msg[]).find((v) => v.name === 'echo.default.svc.cluster.local:8080')!.routes as Msg[])[0]!;
  function dest() {
    return { destination: { host: 'echo' } };
  }

  it('a per-route CorsPolicy for the CORS filter, which every outbound HCM runs before fault and router', () => {
    const r = run(objects);
    const route = routeOf(r);
    expect(route.stat_prefix).toBe('echo_a');
    expect((route.typed_per_filter_config as Msg)['envoy.filters.http.cors']).toEqual({
      '@type': ExtensionTypeUrl.CorsPolicy,
      allow_origin_string_match: [{ prefix: 'https://app.' }, { exact: 'https://legacy.example' }],
      allow_methods: 'GET,PUT',
      allow_headers: 'x-a',
      max_age: '90',
      allow_credentials: { value: false },
      forward_not_matching_preflights: { value: true },
    });
    const hcm = ((get(r.listeners, '0.0.0.0_8080').filter_chains as Msg[])[0]!.filters as Msg[])[0]!.typed_config as Msg;
    expect((hcm.http_filters as Msg[]).map((f) => f.name).slice(-3)).toEqual(['envoy.filters.http.cors', 'envoy.filters.http.fault', 'envoy.filters.http.router']);
  });

  it('gRPC clients have no CORS filter: no policy, a problem instead', () => {
    const r = run(objects, proxyless);
    const routes = (get(r.routes, C).virtual_hosts as Msg[]).flatMap((v) => v.routes as Msg[]);
    expect(JSON.stringify(routes)).not.toContain('cors');
    expect(r.problems.some((p) => p.includes('gRPC clients have no CORS filter'))).toBe(true);
  });
});

describe('a single destination with its own header operations', () => {
  it('keeps them on a one-cluster weighted_clusters (weight 100)', () => {
    const vs = obj('VirtualService', 'echo', { hosts: ['echo'], http: [{ route: [{ destination: { host: 'echo' }, headers: { request: { set: { 'x-dest': 'echo' } } } }] }] });
    const route = ((get(run([...echo, vs]).routes, '8080').virtual_hosts as Msg[]).find((v) => v.name === 'echo.default.svc.cluster.local:8080')!.routes as Msg[])[0]!;
    const action = route.route as Msg;
    expect(action.cluster).toBeUndefined();
    expect(action.weighted_clusters).toEqual({
      clusters: [{ name: C, weight: { value: 100 }, request_headers_to_add: [{ header: { key: 'x-dest', value: 'echo' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] }],
    });
  });
});

describe('ServiceEntry DNS resolution', () => {
  const external = (name: string, spec: Record<string, unknown>) =>
    obj('ServiceEntry', name, { hosts: [`${name}.example.com`], location: 'MESH_EXTERNAL', ports: [{ number: 443, name: 'tls', protocol: 'TLS' }], ...spec });
  const objects = [
    ...echo,
    external('api', { resolution: 'DNS' }),
    external('lb', { resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'lb-1.example.net', ports: { tls: 8443 }, locality: 'eu/eu-1' }] }),
    external('mixed', { resolution: 'DNS', endpoints: [{ address: '192.0.2.7' }, { address: 'backup.example.net', weight: 2 }] }),
  ];

  it('DNS: a STRICT_DNS cluster resolving the host itself; no EDS resource', () => {
    const r = run(objects);
    const c = get(r.clusters, 'outbound|443||api.example.com');
    expect(c).toMatchObject({ type: 'STRICT_DNS', dns_lookup_family: 'V4_ONLY' });
    expect(c.eds_cluster_config).toBeUndefined();
    const la = c.load_assignment as Msg;
    expect(((la.endpoints as Msg[])[0]!.lb_endpoints as Msg[]).map((e) => (e.endpoint as Msg).address)).toEqual([{ socket_address: { address: 'api.example.com', port_value: 443 } }]);
    expect(r.endpoints.some((e) => e.name === 'outbound|443||api.example.com')).toBe(false);
  });

  it('DNS_ROUND_ROBIN: a LOGICAL_DNS cluster with the hostname endpoint, its port and locality', () => {
    const c = get(run(objects).clusters, 'outbound|443||lb.example.com');
    expect(c.type).toBe('LOGICAL_DNS');
    const locality = ((c.load_assignment as Msg).endpoints as Msg[])[0]!;
    expect(locality.locality).toEqual({ region: 'eu', zone: 'eu-1' });
    expect(((locality.lb_endpoints as Msg[])[0]!.endpoint as Msg).address).toEqual({ socket_address: { address: 'lb-1.example.net', port_value: 8443 } });
  });

  it('DNS with IP and hostname endpoints keeps both, with their weights', () => {
    const c = get(run(objects).clusters, 'outbound|443||mixed.example.com');
    const eps = ((c.load_assignment as Msg).endpoints as Msg[]).flatMap((l) => l.lb_endpoints as Msg[]);
    expect(eps.map((e) => [((e.endpoint as Msg).address as { socket_address: { address: string } }).socket_address.address, e.load_balancing_weight])).toEqual([
      ['192.0.2.7', { value: 1 }],
      ['backup.example.net', { value: 2 }],
    ]);
  });

  it('gRPC clients get EDS with the IP endpoints only, and a problem for the hostnames', () => {
    const r = run(objects, proxyless);
    expect(get(r.clusters, 'outbound|443||mixed.example.com').type).toBe('EDS');
    const la = get(r.endpoints, 'outbound|443||mixed.example.com');
    expect(JSON.stringify(la)).not.toContain('backup.example.net');
    expect(r.problems.some((p) => p.includes('gRPC clients accept only IP endpoints'))).toBe(true);
  });
});

describe('scope: a proxy receives only what it can reach', () => {
  const objs = [...echo, svc('private', 'default', { exportTo: ['.'] }), svc('other', 'other'), svc('hidden', 'other', { exportTo: ['.'] })];
  const clusters = (objects: ModelObject[], p = sidecar()) => run(objects, p).clusters.map((c) => c.name).filter((n) => n.startsWith('outbound'));
  it('exportTo . keeps a service in its namespace', () => {
    expect(clusters(objs)).toEqual(['outbound|8080||echo.default.svc.cluster.local', 'outbound|8080||other.other.svc.cluster.local', 'outbound|8080||private.default.svc.cluster.local']);
    expect(clusters(objs, sidecar('10.9.9.9', {}, 'other'))).toEqual(['outbound|8080||echo.default.svc.cluster.local', 'outbound|8080||hidden.other.svc.cluster.local', 'outbound|8080||other.other.svc.cluster.local']);
  });
  it('a Sidecar egress narrows it further', () => {
    expect(clusters([...objs, obj('Sidecar', 'default', { egress: [{ hosts: ['./*'] }] })])).toEqual(['outbound|8080||echo.default.svc.cluster.local', 'outbound|8080||private.default.svc.cluster.local']);
    expect(clusters([...objs, obj('Sidecar', 'default', { egress: [{ hosts: ['other/other.other.svc.cluster.local'] }] })])).toEqual(['outbound|8080||other.other.svc.cluster.local']);
  });
});

describe('AuthorizationPolicy → RBAC', () => {
  const filters = (policies: ModelObject[]) => {
    const l = get(run([...echo, ...policies]).listeners, 'virtualInbound');
    const chain = (l.filter_chains as Msg[]).find((c) => String(c.name).startsWith('inbound_8080'))!;
    // The telemetry filter (peer workload → request metadata) always comes first; these tests are about RBAC.
    const all = ((chain.filters as Msg[])[0]!.typed_config as Msg).http_filters as Msg[];
    expect(all[0]!.name).toBe('envoy.filters.http.header_to_metadata');
    return all.slice(1).map((f) => ({ name: f.name, rules: (f.typed_config as Msg).rules as Msg }));
  };
  it('DENY filter before ALLOW filter, router last', () => {
    const f = filters([
      obj('AuthorizationPolicy', 'allow', { action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/web'] } }], to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }] }] }),
      obj('AuthorizationPolicy', 'deny', { action: 'DENY', rules: [{ to: [{ operation: { notPaths: ['/public'] } }], when: [{ key: 'request.headers[x-block]', values: ['1'] }] }] }),
    ]);
    expect(f.map((x) => x.name)).toEqual(['envoy.filters.http.rbac.DENY', 'envoy.filters.http.rbac', 'envoy.filters.http.router']);
    expect(f[1]!.rules).toEqual({
      action: 'ALLOW',
      policies: {
        'ns[default]-policy[allow]-rule[0]': {
          permissions: [{ and_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { url_path: { path: { prefix: '/api/' } } }] } }],
          principals: [{ authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/default/sa/web' } } }],
        },
      },
    });
    expect(f[0]!.rules.policies).toEqual({
      'ns[default]-policy[deny]-rule[0]': {
        permissions: [{ not_rule: { url_path: { path: { exact: '/public' } } } }],
        principals: [{ header: { name: 'x-block', string_match: { exact: '1' } } }],
      },
    });
  });
  it('an ALLOW policy without rules denies everything; a claim condition reads the verified JWT payload', () => {
    expect(filters([obj('AuthorizationPolicy', 'nothing', {})])[0]!.rules).toEqual({ action: 'ALLOW' });
    const claim = (value: Msg) => ({ sourced_metadata: { metadata_matcher: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: 'iss' }], value } } });
    expect(filters([obj('AuthorizationPolicy', 'jwt', { rules: [{ when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] })])[0]!.rules).toEqual({
      action: 'ALLOW',
      policies: {
        'ns[default]-policy[jwt]-rule[0]': {
          permissions: [{ any: true }],
          principals: [{ or_ids: { ids: [claim({ string_match: { exact: 'x' } }), claim({ list_match: { one_of: { string_match: { exact: 'x' } } } })] } }],
        },
      },
    });
  });
});

describe('VirtualService tcp routes', () => {
  const db = [
    svc('db', 'default', {}, { number: 5432, name: 'tcp', protocol: 'TCP' }),
    we('db-1', '10.0.0.5', { app: 'db', version: 'a' }),
    we('db-2', '10.0.0.6', { app: 'db', version: 'b' }),
    obj('DestinationRule', 'db', { host: 'db', subsets: [{ name: 'a', labels: { version: 'a' } }, { name: 'b', labels: { version: 'b' } }] }),
  ];
  const A = 'outbound|5432|a|db.default.svc.cluster.local';
  const B = 'outbound|5432|b|db.default.svc.cluster.local';
  const tcpProxy = (r: XdsResources, listener: string): Msg => {
    const chains = get(r.listeners, listener).filter_chains as Msg[];
    return (chains[0]!.filters as Msg[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy')!.typed_config as Msg;
  };
  const route = (a: number, b: number) => [{ destination: { host: 'db', subset: 'a' }, weight: a }, { destination: { host: 'db', subset: 'b' }, weight: b }];

  it('a sidecar TCP port: weighted_clusters; a weight-0 destination gets no cluster (TcpProxy weights are at least 1)', () => {
    expect(tcpProxy(run([...db, obj('VirtualService', 'db', { hosts: ['db'], tcp: [{ route: route(60, 40) }] })]), '0.0.0.0_5432').weighted_clusters).toEqual({ clusters: [{ name: A, weight: 60 }, { name: B, weight: 40 }] });
    const zero = tcpProxy(run([...db, obj('VirtualService', 'db', { hosts: ['db'], tcp: [{ route: route(100, 0) }] })]), '0.0.0.0_5432');
    expect(zero.cluster).toBe(A);
    expect(zero.weighted_clusters).toBeUndefined();
  });

  it('matches are decided at generation time: another port or other source labels fall through to the next route, none to the service', () => {
    const vs = obj('VirtualService', 'db', {
      hosts: ['db'],
      tcp: [
        { match: [{ port: 9999 }], route: [{ destination: { host: 'db', subset: 'b' } }] },
        { match: [{ sourceLabels: { app: 'echo' } }], route: [{ destination: { host: 'db', subset: 'a' } }] },
      ],
    });
    expect(tcpProxy(run([...db, vs]), '0.0.0.0_5432').cluster).toBe(A);
    expect(tcpProxy(run([...db, vs], sidecar('10.0.0.9', { app: 'other' })), '0.0.0.0_5432').cluster).toBe('outbound|5432||db.default.svc.cluster.local');
  });

  it('a router port with TCP and plain HTTP servers keeps HTTP and says why', () => {
    const router = parseNode({ id: 'router~10.0.0.30~gw.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', LABELS: { istio: 'ingressgateway' } } });
    const r = run(
      [
        ...db,
        ...echo,
        obj('Gateway', 'gw', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 7000, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] }, { port: { number: 7000, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] }),
        obj('VirtualService', 'edge', { hosts: ['*'], gateways: ['gw'], tcp: [{ route: route(50, 50) }], http: [{ route: [{ destination: { host: 'echo' } }] }] }),
      ],
      router,
    );
    expect(r.problems).toContain('port 7000: TCP servers (tcp) share the port with HTTP servers without TLS; HTTP wins');
    const chains = get(r.listeners, '0.0.0.0_7000').filter_chains as Msg[];
    expect(chains.map((c) => (c.filters as Msg[]).at(-1)!.name)).toEqual(['envoy.filters.network.http_connection_manager']);
  });
});
