import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { TypeUrl } from '@aviary/xds-protos';
import { parseNode, ResourceEncoder, Snapshot, SnapshotCache, TranslatingSource, versioned, type SourceChange, type SnapshotInput } from './index';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
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

const proxy = parseNode({ id: 'sidecar~10.0.0.1~p.default~default.svc.cluster.local' });

describe('Snapshot', () => {
  it('is consistent when every RDS and EDS name referenced exists', () => {
    expect(Snapshot.build(mesh()).consistent()).toEqual({ ok: true, problems: [] });
  });

  it('reports each dangling reference: api_listener and filter chain RDS names, EDS service names', () => {
    const s = Snapshot.build(mesh({ [TypeUrl.RouteConfiguration]: [{ name: 'r-chain' }], [TypeUrl.ClusterLoadAssignment]: [cla('a')] }));
    expect(s.consistent()).toEqual({
      ok: false,
      problems: ['listener "api" references missing route configuration "r-api"', 'cluster "b" references missing cluster load assignment "b-svc"'],
    });
    const noChainRoute = Snapshot.build(mesh({ [TypeUrl.RouteConfiguration]: [{ name: 'r-api' }] }));
    expect(noChainRoute.consistent().problems).toEqual(['listener "inbound" references missing route configuration "r-chain"']);
  });

  it('versions types deterministically and changes only the types whose resources changed', () => {
    const a = Snapshot.build(mesh(), { encoder: new ResourceEncoder() });
    const b = Snapshot.build(mesh(), { encoder: new ResourceEncoder() });
    for (const t of Object.values(TypeUrl)) expect(a.version(t)).toBe(b.version(t));
    const c = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9081), cla('b-svc')] }));
    expect(c.changedTypes(a)).toEqual([TypeUrl.ClusterLoadAssignment]);
    expect(c.get(TypeUrl.ClusterLoadAssignment, 'b-svc')!.version).toBe(a.get(TypeUrl.ClusterLoadAssignment, 'b-svc')!.version);
    expect(c.get(TypeUrl.ClusterLoadAssignment, 'a')!.version).not.toBe(a.get(TypeUrl.ClusterLoadAssignment, 'a')!.version);
  });

  it('recognises an equal fresh object by content and re-encodes a changed one, also when it changes back', () => {
    const encoder = new ResourceEncoder();
    const enc = (port: number) => Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [cla('a', port)] }, { encoder }).get(TypeUrl.ClusterLoadAssignment, 'a')!;
    const first = enc(9080);
    expect(enc(9080)).toBe(first);
    const moved = enc(9081);
    expect(moved.version).not.toBe(first.version);
    expect(encoder.encoded).toBe(2);
    const back = enc(9080);
    expect(back.version).toBe(first.version);
    expect(Buffer.from(back.bytes).equals(Buffer.from(first.bytes))).toBe(true);
    expect(enc(9080)).toBe(back);
  });

  it('encodes each resource once and shares the bytes across snapshots (identity, content, version)', () => {
    const encoder = new ResourceEncoder();
    const shared = cla('a');
    const s1 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [shared] }, { encoder });
    const s2 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [shared] }, { encoder });
    const s3 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [cla('a')] }, { encoder });
    expect(encoder.encoded).toBe(1);
    const bytes = s1.get(TypeUrl.ClusterLoadAssignment, 'a')!.bytes;
    expect(s2.get(TypeUrl.ClusterLoadAssignment, 'a')!.bytes).toBe(bytes);
    expect(s3.get(TypeUrl.ClusterLoadAssignment, 'a')!.bytes).toBe(bytes);

    const v1 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [versioned(cla('b'), 'rev-7')] }, { encoder });
    const v2 = Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [versioned(cla('b'), 'rev-7')] }, { encoder });
    expect(encoder.encoded).toBe(2);
    expect(v2.get(TypeUrl.ClusterLoadAssignment, 'b')).toBe(v1.get(TypeUrl.ClusterLoadAssignment, 'b'));
    expect(v1.get(TypeUrl.ClusterLoadAssignment, 'b')!.version).toBe('rev-7');
  });

  it('refuses duplicate names and invalid resources', () => {
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return isAviaryError(e) ? e.code : String(e);
      }
      return 'no error';
    };
    expect(codeOf(() => Snapshot.build({ [TypeUrl.Cluster]: [{ name: 'a' }, { name: 'a' }] }))).toBe('XDS_SNAPSHOT_DUPLICATE');
    expect(codeOf(() => Snapshot.build({ [TypeUrl.Cluster]: [{ name: 'a', lbPolicy: 'RANDOM' }] }))).toBe('XDS_RESOURCE_INVALID');
    expect(codeOf(() => Snapshot.build({ [TypeUrl.ClusterLoadAssignment]: [{ endpoints: [] }] }))).toBe('XDS_RESOURCE_INVALID');
  });
});

describe('SnapshotCache', () => {
  it('publishes consistent snapshots per group and notifies the changed types for that group only', () => {
    const cache = new SnapshotCache({ groupOf: (p) => p.namespace, now: () => 42 });
    const changes: SourceChange[] = [];
    cache.onChange((c) => changes.push(c));
    expect(cache.resourcesFor(proxy).resources(TypeUrl.Listener).size).toBe(0);
    cache.setSnapshot('default', Snapshot.build(mesh()));
    expect(changes[0]?.types).toEqual([TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]);
    expect(changes[0]?.observedAt).toBe(42);
    expect(changes[0]?.affects?.(proxy)).toBe(true);
    expect(changes[0]?.affects?.(parseNode({ id: 'sidecar~1.1.1.1~x.other~other.svc.cluster.local' }))).toBe(false);

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

describe('TranslatingSource', () => {
  it('translates once per group and model, and keeps the last good snapshot when a translation is refused', () => {
    let calls = 0;
    const rejected: unknown[] = [];
    const source = new TranslatingSource<{ routes: boolean; port: number }>(
      { routes: true, port: 1 },
      {
        groupOf: (p) => p.kind,
        translate: (_p, m) => {
          calls++;
          return mesh({ ...(m.routes ? {} : { [TypeUrl.RouteConfiguration]: [] }), [TypeUrl.ClusterLoadAssignment]: [cla('a', m.port), cla('b-svc')] });
        },
        onRejected: (_p, e) => rejected.push(e),
      },
    );
    const changes: SourceChange[] = [];
    source.onChange((c) => changes.push(c));
    const first = source.resourcesFor(proxy);
    expect(source.resourcesFor(proxy)).toBe(first);
    expect(calls).toBe(1);
    source.setModel({ routes: false, port: 2 }, { types: [TypeUrl.RouteConfiguration] });
    expect(changes[0]?.types).toEqual([TypeUrl.RouteConfiguration]);
    expect(source.resourcesFor(proxy)).toBe(first);
    expect(rejected).toHaveLength(1);
    source.setModel({ routes: true, port: 3 });
    expect(source.resourcesFor(proxy).get(TypeUrl.ClusterLoadAssignment, 'a')!.version).not.toBe(first.get(TypeUrl.ClusterLoadAssignment, 'a')!.version);
  });
});

describe('Snapshot.replace', () => {
  it('replaces named resources, bumps only the changed types and equals a fresh build', () => {
    const encoder = new ResourceEncoder();
    const base = Snapshot.build(mesh(), { encoder });
    const patched = base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090)], [TypeUrl.Cluster]: [edsCluster('a')] }, { encoder });
    expect(patched.changedTypes(base)).toEqual([TypeUrl.ClusterLoadAssignment]);
    const fresh = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 9090), cla('b-svc')] }), { encoder });
    for (const t of Object.values(TypeUrl)) {
      expect(patched.version(t)).toBe(fresh.version(t));
      expect([...patched.resources(t).keys()]).toEqual([...fresh.resources(t).keys()]);
    }
    expect(patched.resources(TypeUrl.Listener)).toBe(base.resources(TypeUrl.Listener));
    expect(() => base.replace({ [TypeUrl.ClusterLoadAssignment]: [cla('nope')] })).toThrow(/has none/);
  });
});

describe('TranslatingSource change narrowing', () => {
  type Model = { port: number; other: number };
  function setup() {
    const calls = { translate: 0, endpoints: 0 };
    const source = new TranslatingSource<Model>(
      { port: 1, other: 1 },
      {
        groupOf: (p) => p.id,
        translate: (_p, m) => {
          calls.translate++;
          return mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', m.port), cla('b-svc', m.other)] });
        },
        translateEndpoints: (_p, m, names) => {
          calls.endpoints++;
          return { [TypeUrl.ClusterLoadAssignment]: names.map((n) => cla(n, n === 'a' ? m.port : m.other)) };
        },
      },
    );
    return { source, calls };
  }
  const other = parseNode({ id: 'sidecar~10.0.0.2~q.default~default.svc.cluster.local' });

  it('patches only the named assignments into the previous snapshot, equal to a full translation', () => {
    const { source, calls } = setup();
    const first = source.resourcesFor(proxy);
    source.setModel({ port: 2, other: 1 }, { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'a' });
    const second = source.resourcesFor(proxy);
    expect(calls).toEqual({ translate: 1, endpoints: 1 });
    expect(second.changedTypes(first)).toEqual([TypeUrl.ClusterLoadAssignment]);
    expect(second.get(TypeUrl.ClusterLoadAssignment, 'b-svc')).toBe(first.get(TypeUrl.ClusterLoadAssignment, 'b-svc'));
    // two narrowed changes before the group is asked again: both name sets apply
    source.setModel({ port: 3, other: 1 }, { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'a' });
    source.setModel({ port: 3, other: 4 }, { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'b-svc' });
    const third = source.resourcesFor(proxy);
    const full = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 3), cla('b-svc', 4)] }));
    for (const t of Object.values(TypeUrl)) expect(third.version(t)).toBe(full.version(t));
    expect(calls.translate).toBe(1);
  });

  it('keeps snapshots on `types: []` and for groups no proxy of which `affects`; re-translates the rest', () => {
    const { source, calls } = setup();
    const a = source.resourcesFor(proxy);
    const b = source.resourcesFor(other);
    source.setModel({ port: 1, other: 1 }, { types: [] });
    expect(source.resourcesFor(proxy)).toBe(a);
    source.setModel({ port: 5, other: 1 }, { affects: (p) => p.id === other.id });
    expect(source.resourcesFor(proxy)).toBe(a);
    expect(source.resourcesFor(other)).not.toBe(b);
    expect(calls.translate).toBe(3);
    source.setModel({ port: 6, other: 1 });
    expect(source.resourcesFor(proxy).get(TypeUrl.ClusterLoadAssignment, 'a')!.version).not.toBe(a.get(TypeUrl.ClusterLoadAssignment, 'a')!.version);
    expect(calls.translate).toBe(4);
  });

  it('falls back to a full translation when the endpoint path cannot answer', () => {
    const source = new TranslatingSource<Model>(
      { port: 1, other: 1 },
      { translate: (_p, m) => mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', m.port), cla('b-svc')] }), translateEndpoints: () => undefined },
    );
    source.resourcesFor(proxy);
    source.setModel({ port: 2, other: 1 }, { types: [TypeUrl.ClusterLoadAssignment], names: () => true });
    expect(JSON.stringify(source.resourcesFor(proxy).get(TypeUrl.ClusterLoadAssignment, 'a')!.resource)).toContain('"port_value":2');
  });
});
