import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Endpoint } from '@aviary/mesh-model';
import { structToJs } from '@aviary/xds-protos';
import { ALS_CLUSTER, ALS_LOG_NAME, endpointMetadata, istioWorkloadValue, workloadNameOf } from './accesslog';

const goldenDir = join(import.meta.dirname, '__golden__');
type Golden = Record<'listeners' | 'routes' | 'clusters' | 'endpoints', { name: string; resource: Record<string, unknown> }[]>;
const golden = (name: string): Golden => JSON.parse(readFileSync(join(goldenDir, `bookinfo.${name}.json`), 'utf8')) as Golden;
const envoyProxies = ['router', 'sidecar-productpage', 'sidecar-reviews'];

/** Every network filter of every listener, with the listener and chain names. */
function networkFilters(g: Golden): { listener: string; chain: string; filter: Record<string, unknown> }[] {
  return g.listeners.flatMap((l) =>
    ((l.resource.filter_chains ?? []) as { name?: string; filters: Record<string, unknown>[] }[]).flatMap((c) => c.filters.map((filter) => ({ listener: l.name, chain: c.name ?? '', filter }))),
  );
}

type Tag = { tag: string; literal?: { value: string }; metadata?: unknown };
const tagsOf = (log: { typed_config: { common_config: { custom_tags: Tag[] } } }): Record<string, Tag> =>
  Object.fromEntries(log.typed_config.common_config.custom_tags.map((t) => [t.tag, t]));

describe('access log towards the agent (ALS)', () => {
  it.each(envoyProxies)('every HCM and TCP proxy of %s logs to aviary-als with the reporter of its direction', (name) => {
    const filters = networkFilters(golden(name));
    expect(filters.length).toBeGreaterThan(2);
    for (const { listener, chain, filter } of filters) {
      const config = filter.typed_config as { access_log?: { name: string; typed_config: { common_config: Record<string, unknown> & { custom_tags: Tag[] } } }[] };
      const logs = config.access_log ?? [];
      expect(logs, `${listener}/${chain}`).toHaveLength(1);
      const log = logs[0]!;
      const http = filter.name === 'envoy.filters.network.http_connection_manager';
      expect(log.name).toBe(http ? 'envoy.access_loggers.http_grpc' : 'envoy.access_loggers.tcp_grpc');
      expect(log.typed_config.common_config).toMatchObject({ log_name: ALS_LOG_NAME, transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: ALS_CLUSTER } } });
      const tags = tagsOf(log);
      const inbound = listener === 'virtualInbound';
      expect(tags.reporter?.literal?.value, `${listener}/${chain}`).toBe(inbound ? 'destination' : 'source');
      if (inbound && chain.startsWith('inbound_')) expect(tags.destination_service?.literal?.value).toMatch(/\.svc\.cluster\.local$/);
      if (!inbound) {
        expect(tags.upstream_workload?.metadata).toEqual({ kind: { host: {} }, metadata_key: { key: 'istio', path: [{ key: 'workload' }] } });
        expect(tags.upstream_tls?.metadata).toEqual({ kind: { cluster: {} }, metadata_key: { key: 'aviary', path: [{ key: 'tls' }] } });
      }
      if (http) {
        const hcm = filter.typed_config as Record<string, unknown> & { http_filters: { name: string; typed_config: { request_rules: { header: string }[] } }[] };
        expect(hcm.generate_request_id).toEqual({ value: true });
        expect(hcm.tracing).toEqual({
          provider: {
            name: 'envoy.tracers.opentelemetry',
            typed_config: { '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig', grpc_service: { envoy_grpc: { cluster_name: ALS_CLUSTER } }, service_name: 'aviary-proxy' },
          },
        });
        // The telemetry filter runs first: it sees the traceparent before the tracer rewrites it.
        expect(hcm.http_filters[0]!.name).toBe('envoy.filters.http.header_to_metadata');
        expect(hcm.http_filters[0]!.typed_config.request_rules.map((r) => r.header)).toEqual(inbound ? ['traceparent', 'x-aviary-peer-workload'] : ['traceparent']);
        expect(tags.parent_traceparent?.metadata).toEqual({ kind: { request: {} }, metadata_key: { key: 'aviary', path: [{ key: 'parent_traceparent' }] } });
        expect((log.typed_config as Record<string, unknown>).additional_request_headers_to_log).toContain('traceparent');
      }
    }
  });

  it('proxyless gRPC listeners have no access log, tracing or telemetry filter', () => {
    const text = JSON.stringify(golden('proxyless'));
    expect(text).not.toContain('access_log');
    expect(text).not.toContain('tracing');
    expect(text).not.toContain('header_to_metadata');
    expect(text).not.toContain('"workload"');
    expect(text).not.toContain('"aviary"');
  });

  it('outbound mesh virtual hosts and router route configurations name the calling workload from Envoy\'s environment', () => {
    const header = { header: { key: 'x-aviary-peer-workload', value: '%ENVIRONMENT(ISTIO_META_WORKLOAD_NAME)%' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
    const sidecar = golden('sidecar-productpage').routes.find((r) => r.name === '9080')!.resource as { virtual_hosts: { name: string; request_headers_to_add?: unknown[] }[] };
    expect(sidecar.virtual_hosts.find((v) => v.name === 'reviews.default.svc.cluster.local:9080')?.request_headers_to_add).toEqual([header]);
    expect(sidecar.virtual_hosts.find((v) => v.name === 'allow_any' || v.name === 'block_all')?.request_headers_to_add).toBeUndefined();
    for (const r of golden('router').routes) expect((r.resource as { request_headers_to_add?: unknown[] }).request_headers_to_add).toEqual([header]);
  });

  it('outbound clusters say how they originate TLS and endpoints carry Istio workload metadata', () => {
    const g = golden('sidecar-productpage');
    const reviews = g.clusters.find((c) => c.name === 'outbound|9080|v1|reviews.default.svc.cluster.local')!;
    expect(reviews.resource.metadata).toEqual({ filter_metadata: { aviary: { fields: { tls: { string_value: expect.stringMatching(/^(AUTO|ISTIO_MUTUAL)$/) } } } } });
    const cla = g.endpoints.find((c) => c.name === 'outbound|9080|v1|reviews.default.svc.cluster.local')!;
    const lb = (cla.resource.endpoints as { lb_endpoints: { metadata: unknown }[] }[])[0]!.lb_endpoints[0]!;
    expect(lb.metadata).toEqual({
      filter_metadata: {
        istio: { fields: { workload: { string_value: 'reviews-v1;default;reviews;v1;' } } },
        aviary: { fields: { principal: { string_value: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' } } },
        'envoy.transport_socket_match': { fields: { tlsMode: { string_value: 'istio' } } },
      },
    });
  });
});

describe('endpoint workload names', () => {
  const base: Endpoint = {
    address: '10.0.0.1',
    port: 80,
    servicePort: 80,
    labels: {},
    locality: { region: '', zone: '', subzone: '' },
    weight: 1,
    namespace: 'shop',
    tlsMode: 'disabled',
    source: 'WorkloadEntry/shop/cart-v1',
  };

  it('names a WorkloadEntry by its name', () => {
    expect(workloadNameOf(base)).toBe('cart-v1');
  });

  it("names a Kubernetes pod by its Deployment (the pod name without the pod-template-hash tail)", () => {
    expect(workloadNameOf({ ...base, source: 'WorkloadEntry/shop/k8s-pod.cart-v1-7d9f5c-x2x9q', labels: { 'pod-template-hash': '7d9f5c' } })).toBe('cart-v1');
    expect(workloadNameOf({ ...base, source: 'WorkloadEntry/shop/k8s-pod.db-0' })).toBe('db-0');
  });

  it('names a ServiceEntry inline endpoint by its app label', () => {
    expect(workloadNameOf({ ...base, source: 'ServiceEntry/shop/ext#0', labels: { app: 'ext' } })).toBe('ext');
    expect(workloadNameOf({ ...base, source: 'ServiceEntry/shop/ext#0' })).toBe('');
  });

  it('encodes Istio canonical labels before app/version and omits the principal without a service account', () => {
    const e = { ...base, labels: { app: 'cart', version: 'v1', 'service.istio.io/canonical-name': 'shop-cart', 'service.istio.io/canonical-revision': '2' } };
    expect(istioWorkloadValue(e)).toBe('cart-v1;shop;shop-cart;2;');
    expect(endpointMetadata(e)).toEqual({ filter_metadata: { istio: { fields: { workload: { string_value: 'cart-v1;shop;shop-cart;2;' } } } } });
  });
});

const envoy = process.env['AVIARY_ENVOY_PATH'] ?? join(homedir(), '.cache', 'aviary-envoy', '1.40.0', 'bin', 'envoy');
/**
 * Deprecations in pilot's output that another change removes (RegexMatcher.google_re2,
 * match_subject_alt_names); anything else Envoy warns about fails the test.
 */
const knownDeprecations = /RegexMatcher\.google_re2|match_subject_alt_names/;

/**
 * A static bootstrap holding a golden's listeners (RDS inlined) and clusters (EDS replaced by
 * the golden's load assignments, so endpoint metadata is checked too), plus the agent's
 * `sds-grpc` and `aviary-als` clusters on Unix sockets that need not exist for validation.
 */
function staticBootstrap(g: Golden, dir: string): Record<string, unknown> {
  const routes = new Map(g.routes.map((r) => [r.name, r.resource]));
  const eds = new Map(g.endpoints.map((e) => [e.name, e.resource]));
  const inline = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(inline);
    if (x === null || typeof x !== 'object') return x;
    const o = x as Record<string, unknown>;
    if (o.rds !== undefined) {
      const { rds, ...rest } = o;
      return inline({ ...rest, route_config: routes.get((rds as { route_config_name: string }).route_config_name) });
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, inline(v)]));
  };
  const h2 = { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', explicit_http_config: { http2_protocol_options: {} } } };
  const pipe = (name: string) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: join(dir, `${name}.sock`) } } } }] }] },
    typed_extension_protocol_options: h2,
  });
  // A JSON bootstrap spells google.protobuf.Struct as a plain object (the goldens hold the proto form).
  const structs = (x: unknown, key: string): unknown => {
    if (Array.isArray(x)) return x.map((v) => structs(v, key));
    if (x === null || typeof x !== 'object') return x;
    const entries = Object.entries(x as Record<string, unknown>);
    if (key === 'filter_metadata') return Object.fromEntries(entries.map(([k, v]) => [k, structToJs(v as Parameters<typeof structToJs>[0])]));
    return Object.fromEntries(entries.map(([k, v]) => [k, key === 'transport_socket_matches' && k === 'match' ? structToJs(v as Parameters<typeof structToJs>[0]) : structs(v, k)]));
  };
  const clusters = g.clusters.map(({ name, resource }) => {
    if (resource.type !== 'EDS') return structs(resource, '');
    const { eds_cluster_config: _eds, ...rest } = resource;
    return structs({ ...rest, type: 'STATIC', load_assignment: eds.get(name) ?? { cluster_name: name } }, '');
  });
  return {
    node: { id: 'sidecar~10.0.0.1~validate.default~default.svc.cluster.local', cluster: 'validate' },
    static_resources: { listeners: g.listeners.map((l) => inline(l.resource)), clusters: [...clusters, pipe('sds-grpc'), pipe(ALS_CLUSTER)] },
  };
}

describe.skipIf(!existsSync(envoy))('upstream Envoy accepts the golden output with access logs (envoy --mode validate)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aviary-als-validate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(envoyProxies)('%s: accepted with no new warning', async (name) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(staticBootstrap(golden(name), dir)));
    const { stdout, stderr } = await promisify(execFile)(envoy, ['--mode', 'validate', '-c', file, '--use-dynamic-base-id', '-l', 'warning'], { timeout: 30_000 });
    expect(stdout + stderr).toMatch(/configuration .* OK/);
    const warnings = stderr.split('\n').filter((l) => /\[(warning|error|critical)\]/.test(l) && !knownDeprecations.test(l));
    expect(warnings).toEqual([]);
  });
});
