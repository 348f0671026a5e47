import { describe, expect, it } from 'vitest';
import { ExtensionTypeUrl } from '@aviary/xds-api';
import { TypeUrl } from '@aviary/xds-protos';
import { Snapshot, type SourceChange, type SnapshotInput } from '@aviary/xds-cache';
import { SnapshotCache } from './index';

const HCM = ExtensionTypeUrl.HttpConnectionManager;
const hcm = (route: string) => ({ '@type': HCM, stat_prefix: 'x', rds: { route_config_name: route, config_source: { ads: {} } } });
const cla = (name: string, port = 9080) => ({
  cluster_name: name,
  endpoints: [{ locality: { zone: 'z' }, load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }],
});
const edsCluster = (name: string, service?: string) => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} }, ...(service && { service_name: service }) } });

function mesh(over: Partial<SnapshotInput> = {}): SnapshotInput {
  return {
    [TypeUrl.Listener]: [
      { name: 'api', api_listener: { api_listener: hcm('r-api') } },
      { name: 'inbound', filter_chains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm('r-chain') }] }] },
    ],
    [TypeUrl.RouteConfiguration]: [{ name: 'r-api' }, { name: 'r-chain' }],
    [TypeUrl.Cluster]: [edsCluster('a'), edsCluster('b', 'b-svc'), { name: 'static', type: 'STATIC' }],
    [TypeUrl.ClusterLoadAssignment]: [cla('a'), cla('b-svc')],
    ...over,
  };
}

type Peer = { readonly id: string; readonly kind: string; readonly namespace: string };
const proxy: Peer = { id: 'sidecar~10.0.0.1~p.default~default.svc.cluster.local', kind: 'sidecar', namespace: 'default' };

describe('SnapshotCache', () => {
  it('publishes consistent snapshots per group and notifies the changed types for that group only', () => {
    const cache = new SnapshotCache<Peer>({ groupOf: (p) => p.namespace, now: () => 42 });
    const changes: SourceChange<Peer>[] = [];
    cache.onChange((c) => changes.push(c));
    expect(cache.resourcesFor(proxy).resources(TypeUrl.Listener).size).toBe(0);
    cache.setSnapshot('default', Snapshot.build(mesh()));
    expect(changes[0]?.types).toEqual([TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]);
    expect(changes[0]?.observedAt).toBe(42);
    expect(changes[0]?.affects?.(proxy)).toBe(true);
    expect(changes[0]?.affects?.({ id: 'sidecar~1.1.1.1~x.other~other.svc.cluster.local', kind: 'sidecar', namespace: 'other' })).toBe(false);

    expect(cache.setSnapshot('default', Snapshot.build(mesh()))).toEqual([]);
    expect(changes).toHaveLength(1);
    expect(cache.setSnapshot('default', Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1), cla('b-svc')] })))).toEqual([TypeUrl.ClusterLoadAssignment]);
    expect(changes[1]?.types).toEqual([TypeUrl.ClusterLoadAssignment]);
  });

  it('refuses an inconsistent snapshot and keeps serving the previous one', () => {
    const cache = new SnapshotCache({ groupOf: () => 'g' });
    const good = Snapshot.build(mesh());
    cache.setSnapshot('g', good);
    expect(() => cache.setSnapshot('g', Snapshot.build(mesh({ [TypeUrl.RouteConfiguration]: [] })))).toThrow(/XDS_SNAPSHOT_INCONSISTENT|inconsistent/);
    expect(cache.resourcesFor(proxy)).toBe(good);
  });
});
