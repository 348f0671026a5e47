import type { V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import { SnapshotBuilder } from '@aviary/mesh-model';
import { describe, expect, it } from 'vitest';
import { servicePortProtocol, translateRegistry, type RegistryInput } from './registry-translate';

const svc: V1Service = {
  metadata: { name: 'reviews', namespace: 'shop', annotations: { 'networking.istio.io/exportTo': '., istio-system' } },
  spec: {
    clusterIP: '10.0.0.12',
    clusterIPs: ['10.0.0.12'],
    selector: { app: 'reviews' },
    ports: [
      { name: 'http-web', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'rpc', port: 9090, targetPort: 'grpc', appProtocol: 'grpc', protocol: 'TCP' },
    ],
  },
};

function pod(name: string, ip: string, labels: Record<string, string>, node = 'node-a'): V1Pod {
  return { metadata: { name, namespace: 'shop', labels, resourceVersion: '1' }, spec: { nodeName: node, serviceAccountName: 'reviews-sa', containers: [] }, status: { podIP: ip } };
}

const slice: V1EndpointSlice = {
  metadata: { name: 'reviews-abc', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'reviews' } },
  addressType: 'IPv4',
  ports: [
    { name: 'http-web', port: 8080, protocol: 'TCP' },
    { name: 'rpc', port: 7070, protocol: 'TCP' },
  ],
  endpoints: [
    { addresses: ['10.1.0.5'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'reviews-v1-x', namespace: 'shop' } },
    { addresses: ['10.1.0.6'], conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'reviews-v2-y', namespace: 'shop' } },
    { addresses: ['10.1.0.7'], targetRef: { kind: 'Pod', name: 'reviews-v2-z', namespace: 'shop' } },
  ],
};

const node: V1Node = { metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/region': 'eu-west', 'topology.kubernetes.io/zone': 'eu-west-1a' } } };

function input(over: Partial<RegistryInput> = {}): RegistryInput {
  const pods = [pod('reviews-v1-x', '10.1.0.5', { app: 'reviews', version: 'v1' }), pod('reviews-v2-y', '10.1.0.6', { app: 'reviews', version: 'v2' }), pod('reviews-v2-z', '10.1.0.7', { app: 'reviews', version: 'v2' }, 'node-b')];
  return {
    services: [svc],
    endpointSlices: [slice],
    pods: new Map(pods.map((p) => [`shop/${p.metadata!.name}`, p])),
    nodes: new Map([['node-a', node]]),
    ...over,
  };
}

describe('translateRegistry', () => {
  it('turns a Service into a STATIC ServiceEntry and ready Pod endpoints into WorkloadEntries', () => {
    const out = translateRegistry(input(), 'cluster.local');
    expect(out.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'ServiceEntry/shop/k8s-service.reviews',
      'WorkloadEntry/shop/k8s-pod.reviews-v1-x',
      'WorkloadEntry/shop/k8s-pod.reviews-v2-z',
    ]);
    expect(out[0]!.spec).toEqual({
      hosts: ['reviews.shop.svc.cluster.local'],
      addresses: ['10.0.0.12'],
      ports: [
        { number: 80, name: 'http-web', protocol: 'HTTP', targetPort: 8080 },
        { number: 9090, name: 'rpc', protocol: 'GRPC' },
      ],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      workloadSelector: { labels: { app: 'reviews' } },
      exportTo: ['.', 'istio-system'],
    });
    expect(out[1]!.spec).toEqual({
      address: '10.1.0.5',
      ports: { 'http-web': 8080, rpc: 7070 },
      labels: { app: 'reviews', version: 'v1' },
      serviceAccount: 'reviews-sa',
      locality: 'eu-west/eu-west-1a',
    });
    // Node unknown: no locality.
    expect(out[2]!.spec).not.toHaveProperty('locality');
  });

  it('feeds the mesh model: endpoints with identities and localities, subsets by pod labels', () => {
    const b = new SnapshotBuilder({ trustDomain: 'cluster.local' });
    for (const object of translateRegistry(input(), 'cluster.local')) b.apply({ op: 'created', ref: { kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name }, object });
    const snap = b.build().snapshot;
    const eps = snap.endpoints.forServicePort('reviews.shop.svc.cluster.local', 9090);
    expect(eps.map((e) => [e.address, e.port, e.identity, e.locality.zone])).toEqual([
      ['10.1.0.5', 7070, 'spiffe://cluster.local/ns/shop/sa/reviews-sa', 'eu-west-1a'],
      ['10.1.0.7', 7070, 'spiffe://cluster.local/ns/shop/sa/reviews-sa', ''],
    ]);
  });

  it('gives selector-less Services inline endpoints and skips ExternalName and FQDN slices', () => {
    const manual: V1Service = { metadata: { name: 'legacy', namespace: 'shop' }, spec: { clusterIP: 'None', ports: [{ port: 5432, protocol: 'TCP' }] } };
    const ext: V1Service = { metadata: { name: 'ext', namespace: 'shop' }, spec: { type: 'ExternalName', externalName: 'db.example.org' } };
    const manualSlice: V1EndpointSlice = {
      metadata: { name: 'legacy-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'legacy' } },
      addressType: 'IPv4',
      ports: [{ name: '', port: 5432 }],
      endpoints: [{ addresses: ['192.168.1.9'], zone: 'z1' }],
    };
    const fqdn: V1EndpointSlice = { metadata: { name: 'ext-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'ext' } }, addressType: 'FQDN', endpoints: [{ addresses: ['db.example.org'] }] };
    const out = translateRegistry(input({ services: [manual, ext], endpointSlices: [manualSlice, fqdn] }), 'cluster.local');
    expect(out).toHaveLength(1);
    expect(out[0]!.spec).toEqual({
      hosts: ['legacy.shop.svc.cluster.local'],
      ports: [{ number: 5432, name: 'port-5432', protocol: 'TCP' }],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      endpoints: [{ address: '192.168.1.9', ports: { 'port-5432': 5432 }, locality: '/z1' }],
    });
  });

  it('gives a selector-less Service the Pods its hand-made slices name, as inline endpoints (Gateway API HTTPRouteServiceTypes)', () => {
    // The conformance suite's manual-endpointslices: no selector, one slice per IP family naming the Pods of another Service.
    const manual: V1Service = { metadata: { name: 'manual', namespace: 'shop' }, spec: { clusterIP: '10.0.0.40', ports: [{ name: 'first-port', port: 8080, targetPort: 8080, protocol: 'TCP' }] } };
    const headless: V1Service = { metadata: { name: 'manual-headless', namespace: 'shop' }, spec: { clusterIP: 'None', ports: [{ name: 'first-port', port: 8080, targetPort: 8080, protocol: 'TCP' }] } };
    const handMade = (name: string, service: string, addressType: string, ips: readonly string[]): V1EndpointSlice => ({
      metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': service } },
      addressType,
      ports: [{ name: 'first-port', port: 8080, protocol: 'TCP' }],
      endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: 'node-a', targetRef: { kind: 'Pod', name: ip === '10.1.0.5' ? 'reviews-v1-x' : 'reviews-v2-z', namespace: 'shop' } })),
    });
    const slices = [slice, handMade('manual-ip4', 'manual', 'IPv4', ['10.1.0.5', '10.1.0.7']), handMade('manual-ip6', 'manual', 'IPv6', []), handMade('manual-headless-ip4', 'manual-headless', 'IPv4', ['10.1.0.5'])];
    const out = translateRegistry(input({ services: [svc, manual, headless], endpointSlices: slices }), 'cluster.local');
    const byName = new Map(out.map((o) => [`${o.kind}/${o.metadata.name}`, o.spec as Record<string, unknown>]));
    expect(byName.get('ServiceEntry/k8s-service.manual')!['endpoints']).toEqual([
      { address: '10.1.0.5', ports: { 'first-port': 8080 }, labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'reviews-sa', locality: 'eu-west/eu-west-1a' },
      { address: '10.1.0.7', ports: { 'first-port': 8080 }, labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'reviews-sa' },
    ]);
    expect(byName.get('ServiceEntry/k8s-service.manual')).not.toHaveProperty('workloadSelector');
    // The Pods' WorkloadEntries keep only the ports of the Service that selects them.
    expect(byName.get('WorkloadEntry/k8s-pod.reviews-v1-x')!['ports']).toEqual({ 'http-web': 8080, rpc: 7070 });

    const b = new SnapshotBuilder({ trustDomain: 'cluster.local' });
    for (const object of out) b.apply({ op: 'created', ref: { kind: object.kind, namespace: object.metadata.namespace, name: object.metadata.name }, object });
    const snap = b.build().snapshot;
    const endpoints = (host: string) => snap.endpoints.forServicePort(host, 8080).map((e) => `${e.address}:${e.port} ${e.identity ?? ''}`);
    expect(endpoints('manual.shop.svc.cluster.local')).toEqual(['10.1.0.5:8080 spiffe://cluster.local/ns/shop/sa/reviews-sa', '10.1.0.7:8080 spiffe://cluster.local/ns/shop/sa/reviews-sa']);
    expect(endpoints('manual-headless.shop.svc.cluster.local')).toEqual(['10.1.0.5:8080 spiffe://cluster.local/ns/shop/sa/reviews-sa']);
  });

  it('is deterministic and ignores what does not shape config (resourceVersions, slice order)', () => {
    const a = translateRegistry(input(), 'cluster.local');
    const other = input();
    const reordered = { ...slice, metadata: { ...slice.metadata, resourceVersion: '99' }, endpoints: [...(slice.endpoints ?? [])].reverse() };
    const b = translateRegistry({ ...other, endpointSlices: [reordered] }, 'cluster.local');
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('maps appProtocol and port-name prefixes to protocols', () => {
    expect(servicePortProtocol({ name: 'web', appProtocol: 'kubernetes.io/h2c' })).toBe('HTTP2');
    expect(servicePortProtocol({ name: 'grpc-echo' })).toBe('GRPC');
    expect(servicePortProtocol({ name: 'http' })).toBe('HTTP');
    expect(servicePortProtocol({ name: 'db' })).toBe('TCP');
    expect(servicePortProtocol({ name: 'dns', protocol: 'UDP' })).toBe('UDP');
  });
});
