import { describe, expect, it } from 'vitest';
import { parseNode, SnapshotBuilder, type ModelChangeEvent, type ModelObject, type SnapshotDelta } from '@aviary/mesh-model';
import { TypeUrl } from '@aviary/xds-api';
import { changeFor } from './index';

let revision = 0;
const created = (o: ModelObject): ModelChangeEvent => ({ op: 'created', ref: { kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name }, revision: ++revision, object: o });
const obj = (kind: string, name: string, spec: unknown): ModelObject => ({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace: 'default' }, spec });
const reviews = obj('ServiceEntry', 'reviews', { hosts: ['reviews.default.svc.cluster.local'], ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }], workloadSelector: { labels: { app: 'reviews' } } });
const we = (name: string, address: string) => obj('WorkloadEntry', name, { address, labels: { app: 'reviews' }, serviceAccount: 'reviews' });
const vs = (weight: number) => obj('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' }, weight }] }] });
const at = (ip: string) => parseNode({ id: `sidecar~${ip}~p.default~default.svc.cluster.local` });

function started() {
  const b = new SnapshotBuilder({ trustDomain: 'cluster.local' });
  b.applyAll([reviews, we('r1', '10.0.0.1'), vs(100)].map(created));
  return { b, first: b.build() };
}

describe('changeFor', () => {
  it('the first build and a config change are full pushes', () => {
    const { b, first } = started();
    expect(changeFor(first)).toEqual([{ reason: 'config' }]);
    b.apply(created(vs(50)));
    expect(changeFor(b.build())).toEqual([{ reason: 'config' }]);
  });

  it('a build that changed nothing pushes nothing', () => {
    const { b } = started();
    expect(changeFor(b.build())).toEqual([{ types: [], reason: 'endpoints' }]);
  });

  it('a new endpoint is an EDS-only change by name, plus everything for the proxies at its address', () => {
    const { b } = started();
    b.apply(created(we('r2', '10.0.0.2')));
    const [eds, inbound, ...rest] = changeFor(b.build());
    expect(rest).toEqual([]);
    expect(eds?.types).toEqual([TypeUrl.ClusterLoadAssignment]);
    expect(eds?.affects).toBeUndefined();
    // Both halves are endpoint changes: a debounce may push them on its leading edge, together.
    expect([eds?.reason, inbound?.reason]).toEqual(['endpoints', 'endpoints']);
    expect(eds?.names?.('outbound|9080||reviews.default.svc.cluster.local')).toBe(true);
    expect(eds?.names?.('outbound|9080|v1|reviews.default.svc.cluster.local')).toBe(true);
    expect(eds?.names?.('outbound|9080||ratings.default.svc.cluster.local')).toBe(false);
    expect(eds?.names?.('inbound|9080||')).toBe(false);
    expect(inbound?.types).toBeUndefined();
    expect(inbound?.affects?.(at('10.0.0.2'))).toBe(true);
    expect(inbound?.affects?.(at('10.0.0.1'))).toBe(false);
    expect(inbound?.affects?.(parseNode({ id: 'client-1', metadata: { GENERATOR: 'grpc' } }))).toBe(false);
  });

  it('endpoints that changed with no workload address: the EDS change alone', () => {
    const { b, first } = started();
    const delta: SnapshotDelta = { ...b.build(), previous: first.snapshot, endpointsChanged: ['reviews.default.svc.cluster.local'], affectedAddresses: [] };
    const changes = changeFor(delta);
    expect(changes).toHaveLength(1);
    expect(changes[0]?.types).toEqual([TypeUrl.ClusterLoadAssignment]);
  });
});
