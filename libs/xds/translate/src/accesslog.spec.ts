import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type Endpoint, type ModelObject } from '@aviary/mesh-model';
import { ALS_CLUSTER, ALS_LOG_NAME, endpointMetadata, istioWorkloadValue, workloadNameOf } from './accesslog';
import { translate } from './translate';

const goldenDir = join(import.meta.dirname, '__golden__');
type Golden = Record<'listeners' | 'routes' | 'clusters' | 'endpoints', { name: string; resource: Record<string, unknown> }[]>;
const golden = (name: string): Golden => JSON.parse(readFileSync(join(goldenDir, `bookinfo.${name}.json`), 'utf8')) as Golden;
const envoyProxies = ['router', 'sidecar-productpage', 'sidecar-reviews'];

/** Every terminal network filter (HCM, TCP proxy; not the network RBAC before them) of every listener, with the listener and chain names. */
function networkFilters(g: Golden): { listener: string; chain: string; filter: Record<string, unknown> }[] {
  return g.listeners.flatMap((l) =>
    ((l.resource.filter_chains ?? []) as { name?: string; filters: Record<string, unknown>[] }[]).flatMap((c) =>
      c.filters.filter((filter) => filter.name !== 'envoy.filters.network.rbac').map((filter) => ({ listener: l.name, chain: c.name ?? '', filter })),
    ),
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

  it('outbound clusters say how they originate TLS and the principal their endpoints share; endpoints carry Istio workload metadata', () => {
    const g = golden('sidecar-productpage');
    const reviews = g.clusters.find((c) => c.name === 'outbound|9080|v1|reviews.default.svc.cluster.local')!;
    expect(reviews.resource.metadata).toEqual({
      filter_metadata: {
        aviary: { fields: { tls: { string_value: expect.stringMatching(/^(AUTO|ISTIO_MUTUAL)$/) }, principal: { string_value: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' } } },
      },
    });
    const cla = g.endpoints.find((c) => c.name === 'outbound|9080|v1|reviews.default.svc.cluster.local')!;
    const lb = (cla.resource.endpoints as { lb_endpoints: { metadata: unknown }[] }[])[0]!.lb_endpoints[0]!;
    expect(lb.metadata).toEqual({
      filter_metadata: {
        istio: { fields: { workload: { string_value: 'reviews-v1;default;reviews;v1;' } } },
        'envoy.transport_socket_match': { fields: { tlsMode: { string_value: 'istio' } } },
      },
    });
    for (const name of envoyProxies) {
      for (const log of networkFilters(golden(name)).flatMap(({ listener, filter }) => (listener === 'virtualInbound' ? [] : ((filter.typed_config as { access_log: Parameters<typeof tagsOf>[0][] }).access_log ?? [])))) {
        expect(tagsOf(log).upstream_principal?.metadata).toEqual({ kind: { host: {} }, metadata_key: { key: 'aviary', path: [{ key: 'principal' }] } });
        expect(tagsOf(log).upstream_cluster_principal?.metadata).toEqual({ kind: { cluster: {} }, metadata_key: { key: 'aviary', path: [{ key: 'principal' }] } });
      }
    }
  });

  it('keeps the principal on each endpoint when a cluster\'s endpoints do not share one', () => {
    const se = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'db', namespace: 'data' }, spec: { hosts: ['db.data.svc.cluster.local'], location: 'MESH_INTERNAL', ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }], resolution: 'STATIC', workloadSelector: { labels: { app: 'db' } } } };
    const we = (name: string, address: string, serviceAccount?: string) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name, namespace: 'data' },
      spec: { address, labels: { app: 'db' }, ...(serviceAccount && { serviceAccount }) },
    });
    const client = parseNode({ id: 'sidecar~10.0.9.9~client.data~data.svc.cluster.local', metadata: { NAMESPACE: 'data' } });
    const principals = (objects: ModelObject[]) => {
      const out = translate(client, buildSnapshot(objects, { trustDomain: 'td' }));
      const cluster = out.clusters.find((c) => c.name === 'outbound|5432||db.data.svc.cluster.local')!.resource as { metadata: { filter_metadata: { aviary: { fields: Record<string, { string_value: string }> } } } };
      const cla = out.endpoints.find((c) => c.name === 'outbound|5432||db.data.svc.cluster.local')!.resource as { endpoints: { lb_endpoints: { metadata: { filter_metadata: Record<string, { fields: Record<string, { string_value: string }> }> } }[] }[] };
      return {
        cluster: cluster.metadata.filter_metadata.aviary.fields['principal']?.string_value,
        endpoints: cla.endpoints.flatMap((l) => l.lb_endpoints.map((e) => e.metadata.filter_metadata['aviary']?.fields['principal']?.string_value)),
      };
    };
    expect(principals([se, we('db-0', '10.0.0.1', 'db'), we('db-1', '10.0.0.2', 'db')])).toEqual({ cluster: 'spiffe://td/ns/data/sa/db', endpoints: [undefined, undefined] });
    expect(principals([se, we('db-0', '10.0.0.1', 'db'), we('db-1', '10.0.0.2', 'backup')])).toEqual({ cluster: undefined, endpoints: ['spiffe://td/ns/data/sa/db', 'spiffe://td/ns/data/sa/backup'] });
    // One without a service account: the cluster names none, or the access log would give it the others'.
    expect(principals([se, we('db-0', '10.0.0.1', 'db'), we('db-1', '10.0.0.2')])).toEqual({ cluster: undefined, endpoints: ['spiffe://td/ns/data/sa/db', undefined] });
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

  it('leaves the principal to the cluster when the cluster carries it', () => {
    const e = { ...base, identity: 'spiffe://td/ns/shop/sa/cart' };
    expect(endpointMetadata(e).filter_metadata).toHaveProperty('aviary', { fields: { principal: { string_value: 'spiffe://td/ns/shop/sa/cart' } } });
    expect(endpointMetadata(e, true).filter_metadata).not.toHaveProperty('aviary');
  });
});

// envoy --mode validate over every golden (these access logs included): envoy-validate.spec.ts.
