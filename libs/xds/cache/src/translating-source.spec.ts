import { describe, expect, it } from 'vitest';
import { TypeUrl } from '@aviary/xds-protos';
import { Snapshot, TranslatingSource, type SourceChange, type XdsPeer } from './index';
import { MAX_STALE_CHANGES } from './translating-source';

import { cla, mesh } from './testing/mesh';

const proxy: XdsPeer = { id: 'sidecar~10.0.0.1~p.default~default.svc.cluster.local', kind: 'sidecar' };

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
  const other: XdsPeer = { id: 'sidecar~10.0.0.2~q.default~default.svc.cluster.local', kind: 'sidecar' };

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

  it('finds the changed names once for groups that share an assignment map, and gives them one patched map', () => {
    const shared = mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 1), cla('b-svc', 1)] });
    const asked: string[] = [];
    const source = new TranslatingSource<Model>(
      { port: 1, other: 1 },
      {
        groupOf: (p) => p.id,
        translate: (_p, m) => (m.port === 1 ? shared : mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', m.port), cla('b-svc', m.other)] })),
        translateEndpoints: (_p, m, names) => ({ [TypeUrl.ClusterLoadAssignment]: names.map((n) => cla(n, n === 'a' ? m.port : m.other)) }),
      },
    );
    const before = [proxy, other].map((p) => source.resourcesFor(p));
    expect(before[1]!.resources(TypeUrl.ClusterLoadAssignment)).toBe(before[0]!.resources(TypeUrl.ClusterLoadAssignment));
    const names = (n: string): boolean => {
      asked.push(n);
      return n === 'a';
    };
    source.setModel({ port: 2, other: 1 }, { types: [TypeUrl.ClusterLoadAssignment], names });
    const after = [proxy, other].map((p) => source.resourcesFor(p));
    expect(asked.sort()).toEqual(['a', 'b-svc']);
    expect(after[1]).not.toBe(after[0]);
    expect(after[1]!.resources(TypeUrl.ClusterLoadAssignment)).toBe(after[0]!.resources(TypeUrl.ClusterLoadAssignment));
    const full = Snapshot.build(mesh({ [TypeUrl.ClusterLoadAssignment]: [cla('a', 2), cla('b-svc', 1)] }));
    for (const snapshot of after) for (const t of Object.values(TypeUrl)) expect(snapshot.version(t)).toBe(full.version(t));
    // Another change with the same filter is another change: its names are found again.
    source.setModel({ port: 3, other: 1 }, { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'a' });
    expect(source.resourcesFor(other).get(TypeUrl.ClusterLoadAssignment, 'a')!.resource).toEqual(cla('a', 3));
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

  it('a group not asked for a long time keeps at most MAX_STALE_CHANGES changes to patch, then is translated in full', () => {
    const { source, calls } = setup();
    source.resourcesFor(proxy);
    for (let i = 0; i < MAX_STALE_CHANGES; i++) source.setModel({ port: 100 + i, other: 1 }, { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'a' });
    expect(source.resourcesFor(proxy).get(TypeUrl.ClusterLoadAssignment, 'a')!.resource).toEqual(cla('a', 100 + MAX_STALE_CHANGES - 1));
    expect(calls).toEqual({ translate: 1, endpoints: 1 });
    for (let i = 0; i <= MAX_STALE_CHANGES; i++) source.setModel({ port: 200 + i, other: 1 }, { types: [TypeUrl.ClusterLoadAssignment], names: (n) => n === 'a' });
    expect(source.resourcesFor(proxy).get(TypeUrl.ClusterLoadAssignment, 'a')!.resource).toEqual(cla('a', 200 + MAX_STALE_CHANGES));
    expect(calls).toEqual({ translate: 2, endpoints: 1 });
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
